"""Optical flow for the motion metrics: scikit-image's iterative Lucas-Kanade
(``skimage.registration.optical_flow_ilk``) run on many frame pairs at once.

``optical_flow_ilk`` estimates one pair per call; on a video, the calls' overhead (small frames) and
its per-pixel ``np.linalg.solve`` (large frames) dominate the metrics. :func:`ilk_flow` runs the same
algorithm — the same pyramid (scikit-image's ``pyramid_reduce`` with the pairs on a channel axis), the
same warps (bilinear, edge mode), gradients, 15 x 15 uniform windows in mirror mode, the same
ill-conditioned systems set to zero — over a stack of pairs (the warps by torch's ``grid_sample``, the windows by one scipy
``uniform_filter`` call), and solves each 2 x 2 system in closed form. It equals ``optical_flow_ilk(radius=7, num_warp=3)`` pair by pair to float32
rounding (``tests/test_metrics.py``).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["ilk_flow", "ilk_magnitudes", "global_motion"]

RADIUS = 7      #: the window's half-width, as cogviz's motion metric calls optical_flow_ilk
NUM_WARP = 3    #: warps per pyramid level


def _pyramid(stack: np.ndarray, downscale: float = 2.0, nlevel: int = 10, min_size: int = 16) -> list[np.ndarray]:
    """scikit-image's ``_get_pyramid`` for a stack ``(P, h, w)``: coarse to fine."""
    from skimage.transform import pyramid_reduce

    levels = [stack]
    size, count = min(stack.shape[1:]), 1
    while count < nlevel and size > downscale * min_size:
        levels.append(pyramid_reduce(levels[-1], downscale, channel_axis=0).astype(stack.dtype, copy=False))
        size, count = min(levels[-1].shape[1:]), count + 1
    return levels[::-1]


def _resize_flow(flow: np.ndarray, shape) -> np.ndarray:
    """scikit-image's ``_resize_flow`` for flows ``(2, P, h, w)``: nearest zoom, values rescaled."""
    from scipy import ndimage as ndi

    scale = [n / o for n, o in zip(shape, flow.shape[2:])]
    factor = np.array(scale, dtype=flow.dtype)[:, None, None, None]
    return factor * ndi.zoom(flow, [1, 1, *scale], order=0, mode="nearest", prefilter=False)


def _warp(moving: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``map_coordinates(moving, rows + flow[0], cols + flow[1], order=1, mode="nearest")`` per pair
    (scikit-image's edge-mode warp), as torch's ``grid_sample`` (bilinear, border padding, corners
    aligned): five times faster than ``map_coordinates`` on a stack."""
    import torch
    import torch.nn.functional as F

    m, f = torch.from_numpy(moving).double(), torch.from_numpy(flow).double()  # float64: integer points land
    p, h, w = m.shape  # on the pixels exactly (a still pair has zero flow, as in scikit-image)
    rows = torch.arange(h, dtype=m.dtype)[:, None] + f[0]
    cols = torch.arange(w, dtype=m.dtype)[None, :] + f[1]
    grid = torch.stack([2 * cols / max(1, w - 1) - 1, 2 * rows / max(1, h - 1) - 1], -1)
    with torch.no_grad():
        out = F.grid_sample(m[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, 0].float().numpy()


def _ilk(ref: np.ndarray, moving: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """scikit-image's ``_ilk`` (uniform window) for stacks ``(P, h, w)`` and flows ``(2, P, h, w)``."""
    from scipy import ndimage as ndi

    size = 2 * RADIUS + 1
    p = len(ref)
    for _ in range(NUM_WARP):
        warped = _warp(moving, flow)
        gr, gc = np.gradient(warped, axis=(1, 2))
        error = gr * flow[0] + gc * flow[1] + ref - warped
        terms = np.concatenate([gr * gr, gr * gc, gc * gc, gr * error, gc * error])  # one filter call for all
        a00, a01, a11, b0, b1 = ndi.uniform_filter(terms, (1, size, size), mode="mirror").reshape(5, p, *ref.shape[1:])
        det = a00 * a11 - a01 * a01
        ok = np.abs(det) >= 1e-14  # scikit-image sets the ill-conditioned systems to zero flow
        safe = np.where(ok, det, 1)
        flow = np.stack([np.where(ok, (a11 * b0 - a01 * b1) / safe, 0),
                         np.where(ok, (a00 * b1 - a01 * b0) / safe, 0)]).astype(ref.dtype, copy=False)
    return flow


def ilk_flow(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """The flow ``(2, P, h, w)`` (rows, columns) from each of ``reference`` ``(P, h, w)`` to the same
    pair of ``moving``, as ``optical_flow_ilk(reference[i], moving[i], radius=7, num_warp=3)``."""
    reference, moving = np.asarray(reference, np.float32), np.asarray(moving, np.float32)
    if reference.shape != moving.shape or reference.ndim != 3:
        raise ValueError(f"ilk_flow: expected two stacks (P, h, w) of one shape, got {reference.shape} and {moving.shape}")
    pyramid = list(zip(_pyramid(reference), _pyramid(moving)))
    flow = _ilk(*pyramid[0], np.zeros((2, *pyramid[0][0].shape), dtype=np.float32))
    for ref, mov in pyramid[1:]:
        flow = _ilk(ref, mov, _resize_flow(flow, ref.shape[1:]))
    return flow


def ilk_magnitudes(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """The flow's magnitude per pixel, ``(P, h * w)``; an empty stack gives ``(0, 0)``."""
    if not len(reference):
        return np.zeros((0, 0), np.float32)
    v, u = ilk_flow(reference, moving)
    return np.hypot(v, u).reshape(len(reference), -1)


# -- the global (camera) motion between two frames --------------------------------------------------
def global_motion(first: np.ndarray, last: np.ndarray) -> tuple[float, float, float]:
    """How the content moved from ``first`` to ``last`` (``uint8 (H, W, 3)``): ``(dy, dx, scale)``.

    A zoom about the centre (``scale`` in 0.6-1.6; > 1 = content grew, the camera zoomed in) and a
    translation (positive ``dx`` = content moved right), fitted jointly: for each candidate scale
    the translation comes from phase correlation (scikit-image's ``phase_cross_correlation``), and
    the pair that leaves the smallest error over the overlap wins.
    """
    from skimage.registration import phase_cross_correlation

    best, out = np.inf, (0.0, 0.0, 1.0)
    for s in np.exp(np.linspace(np.log(0.6), np.log(1.6), 25)):
        # s >= 1: the first frame's centre, enlarged, against the last; s < 1 the other way round.
        x, y = (_zoom(first, s), last) if s >= 1 else (first, _zoom(last, 1 / s))
        a, b = x.astype(np.float32).mean(-1), y.astype(np.float32).mean(-1)
        shift = phase_cross_correlation(a, b, upsample_factor=2)[0]
        dy, dx = -float(shift[0]), -float(shift[1])  # the shift registering y onto x, negated
        err = _overlap_mse(a, b, dy, dx)
        if err < best:
            best, out = err, (dy, dx, float(s))
    return out


def _overlap(h: int, w: int, dy: float, dx: float):
    """Slices (source, destination) of the part an image moved by (dy, dx) shares with the original."""
    sy, sx = int(round(dy)), int(round(dx))
    sy, sx = max(min(sy, h - 1), 1 - h), max(min(sx, w - 1), 1 - w)
    ys, yd = (slice(0, h - sy), slice(sy, h)) if sy >= 0 else (slice(-sy, h), slice(0, h + sy))
    xs, xd = (slice(0, w - sx), slice(sx, w)) if sx >= 0 else (slice(-sx, w), slice(0, w + sx))
    return (ys, xs), (yd, xd)


def _overlap_mse(a: np.ndarray, b: np.ndarray, dy: float, dx: float) -> float:
    src, dst = _overlap(*a.shape[:2], dy, dx)
    d = a[src].astype(np.float32) - b[dst].astype(np.float32)
    # Small overlaps fit anything: weigh the error by how little of the frame is compared.
    return float(np.mean(d * d)) * a[..., 0].size / max(d[..., 0].size if d.ndim == 3 else d.size, 1)


def _zoom(image: np.ndarray, s: float) -> np.ndarray:
    """The centre ``1/s`` of ``image`` enlarged back to its size (``s >= 1``)."""
    h, w = image.shape[:2]
    bh, bw = h / s, w / s
    box = ((w - bw) / 2, (h - bh) / 2, (w + bw) / 2, (h + bh) / 2)
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR, box=box))

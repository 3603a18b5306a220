"""Optical flow for the motion metrics: scikit-image's iterative Lucas-Kanade
(``skimage.registration.optical_flow_ilk``) run on many frame pairs at once.

``optical_flow_ilk`` estimates one pair per call; on a video, the calls' overhead (small frames) and
its per-pixel ``np.linalg.solve`` (large frames) dominate the metrics. :func:`ilk_flow` runs the same
algorithm over a stack of pairs: the same pyramid (``pyramid_reduce``'s 7-tap Gaussian and linear
resize, by OpenCV), the same warps (bilinear, edge mode; torch's ``grid_sample`` in float64), the
same gradients, 15 x 15 uniform windows in mirror mode (OpenCV's ``boxFilter``), the same
ill-conditioned systems set to zero, and each 2 x 2 system solved in closed form. It equals
``optical_flow_ilk(radius=7, num_warp=3)`` pair by pair to float32 rounding (``tests/test_metrics.py``);
``benchmarks/bench_metrics.py`` measures it.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["ilk_flow", "ilk_magnitudes", "global_motion"]

RADIUS = 7      #: the window's half-width, as cogviz's motion metric calls optical_flow_ilk
NUM_WARP = 3    #: warps per pyramid level


def _pyramid(stack: np.ndarray, downscale: int = 2, nlevel: int = 10, min_size: int = 16) -> list[np.ndarray]:
    """scikit-image's ``_get_pyramid`` (``pyramid_reduce``: a Gaussian of sigma ``2 * downscale / 6``
    truncated at 4 sigma in ``reflect`` mode, then a linear resize to ``ceil(size / downscale)``) for a
    stack ``(P, h, w)``, coarse to fine; each map by OpenCV (``GaussianBlur`` with the same 7-tap
    kernel and ``BORDER_REFLECT``; ``resize`` maps pixel centres as scikit-image's ``grid_mode`` zoom,
    and a reduction never samples past the border)."""
    import cv2

    sigma = 2 * downscale / 6.0
    taps = 2 * int(4.0 * sigma + 0.5) + 1
    levels = [stack]
    size, count = min(stack.shape[1:]), 1
    while count < nlevel and size > downscale * min_size:
        h, w = (-(-n // downscale) for n in levels[-1].shape[1:])
        levels.append(np.stack([cv2.resize(cv2.GaussianBlur(m, (taps, taps), sigma, borderType=cv2.BORDER_REFLECT),
                                           (w, h), interpolation=cv2.INTER_LINEAR) for m in levels[-1]]))
        size, count = min(h, w), count + 1
    return levels[::-1]


def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """The source index of each of ``n_out`` samples in scipy's ``zoom(order=0, mode="nearest")``."""
    from scipy import ndimage as ndi

    return ndi.zoom(np.arange(n_in, dtype=np.float64), n_out / n_in, order=0, mode="nearest",
                    prefilter=False).astype(np.intp)


def _resize_flow(flow: np.ndarray, shape) -> np.ndarray:
    """scikit-image's ``_resize_flow`` for flows ``(2, P, h, w)``: a nearest zoom (the source pixels
    scipy's ``zoom`` picks, gathered), values rescaled."""
    rows, cols = (_nearest_index(o, n) for o, n in zip(flow.shape[2:], shape))
    factor = np.array([n / o for n, o in zip(shape, flow.shape[2:])], dtype=flow.dtype)[:, None, None, None]
    return factor * flow[:, :, rows[:, None], cols[None, :]]


def _warp(moving, pixels: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``map_coordinates(moving, rows + flow[0], cols + flow[1], order=1, mode="nearest")`` per pair
    (scikit-image's edge-mode warp), as torch's ``grid_sample`` (bilinear, border padding, corners
    aligned), five times faster than ``map_coordinates``. ``moving`` is a float64 tensor
    ``(P, 1, h, w)`` (``pixels``: the same stack, float32 ``(P, h, w)``); the grid is float64, and a
    point of zero flow takes its own pixel exactly (a still pair has zero flow, as in scikit-image).
    One pair per call: a call on one pair runs on this thread
    alone, where a stack would wake torch's intra-op threads, which contend with the metrics beside."""
    import torch

    p, _, h, w = moving.shape
    grid = np.empty((p, h, w, 2))
    scale = (2 / max(1, w - 1), 2 / max(1, h - 1))
    for axis, (f, at) in enumerate(((flow[1], np.arange(w)[None, :]), (flow[0], np.arange(h)[:, None]))):
        np.add(f, at, out=grid[..., axis])
        grid[..., axis] *= scale[axis]
    grid -= 1
    grid = torch.from_numpy(grid)
    out = torch.empty((p, h, w), dtype=torch.float64)
    with torch.no_grad():
        for i in range(p):  # torch.grid_sampler is F.grid_sample's op: bilinear (0), border (1), corners aligned
            out[i] = torch.grid_sampler(moving[i:i + 1], grid[i:i + 1], 0, 1, True)[0, 0]
    out = out.numpy().astype(np.float32)
    still = (flow[0] == 0) & (flow[1] == 0)  # sampled at the pixel itself: exactly the pixel, as in
    return np.where(still, pixels, out)  # scipy (the grid's rounding leaves ~1e-16 of a neighbour)
    return out


def _window_means(terms: np.ndarray) -> np.ndarray:
    """``uniform_filter(terms, (1, 15, 15), mode="mirror")`` for ``(N, h, w)``: OpenCV's ``boxFilter``
    per map (``BORDER_REFLECT_101`` is scipy's ``mirror``), three times faster, in place."""
    import cv2

    size = 2 * RADIUS + 1
    for m in terms:
        cv2.boxFilter(m, -1, (size, size), dst=m, borderType=cv2.BORDER_REFLECT_101)
    return terms


def _ilk(ref: np.ndarray, moving: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """scikit-image's ``_ilk`` (uniform window) for stacks ``(P, h, w)`` and flows ``(2, P, h, w)``,
    its arithmetic in place on preallocated stacks."""
    import torch

    t = np.empty((5, *ref.shape), ref.dtype)  # the five window sums of each 2 x 2 system
    moving64 = torch.from_numpy(moving.astype(np.float64)[:, None])
    for _ in range(NUM_WARP):
        warped = _warp(moving64, moving, flow)
        gr, gc = np.gradient(warped, axis=(1, 2))
        np.multiply(gr, flow[0], out=t[3])
        t[3] += np.multiply(gc, flow[1], out=t[4])
        t[3] += ref
        t[3] -= warped  # the error image
        np.multiply(gc, t[3], out=t[4])
        np.multiply(gr, t[3], out=t[3])
        np.multiply(gr, gr, out=t[0])
        np.multiply(gr, gc, out=t[1])
        np.multiply(gc, gc, out=t[2])
        a00, a01, a11, b0, b1 = _window_means(t.reshape(-1, *ref.shape[1:])).reshape(t.shape)
        det = a00 * a11
        det -= np.multiply(a01, a01, out=warped)
        inv = np.zeros_like(det)  # scikit-image sets the ill-conditioned systems to zero flow
        np.divide(1, det, out=inv, where=np.abs(det) >= 1e-14)
        flow = np.empty((2, *ref.shape), ref.dtype)
        np.multiply(a11, b0, out=flow[0])
        flow[0] -= np.multiply(a01, b1, out=warped)
        flow[0] *= inv
        np.multiply(a00, b1, out=flow[1])
        flow[1] -= np.multiply(a01, b0, out=warped)
        flow[1] *= inv
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

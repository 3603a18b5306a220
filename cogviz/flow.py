"""Optical flow for the motion metrics: scikit-image's iterative Lucas-Kanade
(``skimage.registration.optical_flow_ilk``) run on many frame pairs at once.

``optical_flow_ilk`` estimates one pair per call; on a video, the calls' overhead (small frames) and
its per-pixel ``np.linalg.solve`` (large frames) dominate the metrics. :func:`ilk_flow` runs the same
algorithm over a stack of pairs: the same pyramid (``pyramid_reduce``'s 7-tap Gaussian and linear
resize, by OpenCV; made once per frame by :func:`video_magnitudes`) and, on each level, the same
warps, gradients, 15 x 15 window means in mirror mode and closed-form 2 x 2 solves, compiled
(:mod:`cogviz.kernels`, numba, without the GIL) and run pair by pair while a pair's maps sit in
cache. The flows between levels are work arrays kept between calls (:mod:`cogviz.scratch`).
It equals ``optical_flow_ilk(radius=7, num_warp=3)`` pair by pair to float32 rounding
(``tests/test_metrics.py``); ``benchmarks/bench_metrics.py`` measures it.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .scratch import work_array

__all__ = ["ilk_flow", "ilk_magnitudes", "video_magnitudes", "global_motion"]

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
    scipy's ``zoom`` picks, gathered; each pixel twice over, where that is what it picks), values
    rescaled."""
    (rows, cols), (h, w) = (_nearest_index(o, n) for o, n in zip(flow.shape[2:], shape)), shape
    out = work_array("flow.resized", (*flow.shape[:2], h, w))
    if h == 2 * flow.shape[2] and w == 2 * flow.shape[3] and _doubles(rows) and _doubles(cols):
        twice = out.reshape(*flow.shape[:3], 2, w)  # each row twice, each value twice in a row
        twice[:, :, :, 0] = np.repeat(flow, 2, axis=3)
        twice[:, :, :, 1] = twice[:, :, :, 0]
    else:
        tall = np.take(flow, rows, axis=2, out=work_array("flow.resize", (*flow.shape[:2], h, flow.shape[3])))
        np.take(tall, cols, axis=3, out=out)
    out[0] *= np.float32(h / flow.shape[2])
    out[1] *= np.float32(w / flow.shape[3])
    return out


def _doubles(index: np.ndarray) -> bool:
    return bool((index == np.arange(len(index)) // 2).all())


def _reflected(n: int) -> np.ndarray:
    """For positions ``-RADIUS .. n + RADIUS - 1`` along an axis of ``n`` pixels, the pixel each reads
    in ``mirror`` mode (reflected about the edge pixels, OpenCV's ``BORDER_REFLECT_101``), repeatedly
    for axes shorter than the window."""
    j = np.arange(-RADIUS, n + RADIUS)
    if n == 1:
        return np.zeros_like(j)
    m = j % (2 * (n - 1))
    return np.where(m < n, m, 2 * (n - 1) - m)


def _ilk(ref: np.ndarray, moving: np.ndarray, flow: np.ndarray | None) -> np.ndarray:
    """scikit-image's ``_ilk`` (uniform window) for stacks ``(P, h, w)`` and flows ``(2, P, h, w)``
    (None: zero flow, the coarsest level's start): :func:`cogviz.kernels.ilk_level`, compiled,
    pair by pair. The flow returned is a work array (``flow`` itself, refined in place, if given)."""
    from .kernels import ilk_level

    p, h, w = ref.shape
    if flow is None:
        flow = work_array("flow.flow", (2, p, h, w))
        flow.fill(0)
    ilk_level(ref, moving, flow, NUM_WARP, RADIUS, _reflected(h), _reflected(w))
    return flow


def _flow(pyramid: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The flow over the pyramid's levels (coarse to fine, each a pair of stacks), returned in a work
    array (copy it to keep it)."""
    flow = _ilk(*pyramid[0], None)
    for ref, mov in pyramid[1:]:
        flow = _ilk(ref, mov, _resize_flow(flow, ref.shape[1:]))
    return flow


def _stacks(reference: np.ndarray, moving: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    reference, moving = np.asarray(reference, np.float32), np.asarray(moving, np.float32)
    if reference.shape != moving.shape or reference.ndim != 3:
        raise ValueError(f"optical flow: expected two stacks (P, h, w) of one shape (reference, moving), "
                         f"got {reference.shape} and {moving.shape}")
    return list(zip(_pyramid(reference), _pyramid(moving)))


def ilk_flow(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """The flow ``(2, P, h, w)`` (rows, columns) from each of ``reference`` ``(P, h, w)`` to the same
    pair of ``moving``, as ``optical_flow_ilk(reference[i], moving[i], radius=7, num_warp=3)``."""
    return _flow(_stacks(reference, moving)).copy()


def _magnitudes(flow: np.ndarray) -> np.ndarray:
    """``(P, h * w)`` magnitudes of a flow held in a work array, in a new array (the caller keeps it):
    ``np.hypot`` to a unit in the last place, five times faster, and the same value for a pixel
    whatever the stack's length (OpenCV's ``magnitude`` rounds its vector loop's tail differently)."""
    v, u = flow
    out = np.multiply(v, v)
    out += np.multiply(u, u, out=u)
    return np.sqrt(out, out=out).reshape(len(v), -1)


def ilk_magnitudes(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """The flow's magnitude per pixel, ``(P, h * w)``, from each of ``reference`` to the same pair of
    ``moving``; an empty stack gives ``(0, 0)``."""
    if not len(reference):
        return np.zeros((0, 0), np.float32)
    return _magnitudes(_flow(_stacks(reference, moving)))


def video_magnitudes(frames: np.ndarray) -> np.ndarray:
    """:func:`ilk_magnitudes` from each frame of ``frames`` ``(F, h, w)`` to the next, ``(F - 1, h * w)``:
    each frame's pyramid made once (it is the reference of one pair and the moving frame of the one
    before)."""
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 3:
        raise ValueError(f"video_magnitudes: expected frames (F, h, w), got shape {frames.shape}")
    if len(frames) < 2:
        return np.zeros((0, 0), np.float32)
    return _magnitudes(_flow([(level[:-1], level[1:]) for level in _pyramid(frames)]))


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

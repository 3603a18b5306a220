"""Step 5b of the flow: how strongly the frames stay anchored to the conditioning image.

:func:`anchor_metrics` measures every frame of a video against the fitted conditioning image
(and against the previous frame) and returns a pandas DataFrame, one row per frame:

==================  ===============================================================================
``psnr``            dB against the image (scikit-image's ``peak_signal_noise_ratio``), capped at 100
``ssim``            scikit-image's ``structural_similarity(channel_axis=-1, data_range=255)``
``palette``         colour-palette distance: total variation between 8 x 8 x 8 CIELAB histograms of
                    frame and image (0 = the same palette, 1 = no colour in common); Lab by
                    scikit-image's ``rgb2lab``, on a copy reduced by area to a short side of ~128 px
``layout``          layout similarity: Pearson correlation of the grey-level images reduced to
                    12 x 18 cells (the low-frequency structure: where light and dark masses lie)
``flicker``         VBench's temporal flickering term, ``1 - mean|f_t - f_{t-1}| / 255`` (1 = still)
``motion``          mean optical-flow magnitude to the previous frame, in pixels of the frame
``motion_top5``     the mean of the largest 5% of those magnitudes (VBench's per-pair dynamic score)
==================  ===============================================================================

``flicker``, ``motion`` and ``motion_top5`` are NaN on frame 0 (there is no previous frame).
Optical flow is scikit-image's iterative Lucas-Kanade (``optical_flow_ilk``) on grey levels,
reduced by area to a short side of ~128 px and scaled back to the frame's pixels. VBench uses
RAFT, a learned flow; ILK is a well-kept classical substitute that needs no weights, validated
in the tests on patterns shifted by a known amount.

Every metric is computed on the whole video at once, not frame by frame, its inner loops compiled
(:mod:`cogviz.kernels`, numba, without the GIL): SSIM is scikit-image's formula with exact window
sums (equal to ``structural_similarity``, rounded as it rounds), the flow is :mod:`cogviz.flow`
(scikit-image's ILK over all frame pairs, equal to ``optical_flow_ilk`` within 2e-5), PSNR and
flicker are OpenCV's exact integer norms, the Lab values bitwise ``rgb2lab``'s (its gamma from a
table) and their bins ``np.histogramdd``'s, the layout cells OpenCV's blur and resize (scikit-image's
anti-aliased ``resize`` within 2e-7). The calling thread computes the flow and the metrics that read
it while a kept second thread measures the rest; the calling thread then takes those the worker has
not started. The large temporaries are work arrays each thread keeps between calls
(:mod:`cogviz.scratch`: no page faults on the next call). ``tests/test_metrics.py`` checks every
column against scikit-image frame by frame, and ``benchmarks/bench_metrics.py`` measures the gain.

:func:`summarize` turns the table into one row per video: frame-0 fidelity, the anchor's
half-life, mean motion and VBench's dynamic flag.

Each per-frame metric is one entry of :data:`REGISTRY` (name, per-frame function, axis label, how
it summarizes), added with :func:`register`; :func:`anchor_metrics`, :func:`summarize`, the plots
in :mod:`cogviz.viz`, sweeps' ``frames.parquet`` and AblationLab all read it, so a new metric is
added in one place. :func:`psnr` is cogviz's one PSNR.
"""
from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import CogvizError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["psnr", "psnr_of_mse", "anchor_metrics", "summarize", "half_life", "Metric", "REGISTRY", "register", "METRICS",
           "PSNR_CAP", "label"]

PSNR_CAP = 100.0      #: dB reported for identical frames (the true value is infinite)
REDUCED_SIDE = 128    #: palette and flow work on copies reduced to about this short side
LAB_BINS = 8
LAB_RANGE = ((0.0, 100.0), (-110.0, 110.0), (-110.0, 110.0))
LAYOUT_CELLS = (12, 18)


def psnr(a, b, *, data_range: float | None = None) -> float:
    """PSNR in dB between two images or videos of one shape (scikit-image's ``peak_signal_noise_ratio``),
    capped at :data:`PSNR_CAP` (identical inputs). ``data_range`` defaults to 255 for uint8 and 1
    for floats; torch tensors are accepted. cogviz's one PSNR: metrics, the toy's evaluation and
    training, the lessons.

    >>> a = np.zeros((4, 4, 3), np.uint8)
    >>> psnr(a, a), round(psnr(a, a + 16), 2)
    (100.0, 24.05)
    """
    from skimage.metrics import mean_squared_error

    a, b = (x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x) for x in (a, b))
    if a.shape != b.shape:
        raise CogvizError(f"psnr: shapes {a.shape} and {b.shape} differ; compare images of one size")
    if data_range is None:
        data_range = 255.0 if a.dtype == np.uint8 else 1.0
    return psnr_of_mse(float(mean_squared_error(a.astype(np.float64), b.astype(np.float64))), data_range)


def psnr_of_mse(mse: float, data_range: float = 1.0) -> float:
    """The PSNR of a mean squared error (what :func:`psnr` reports), capped at :data:`PSNR_CAP`."""
    return PSNR_CAP if mse <= 0 else min(PSNR_CAP, 10 * math.log10(data_range ** 2 / mse))


def _as_video(frames) -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim == 3 and a.shape[-1] == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3:
        raise CogvizError(f"frames of shape {a.shape}: expected (F, H, W, 3) RGB frames")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and np.nanmin(a) >= 0 and np.nanmax(a) <= 1:
            return (a * 255).round().astype(np.uint8)
        raise CogvizError(f"frames of dtype {a.dtype}: expected uint8 in [0, 255] or floats in [0, 1]")
    return a


def _as_image(image, size) -> np.ndarray:
    from PIL import Image

    from .fit import FittedImage

    if isinstance(image, FittedImage):
        image = image.image
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    a = _as_video(image)[0]
    if a.shape[:2] != size:
        raise CogvizError(f"the image is {a.shape[0]}x{a.shape[1]} but the frames are {size[0]}x{size[1]}: "
                          "pass the fitted conditioning image (generation.fitted), not the original")
    return a


#: pixel values measured at once: a chunk of frames whose temporaries stay in cache (and threads share)
CHUNK_PIXELS = 2**20
#: threads that measure chunks of a large video at once
METRIC_THREADS = max(1, min(4, (os.cpu_count() or 1)))


class _Video:
    """Frames ``(F, H, W, 3)`` uint8 and the views of them that metrics share, each computed once for
    the whole video (no per-frame Python loop): the area-reduced copy, its grey levels,
    Lab palettes and layouts, and the optical-flow magnitudes between consecutive frames."""

    def __init__(self, pixels: np.ndarray, k: int):
        self.pixels, self.k = pixels, k
        self._cache: dict = {}

    def __len__(self) -> int:
        return len(self.pixels)

    def _get(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def sums(self) -> np.ndarray:  # the k x k blocks' integer sums (the pixels themselves when k = 1)
        return self._get("sums", lambda: _block_sums(self.pixels, self.k))

    @property
    def small(self) -> np.ndarray:  # area-reduced copies, float32 in [0, 1]
        return self._get("small", lambda: self.sums.astype(np.float32) / np.float32(255.0 * self.k * self.k))

    @property
    def grey(self) -> np.ndarray:  # (F, h, w)
        from skimage.color import rgb2gray

        return self._get("grey", lambda: rgb2gray(self.small).astype(np.float32))

    @property
    def palette(self) -> np.ndarray:  # (F, LAB_BINS ** 3), each row sums to 1
        return self._get("palette", lambda: _chunked(functools.partial(_palettes, k=self.k), self.sums))

    @property
    def layout(self) -> np.ndarray:  # (F, cells)
        return self._get("layout", lambda: _layouts(self.grey).reshape(len(self), -1))

    @property
    def flow(self) -> np.ndarray:
        """(F - 1, h * w) optical-flow magnitudes from each frame to the next, in the frame's pixels.
        Where :func:`anchor_metrics` shares the flow between its threads, the caller helps with the
        frame pairs no thread has taken yet, then waits for the rest."""
        return self._get("flow", lambda: self._cache["shared_flow"].result() if "shared_flow" in self._cache
                         else _SharedFlow(self, chunks=1).result())


class _SharedFlow:
    """The optical flow of a video's frame pairs, cut into chunks of pairs that any thread may take:
    :meth:`help` computes chunks until none is left, :meth:`result` helps and then waits for all."""

    def __init__(self, video: _Video, chunks: int):
        import threading

        pairs = len(video) - 1
        self.grey, self.k = video.grey, video.k
        self.bounds = np.linspace(0, pairs, min(max(1, chunks), max(1, pairs)) + 1).round().astype(int)
        self.parts: list = [None] * (len(self.bounds) - 1)
        self.taken, self.lock, self.done = 0, threading.Lock(), threading.Condition()
        self.error: BaseException | None = None

    def help(self) -> None:
        from .flow import video_magnitudes

        while True:
            with self.lock:
                i, self.taken = self.taken, self.taken + 1
            if i >= len(self.parts):
                return
            a, b = self.bounds[i], self.bounds[i + 1]
            try:
                part = video_magnitudes(self.grey[a:b + 1]) * self.k
            except BaseException as e:  # raised again by result(), in every thread that waits
                part, self.error = e, e
            with self.done:
                self.parts[i] = part
                self.done.notify_all()

    def result(self) -> np.ndarray:
        self.help()
        with self.done:
            self.done.wait_for(lambda: all(p is not None for p in self.parts))
        if self.error is not None:
            raise self.error
        return np.concatenate(self.parts) if len(self.parts) > 1 else self.parts[0]


@dataclass(frozen=True)
class Metric:
    """One per-frame metric: ``fn(video, image)`` -> one value per frame (``(F,)``), or per frame pair
    (``(F - 1,)``) for a ``pairwise`` metric, which is NaN on frame 0. ``video`` and ``image`` are
    ``_Video`` s (the image a one-frame video) with shared views: ``pixels``, ``small``,
    ``grey``, ``palette``, ``layout``, ``flow``. ``summary`` names what :func:`summarize` reports of
    it: ``"frame0"`` (``frame0_<name>``), ``"mean"`` (``mean_<name>``), ``"value"`` (``<name>``: the
    mean over frames, over frame pairs if pairwise). ``reads_flow``: the metric reads ``flow``, and
    :func:`anchor_metrics` computes it on the thread that computes the flow, once the flow is done
    (any metric may read any view; this only says which thread does the work)."""

    name: str
    fn: Callable
    label: str
    pairwise: bool = False
    summary: tuple[str, ...] = ("value",)
    reads_flow: bool = False


REGISTRY: dict[str, Metric] = {}


def register(name: str, label: str, *, pairwise: bool = False, summary: tuple[str, ...] = ("value",),
             reads_flow: bool = False):
    """Add a metric to :data:`REGISTRY`: :func:`anchor_metrics`, :func:`summarize`, the plots, sweeps
    and AblationLab all read it, so a new metric is this decorator on one function of the whole video
    (fields as in :class:`Metric`)."""
    def add(fn):
        REGISTRY[name] = Metric(name, fn, label, pairwise, tuple(summary), reads_flow)
        return fn

    return add


@register("psnr", "PSNR to the image (dB)", summary=("frame0", "mean"))
def _psnr(v, ref):
    import cv2

    size = v.pixels[0].size  # exact: OpenCV sums the squared uint8 differences in integers
    return np.array([psnr_of_mse(cv2.norm(f, ref.pixels[0], cv2.NORM_L2SQR) / size, 255.0) for f in v.pixels])


@register("ssim", "SSIM to the image", summary=("frame0", "mean"))
def _ssim(v, ref):
    return ssim_video(v.pixels, ref.pixels[0])


@register("palette", "palette distance (Lab)")
def _palette_distance(v, ref):
    return 0.5 * np.abs(v.palette - ref.palette).sum(axis=1)


@register("layout", "layout similarity")
def _layout_similarity(v, ref):
    a = v.layout - v.layout.mean(axis=1, keepdims=True)
    b = ref.layout - ref.layout.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, (a * b).sum(axis=1) / den, np.nan)


@register("flicker", "flicker (1 = still)", pairwise=True)
def _flicker(v, ref):
    import cv2

    size = v.pixels[0].size  # exact: OpenCV sums the absolute uint8 differences in integers
    return np.array([1.0 - cv2.norm(a, b, cv2.NORM_L1) / size / 255.0 for a, b in zip(v.pixels[1:], v.pixels[:-1])])


@register("motion", "motion (px / frame)", pairwise=True, reads_flow=True)
def _motion(v, ref):
    return v.flow.mean(axis=1) if v.flow.size else np.zeros(len(v.flow))


@register("motion_top5", "top-5% motion (px / frame)", pairwise=True, summary=(), reads_flow=True)
def _motion_top5(v, ref):
    mag = v.flow
    if not mag.size:
        return np.zeros(len(mag))
    top = max(1, int(mag.shape[1] * 0.05))
    return np.partition(mag, mag.shape[1] - top, axis=1)[:, -top:].mean(axis=1)


METRICS = tuple(REGISTRY)  #: the per-frame columns of :func:`anchor_metrics`, in order


def label(name: str) -> str:
    """The axis label of a per-frame metric or of a :func:`summarize` key."""
    if name in REGISTRY:
        return REGISTRY[name].label
    for prefix, what in (("frame0_", "frame-0 "), ("mean_", "mean ")):
        if name.startswith(prefix) and name[len(prefix):] in REGISTRY:
            return what + REGISTRY[name[len(prefix):]].label
    return {"half_life": "anchor half-life (frames)", "dynamic": "dynamic (VBench)"}.get(name, name)


def _reduction(height: int, width: int) -> int:
    return max(1, min(height, width) // REDUCED_SIDE)


def _layouts(grey: np.ndarray) -> np.ndarray:
    """Each grey frame of ``(F, h, w)`` resized to :data:`LAYOUT_CELLS` as scikit-image's ``resize``
    with anti-aliasing does (a Gaussian of sigma ``(factor - 1) / 2`` truncated at 4 sigma in
    ``mirror`` mode, then a linear zoom of the pixel centres), by OpenCV: ``GaussianBlur`` with the same
    taps and ``BORDER_REFLECT_101``, ``resize`` with ``INTER_LINEAR`` (which maps pixel centres the
    same way; a reduction never samples past the border). A frame smaller than the cells in either
    direction takes scikit-image's own call (an enlargement samples past the border)."""
    import cv2

    h, w = grey.shape[1:]
    rows, cols = LAYOUT_CELLS
    if h < rows or w < cols:
        from skimage.transform import resize

        return resize(grey, (len(grey), rows, cols), anti_aliasing=True)
    sy, sx = ((n / c - 1) / 2 for n, c in ((h, rows), (w, cols)))
    taps = [2 * int(4.0 * s + 0.5) + 1 for s in (sx, sy)]
    out = np.empty((len(grey), rows, cols), np.float32)
    for frame, o in zip(grey, out):
        if (h, w) != (rows, cols):
            frame = cv2.GaussianBlur(frame, taps, sigmaX=sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT_101)
        cv2.resize(frame, (cols, rows), dst=o, interpolation=cv2.INTER_LINEAR)
    return out


def _block_sums(frames: np.ndarray, k: int) -> np.ndarray:
    """(F, H, W, 3) uint8 -> the sums of whole k x k blocks, (F, H/k, W/k, 3): the frames themselves
    when k = 1, else added as k + k strided slices in uint16 (exact: 16 x 16 x 255 fits; larger blocks
    sum in float32, also exact). Divided by ``255 k^2`` they are scikit-image's
    ``downscale_local_mean`` on whole blocks, in [0, 1] (:attr:`_Video.small`)."""
    if k == 1:
        return frames
    h, w = (frames.shape[1] // k) * k, (frames.shape[2] // k) * k
    x = frames[:, :h, :w]
    rows = np.add(x[:, 0::k], x[:, 1::k], dtype=np.uint16 if k <= 16 else np.float32)
    for i in range(2, k):
        rows += x[:, i::k]
    cols = np.add(rows[:, :, 0::k], rows[:, :, 1::k])
    for j in range(2, k):
        cols += rows[:, :, j::k]
    return cols


@functools.lru_cache(maxsize=8)
def _linear_levels(k: int) -> np.ndarray:
    """scikit-image's ``rgb2xyz`` gamma (sRGB to linear, float32) of every value a k x k block's mean
    can take: a table that the Lab conversion looks up instead of a power per pixel (bitwise the same
    operations on the same float32 values)."""
    arr = np.arange(255 * k * k + 1).astype(np.float32) / np.float32(255.0 * k * k)
    mask = arr > 0.04045
    arr[mask] = np.power((arr[mask] + 0.055) / 1.055, 2.4)
    arr[~mask] /= 12.92
    arr.flags.writeable = False
    return arr


def _lab_of_linear(linear: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-image's ``rgb2lab`` from linear RGB (float32), as three planes L, a, b: its ``rgb2xyz``
    matrix, then its ``xyz2lab`` (D65, 2 degrees) with the same float32 operations, plane by plane
    (a broadcast over a last axis of 3 is slow in numpy) and each branch applied to every value, the
    branch picked after (``xyz2lab`` assigns through boolean masks, four times slower): bitwise the
    same Lab values (``tests/test_metrics.py``). The planes are work arrays
    (:func:`~cogviz.scratch.work_array`): copy them to keep them."""
    from skimage.color import xyz_tristimulus_values
    from skimage.color.colorconv import xyz_from_rgb

    from .scratch import work_array

    xyz = np.matmul(linear, xyz_from_rgb.T.astype(linear.dtype), out=work_array("lab.xyz", linear.shape, linear.dtype))
    white = xyz_tristimulus_values(illuminant="D65", observer="2", dtype=xyz.dtype)
    shape, planes = xyz.shape[:-1], []
    cube = work_array("lab.cube", shape, xyz.dtype)
    above = work_array("lab.above", shape, bool)
    for c in range(3):
        v = np.divide(xyz[..., c], white[c], out=work_array(f"lab.plane{c}", shape, xyz.dtype))
        np.greater(v, 0.008856, out=above)
        np.cbrt(v, out=cube)
        v *= 7.787
        v += 16.0 / 116.0
        np.copyto(v, cube, where=above)
        planes.append(v)
    x, y, z = planes
    x -= y
    x *= 500.0  # a
    np.subtract(y, z, out=z)
    z *= 200.0  # b
    y *= 116.0
    y -= 16.0  # L
    return y, x, z


def _palettes(sums: np.ndarray, k: int) -> np.ndarray:
    """Per frame, the 8 x 8 x 8 CIELAB histogram (normalised) over :data:`LAB_RANGE`, bins of equal
    width with the last one closed (``np.histogramdd``'s bins, exactly), for all frames at once, of the block
    means ``sums / (255 k^2)``: scikit-image's ``rgb2lab``, its gamma looked up (:func:`_linear_levels`)."""
    from .kernels import lab_bin_counts
    from .scratch import work_array

    table = _linear_levels(k)
    linear = np.take(table, sums if sums.dtype.kind in "ui" else sums.astype(np.intp), mode="clip",
                     out=work_array("palette.linear", sums.shape, table.dtype))
    planes = [p.reshape(len(sums), -1) for p in _lab_of_linear(linear)]
    counts = np.zeros((len(sums), LAB_BINS ** 3), np.int64)
    lab_bin_counts(*planes, np.array(LAB_RANGE, np.float64), LAB_BINS, counts)
    return counts / max(1, planes[0].shape[1])


def ssim_video(frames: np.ndarray, image: np.ndarray, *, data_range: float = 255.0) -> np.ndarray:
    """SSIM of every frame ``(F, H, W, 3)`` to ``image`` ``(H, W, 3)``, for all frames at once: the
    computation of scikit-image's ``structural_similarity(channel_axis=-1, data_range=...)`` (7 x 7
    uniform window, sample covariance, K1 = 0.01, K2 = 0.03, the window's half-width cropped, the mean
    over channels). The image's window means are computed once (OpenCV's ``boxFilter``); each frame's
    map and its mean are :func:`cogviz.kernels.ssim_means`, compiled, on chunks of frames that the
    kept threads share (the cropped pixels' windows never reach the border, so no frame reads past
    its own pixels). Equal to scikit-image's frame by frame (``tests/test_metrics.py``)."""
    from .kernels import ssim_means
    from .scratch import work_array

    win, pad = 7, 3
    frames = np.ascontiguousarray(frames)
    if min(frames.shape[1:3]) < win:
        raise CogvizError(f"SSIM needs frames of at least {win} x {win} pixels (its window), got "
                          f"{frames.shape[1]} x {frames.shape[2]}")
    cov_norm = np.float32(win * win / (win * win - 1))
    c1, c2 = np.float32((0.01 * data_range) ** 2), np.float32((0.03 * data_range) ** 2)
    crop = (slice(pad, -pad), slice(pad, -pad))
    y = np.ascontiguousarray(image, dtype=np.float32)
    uy = _window_means(y[None].copy(), win)[0]
    vy = cov_norm * (_window_means((y * y)[None], win)[0] - uy * uy)
    flat = (image.shape[0] - 2 * pad, -1)  # the cropped maps' rows, pixels and channels in one axis
    uy, a_y, b_y = (np.ascontiguousarray(m[crop]).reshape(flat) for m in (uy, uy * uy + c1, vy + c2))

    def chunk(frames: np.ndarray) -> np.ndarray:
        n, h, w, c = frames.shape
        out = np.empty(n, np.float64)
        rows = work_array("ssim.rows", (win + 1, 3, (w - win + 1) * c), np.float64)
        ssim_means(frames, y, uy, a_y, b_y, win, c1, c2, cov_norm, rows, out)
        return out

    return _chunked(chunk, frames)


def _window_means(x: np.ndarray, win: int) -> np.ndarray:
    """The ``win x win`` means of frames ``(..., H, W, C)`` (float32 holding integers: pixel values,
    their squares and products), each frame's border reflected (scipy's ``uniform_filter`` in
    ``reflect`` mode): one OpenCV call, in place. The window sums are taken unnormalised, so every
    running sum is an integer below 2**24, exact in float32 whatever rows OpenCV's threads split the
    image into."""
    import cv2

    x = np.ascontiguousarray(x)  # in place needs one plain block (an image's view may have any strides)
    *_, h, w, c = x.shape
    tall = x.reshape(-1, w, c)
    cv2.boxFilter(tall, -1, (win, win), dst=tall, normalize=False, borderType=cv2.BORDER_REFLECT)
    x /= np.float32(win * win)
    return x


def _chunked(fn, frames: np.ndarray) -> np.ndarray:
    """``fn`` over chunks of frames of about :data:`CHUNK_PIXELS` values, on up to
    :data:`METRIC_THREADS` kept threads (numpy's and OpenCV's loops release the GIL), concatenated."""
    from .scratch import on_pool, pool

    step = max(1, CHUNK_PIXELS // max(1, frames[0].size))
    chunks = [frames[s:s + step] for s in range(0, len(frames), step)]
    if len(chunks) == 1 or on_pool("chunks"):
        return np.concatenate([fn(c) for c in chunks])
    return np.concatenate(list(pool("chunks", METRIC_THREADS).map(fn, chunks)))


def anchor_metrics(frames, image) -> pd.DataFrame:
    """One row per frame of ``frames`` ((F, H, W, 3) uint8, or floats in [0, 1]) measured against
    ``image``, the fitted conditioning image (a :class:`~cogviz.FittedImage`, PIL image or
    (H, W, 3) array of the frames' size). Columns: ``frame`` and :data:`METRICS` (see the module doc).

    >>> import numpy as np
    >>> still = np.full((3, 32, 48, 3), 120, np.uint8)
    >>> df = anchor_metrics(still, still[0])
    >>> df[["psnr", "ssim", "flicker", "motion"]].round(3).values.tolist()[1]
    [100.0, 1.0, 1.0, 0.0]
    """
    import pandas as pd

    video = _as_video(frames)
    n, h, w, _ = video.shape
    k = _reduction(h, w)
    v, ref = _Video(video, k), _Video(_as_image(image, (h, w))[None], k)
    columns = {"frame": np.arange(n), **_beside_the_flow(v, ref)}
    df = pd.DataFrame(columns, columns=["frame", *REGISTRY])
    df.attrs.update(height=h, width=w)
    return df


def _columns(v: _Video, ref: _Video, metrics) -> dict:
    """Each of ``metrics`` of ``v`` against ``ref``, checked for its length; ``metrics`` may be a
    :class:`_Claims` that another thread takes from too."""
    n, columns = len(v), {}
    for m in metrics:
        values = np.asarray(m.fn(v, ref), dtype=np.float64).reshape(-1)
        want = n - 1 if m.pairwise else n
        if values.shape != (want,):
            raise CogvizError(f"metric {m.name!r} returned {values.shape[0]} values for {n} frames; expected {want}"
                              f"{' (one per frame pair)' if m.pairwise else ' (one per frame)'}")
        columns[m.name] = np.concatenate([[math.nan], values]) if m.pairwise else values
    return columns


class _Claims:
    """Metrics that two threads measure: iterating takes the next one no thread has taken yet."""

    def __init__(self, metrics):
        import threading

        self.metrics, self.lock = iter(list(metrics)), threading.Lock()

    def __iter__(self):
        return self

    def __next__(self) -> Metric:
        with self.lock:
            return next(self.metrics)


def _beside_the_flow(v: _Video, ref: _Video) -> dict:
    """Every registered metric's column. This thread computes ``v``'s optical flow and the metrics
    that read it; a worker thread meanwhile measures the others, and this thread, once done, takes
    those the worker has not started. The flow is shared: a metric on the worker that reads it takes
    its remaining chunks of frame pairs too. The flow's compiled loop, OpenCV and numpy release the
    GIL, so both cores stay busy. The worker is kept between calls (:func:`cogviz.scratch.pool`), and
    with it its work arrays; called from that worker (a metric that measures a video itself),
    everything runs here."""
    from .scratch import on_pool, pool

    v.grey  # noqa: B018 -- the shared views, made once before the threads split
    v._cache["shared_flow"] = flow = _SharedFlow(v, chunks=int(np.clip(v.grey[1:].size // 2**18, 1, 2 * METRIC_THREADS)))
    beside = [m for m in REGISTRY.values() if not m.reads_flow]
    after = [m for m in REGISTRY.values() if m.reads_flow]
    if on_pool("metrics"):
        return {**_columns(v, ref, beside), **_columns(v, ref, after)}
    claims = _Claims(beside)
    work = pool("metrics", 1).submit(_columns, v, ref, claims)
    try:
        flow.help()
        mine = {**_columns(v, ref, after), **_columns(v, ref, claims)}
    finally:
        first = work.result()  # the worker's error first: it started first
    return {**first, **mine}


def half_life(values, floor: float = 0.0) -> float:
    """The frame, linearly interpolated, at which ``values`` first fall halfway from frame 0's value
    to ``floor``; ``inf`` when they never do within the video.

    >>> half_life([0.9, 0.7, 0.5, 0.4])
    2.5
    """
    v = np.asarray(values, dtype=np.float64)
    target = floor + (v[0] - floor) / 2
    below = np.nonzero(v <= target)[0]
    if v[0] <= floor or not below.size or below[0] == 0:
        return 0.0 if v[0] <= floor else math.inf
    t = int(below[0])
    a, b = v[t - 1], v[t]
    return float(t - 1 + (a - target) / (a - b))


def summarize(df, *, fps: float = 8.0, floor: float = 0.0) -> pd.Series:
    """One video's anchor in a few numbers (a pandas Series; stack several with ``pd.DataFrame``):

    - ``frame0_psnr``, ``frame0_ssim``: fidelity of frame 0 to the image
    - ``mean_psnr``, ``mean_ssim``: over all frames
    - ``palette``, ``layout``: means over all frames
    - ``half_life``: the anchor half-life, the frame (interpolated) at which SSIM to the image has
      lost half of frame 0's excess over ``floor``, the SSIM of an unanchored video (0 by default;
      the mean SSIM of ``zero_image`` runs is the natural floor for a model and a scene set);
      ``inf`` when the anchor holds to the last frame
    - ``motion``, ``flicker``: means over frame pairs
    - ``dynamic``: VBench's dynamic-degree flag, at least ``round(4 * F / 16)`` frame pairs whose
      ``motion_top5`` exceeds ``6 * max(1, 8 / fps) * min(H, W) / 256`` pixels (CogVideoX 1.0
      runs at 8 fps, 1.5 at 16)
    """
    import pandas as pd

    if not len(df):
        raise CogvizError("summarize: the metrics table is empty; pass anchor_metrics(frames, image)")
    h, w = df.attrs.get("height"), df.attrs.get("width")
    if h is None or w is None:
        raise CogvizError("summarize: the table has lost its frame size (df.attrs height/width); "
                          "pass the DataFrame anchor_metrics returned")
    pairs = df["motion_top5"].iloc[1:]
    threshold = 6.0 * max(1.0, 8.0 / fps) * min(h, w) / 256.0
    need = max(1, round(4 * len(df) / 16))
    out = {}
    for m in REGISTRY.values():
        col = df[m.name] if m.name in df else None
        if col is None:
            continue
        for kind in m.summary:
            if kind == "frame0":
                out[f"frame0_{m.name}"] = float(col.iloc[0])
            elif kind == "mean":
                out[f"mean_{m.name}"] = float(col.mean())
            elif m.pairwise:
                out[m.name] = float(col.iloc[1:].mean()) if len(df) > 1 else _STILL.get(m.name, math.nan)
            else:
                out[m.name] = float(col.mean())
    out["half_life"] = half_life(df["ssim"].to_numpy(), floor)
    out["dynamic"] = bool((pairs > threshold).sum() >= need)
    order = ["frame0_psnr", "frame0_ssim", "mean_psnr", "mean_ssim", "palette", "layout", "half_life", "motion",
             "flicker", "dynamic"]
    return pd.Series({k: out[k] for k in [*order, *[k for k in out if k not in order]] if k in out})


#: what a pairwise metric reads on a one-frame video (no pair to measure)
_STILL = {"motion": 0.0, "flicker": 1.0}

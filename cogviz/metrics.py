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

:func:`summarize` turns the table into one row per video: frame-0 fidelity, the anchor's
half-life, mean motion and VBench's dynamic flag.

Each per-frame metric is one entry of :data:`REGISTRY` (name, per-frame function, axis label, how
it summarizes), added with :func:`register`; :func:`anchor_metrics`, :func:`summarize`, the plots
in :mod:`cogviz.viz`, sweeps' ``frames.parquet`` and AblationLab all read it, so a new metric is
added in one place. :func:`psnr` is cogviz's one PSNR.
"""
from __future__ import annotations

import math
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


class _Frame:
    """One frame and the views of it that metrics share, each computed once on first use."""

    def __init__(self, pixels: np.ndarray, k: int):
        self.pixels, self.k = pixels, k
        self._cache: dict = {}

    def _get(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def floats(self) -> np.ndarray:  # (H, W, 3) float32 in [0, 255]
        return self._get("floats", lambda: self.pixels.astype(np.float32))

    @property
    def small(self) -> np.ndarray:  # area-reduced copy, float in [0, 1]
        return self._get("small", lambda: _reduced(self.pixels, self.k))

    @property
    def grey(self) -> np.ndarray:
        from skimage.color import rgb2gray

        return self._get("grey", lambda: rgb2gray(self.small).astype(np.float32))

    @property
    def palette(self) -> np.ndarray:
        return self._get("palette", lambda: _palette(self.small))

    @property
    def layout(self) -> np.ndarray:
        from skimage.transform import resize

        return self._get("layout", lambda: resize(self.grey, LAYOUT_CELLS, anti_aliasing=True).ravel())

    def flow_from(self, prev: _Frame) -> np.ndarray:
        """Optical-flow magnitudes from ``prev`` to this frame, in the frame's pixels (flattened)."""
        from skimage.registration import optical_flow_ilk

        def make():
            v, u = optical_flow_ilk(prev.grey, self.grey, radius=7, num_warp=3)
            return (np.hypot(v, u) * self.k).ravel()  # reduced pixels -> frame pixels

        return self._get(("flow", id(prev)), make)


@dataclass(frozen=True)
class Metric:
    """One per-frame metric: ``fn(frame, image, previous)`` -> float, where each is a ``_Frame``
    (``previous`` is None on frame 0; a ``pairwise`` metric is then NaN). ``summary`` names what
    :func:`summarize` reports of it: ``"frame0"`` (``frame0_<name>``), ``"mean"`` (``mean_<name>``),
    ``"value"`` (``<name>``: the mean over frames, over frame pairs if pairwise)."""

    name: str
    fn: Callable
    label: str
    pairwise: bool = False
    summary: tuple[str, ...] = ("value",)


REGISTRY: dict[str, Metric] = {}


def register(name: str, label: str, *, pairwise: bool = False, summary: tuple[str, ...] = ("value",)):
    """Add a metric to :data:`REGISTRY`: :func:`anchor_metrics`, :func:`summarize`, the plots, sweeps
    and AblationLab all read it, so a new metric is this decorator on one function."""
    def add(fn):
        REGISTRY[name] = Metric(name, fn, label, pairwise, tuple(summary))
        return fn

    return add


@register("psnr", "PSNR to the image (dB)", summary=("frame0", "mean"))
def _psnr(f, ref, prev):
    return psnr(ref.pixels, f.pixels)


@register("ssim", "SSIM to the image", summary=("frame0", "mean"))
def _ssim(f, ref, prev):
    from skimage.metrics import structural_similarity

    return float(structural_similarity(ref.floats, f.floats, channel_axis=-1, data_range=255))


@register("palette", "palette distance (Lab)")
def _palette_distance(f, ref, prev):
    return 0.5 * float(np.abs(f.palette - ref.palette).sum())


@register("layout", "layout similarity")
def _layout_similarity(f, ref, prev):
    return _correlation(f.layout, ref.layout)


@register("flicker", "flicker (1 = still)", pairwise=True)
def _flicker(f, ref, prev):
    diff = np.abs(f.pixels.astype(np.int16) - prev.pixels.astype(np.int16))
    return 1.0 - float(diff.mean()) / 255.0


@register("motion", "motion (px / frame)", pairwise=True)
def _motion(f, ref, prev):
    return float(f.flow_from(prev).mean())


@register("motion_top5", "top-5% motion (px / frame)", pairwise=True, summary=())
def _motion_top5(f, ref, prev):
    mag = f.flow_from(prev)
    top = max(1, int(mag.size * 0.05))
    return float(np.partition(mag, mag.size - top)[-top:].mean())


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


def _reduced(frame: np.ndarray, k: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (H/k, W/k, 3) float32 in [0, 1], area-averaged (whole k x k blocks)."""
    from skimage.transform import downscale_local_mean

    x = frame.astype(np.float32) / 255.0
    if k == 1:
        return x
    h, w = (frame.shape[0] // k) * k, (frame.shape[1] // k) * k
    return downscale_local_mean(x[:h, :w], (k, k, 1))


def _palette(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb).reshape(-1, 3)
    hist, _ = np.histogramdd(lab, bins=LAB_BINS, range=LAB_RANGE)
    return hist.ravel() / max(1, lab.shape[0])


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else float("nan")


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
    ref = _Frame(_as_image(image, (h, w)), k)
    rows, prev = [], None
    for t, pixels in enumerate(video):
        f = _Frame(pixels, k)
        row = {"frame": t}
        for m in REGISTRY.values():
            row[m.name] = math.nan if m.pairwise and prev is None else m.fn(f, ref, prev)
        rows.append(row)
        prev = f
    df = pd.DataFrame(rows, columns=["frame", *REGISTRY])
    df.attrs.update(height=h, width=w)
    return df


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

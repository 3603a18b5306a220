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
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .errors import CogvizError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["anchor_metrics", "summarize", "half_life", "METRICS", "PSNR_CAP"]

METRICS = ("psnr", "ssim", "palette", "layout", "flicker", "motion", "motion_top5")
PSNR_CAP = 100.0      #: dB reported for identical frames (the true value is infinite)
REDUCED_SIDE = 128    #: palette and flow work on copies reduced to about this short side
LAB_BINS = 8
LAB_RANGE = ((0.0, 100.0), (-110.0, 110.0), (-110.0, 110.0))
LAYOUT_CELLS = (12, 18)


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


def _grey(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray

    return rgb2gray(rgb).astype(np.float32)


def _palette(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb).reshape(-1, 3)
    hist, _ = np.histogramdd(lab, bins=LAB_BINS, range=LAB_RANGE)
    return hist.ravel() / max(1, lab.shape[0])


def _layout(grey: np.ndarray) -> np.ndarray:
    from skimage.transform import resize

    return resize(grey, LAYOUT_CELLS, anti_aliasing=True).ravel()


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else float("nan")


def _flow_magnitude(prev: np.ndarray, cur: np.ndarray, k: int) -> np.ndarray:
    from skimage.registration import optical_flow_ilk

    v, u = optical_flow_ilk(prev, cur, radius=7, num_warp=3)
    return np.hypot(v, u) * k  # reduced pixels -> frame pixels


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
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    video = _as_video(frames)
    n, h, w, _ = video.shape
    ref = _as_image(image, (h, w))
    k = _reduction(h, w)
    ref_f = ref.astype(np.float32)
    ref_small = _reduced(ref, k)
    ref_palette, ref_layout = _palette(ref_small), _layout(_grey(ref_small))

    rows, prev_grey = [], None
    for t, frame in enumerate(video):
        small = _reduced(frame, k)
        grey = _grey(small)
        if np.array_equal(frame, ref):
            psnr = PSNR_CAP
        else:
            psnr = min(PSNR_CAP, float(peak_signal_noise_ratio(ref, frame, data_range=255)))
        row = {
            "frame": t,
            "psnr": psnr,
            "ssim": float(structural_similarity(ref_f, frame.astype(np.float32), channel_axis=-1, data_range=255)),
            "palette": 0.5 * float(np.abs(_palette(small) - ref_palette).sum()),
            "layout": _correlation(_layout(grey), ref_layout),
            "flicker": math.nan, "motion": math.nan, "motion_top5": math.nan,
        }
        if t:
            diff = np.abs(frame.astype(np.int16) - video[t - 1].astype(np.int16))
            row["flicker"] = 1.0 - float(diff.mean()) / 255.0
            mag = _flow_magnitude(prev_grey, grey, k).ravel()
            top = max(1, int(mag.size * 0.05))
            row["motion"] = float(mag.mean())
            row["motion_top5"] = float(np.partition(mag, mag.size - top)[-top:].mean())
        rows.append(row)
        prev_grey = grey
    df = pd.DataFrame(rows, columns=["frame", *METRICS])
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

    ``frame0_psnr``, ``frame0_ssim``  fidelity of frame 0 to the image
    ``mean_psnr``, ``mean_ssim``     over all frames
    ``palette``, ``layout``          means over all frames
    ``half_life``    the anchor half-life: the frame (interpolated) at which SSIM to the image has
                     lost half of frame 0's excess over ``floor``, the SSIM of an unanchored video
                     (0 by default; the mean SSIM of ``zero_image`` runs is the natural floor for
                     a model and a scene set); ``inf`` when the anchor holds to the last frame
    ``motion``, ``flicker``          means over frame pairs
    ``dynamic``      VBench's dynamic-degree flag: at least ``round(4 * F / 16)`` frame pairs whose
                     ``motion_top5`` exceeds ``6 * max(1, 8 / fps) * min(H, W) / 256`` pixels
                     (CogVideoX 1.0 runs at 8 fps, 1.5 at 16)
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
    return pd.Series({
        "frame0_psnr": float(df["psnr"].iloc[0]),
        "frame0_ssim": float(df["ssim"].iloc[0]),
        "mean_psnr": float(df["psnr"].mean()),
        "mean_ssim": float(df["ssim"].mean()),
        "palette": float(df["palette"].mean()),
        "layout": float(df["layout"].mean()),
        "half_life": half_life(df["ssim"].to_numpy(), floor),
        "motion": float(df["motion"].iloc[1:].mean()) if len(df) > 1 else 0.0,
        "flicker": float(df["flicker"].iloc[1:].mean()) if len(df) > 1 else 1.0,
        "dynamic": bool((pairs > threshold).sum() >= need),
    })

"""Step 1b of the flow: fit an image to the model's exact size, and say what that cost.

Three explicit modes (the diffusers pipeline silently does the third):

``crop``     scale to *cover* the target, then cut the overflow (around a focus point). No distortion,
             no padding; the cropped-away share of the source is reported. The default, because the
             official CogVideoX 1.0 sampling code and its training data resize preserving the aspect
             ratio and centre-crop: the model has seen crops, never stretched or letterboxed frames.
``pad``      scale to *fit inside* the target and fill the rest (a colour, edge replication, or a
             blurred copy of the image). Keeps everything; the padded share of the canvas is reported.
``stretch``  resize straight to the target, as ``CogVideoXImageToVideoPipeline`` does by itself;
             the aspect distortion (% stretch) is reported.

Resampling is Lanczos (Pillow's ``LANCZOS``, a windowed sinc, the same filter diffusers'
``VideoProcessor`` uses) with ``reducing_gap=3``: big reductions first shrink by an integer factor
with a box filter, which Pillow documents as indistinguishable from a full Lanczos pass at that gap.
Crop and resize are one ``Image.resize(box=...)`` call, so the crop box keeps sub-pixel precision.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from .errors import FitError
from .image import DeferredImage, load_image
from .presets import Preset, best_size, get_preset

__all__ = ["FitReport", "FittedImage", "fit_image", "FitSource", "MODES", "FILLS"]

MODES = ("crop", "pad", "stretch")
FILLS = ("colour", "edge", "blur")
RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0
DRAFT_OVERSAMPLE = 1  #: JPEG draft decoding keeps at least this many source pixels per target pixel


@dataclass(frozen=True)
class FitReport:
    """What fitting did to the pixels. Sizes are (height, width); boxes are (left, top, right, bottom)."""

    mode: str
    source_size: tuple[int, int]
    target_size: tuple[int, int]
    scale: tuple[float, float]          # (y, x) target pixels per source pixel
    crop_box: tuple[float, float, float, float] | None  # region of the source kept, source pixels
    image_box: tuple[int, int, int, int]  # where the image lies on the canvas, target pixels
    distortion_pct: float               # |scale_x / scale_y - 1| * 100: 0 unless stretched
    cropped_pct: float                  # share of the source area cut away
    padded_pct: float                   # share of the canvas that is fill, not image
    focus: tuple[float, float]          # (x, y) in [0, 1], the point kept in view when cropping
    fill: str | None
    resample: str = "lanczos"

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line for people: ``crop 4000x3000 -> 720x480: 0.0% stretch, 25.0% cropped, 0.0% padded``."""
        (sh, sw), (th, tw) = self.source_size, self.target_size
        return (f"{self.mode} {sw}x{sh} -> {tw}x{th}: {self.distortion_pct:.1f}% stretch, "
                f"{self.cropped_pct:.1f}% cropped, {self.padded_pct:.1f}% padded")


@dataclass(frozen=True)
class FittedImage:
    """The fitted RGB image, exactly ``report.target_size``, with its report."""

    image: Image.Image
    report: FitReport

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.report.target_size

    def to_array(self) -> np.ndarray:
        """uint8 (H, W, 3)."""
        return np.asarray(self.image)

    def _repr_html_(self) -> str:  # a readable notebook repr: the image and its report
        import base64
        import io

        buf = io.BytesIO()
        self.image.save(buf, format="PNG")
        b64 = base64.b64encode(buf.getvalue()).decode()
        return (f'<div><img src="data:image/png;base64,{b64}" style="max-width:480px"/>'
                f"<pre>{self.report.summary()}</pre></div>")


def _parse_size(size: Any, image_size: tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (str, Preset)):
        return best_size(get_preset(size), image_size)
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise FitError(f"size must be (height, width) or a preset name, got {size!r}") from None
    if h <= 0 or w <= 0 or (h, w) != tuple(size):
        raise FitError(f"size must be two positive integers (height, width), got {size!r}")
    return h, w


def _cover_scale(sw: int, sh: int, tw: int, th: int) -> float:
    return max(tw / sw, th / sh)


def _cover_box(sw: int, sh: int, tw: int, th: int, focus: tuple[float, float]) -> tuple[float, ...]:
    """The largest box of the target's aspect inside the source, centred on ``focus`` where it fits."""
    s = _cover_scale(sw, sh, tw, th)
    cw, ch = min(sw, tw / s), min(sh, th / s)
    fx, fy = focus
    left = min(max(fx * sw - cw / 2, 0.0), sw - cw)
    top = min(max(fy * sh - ch / 2, 0.0), sh - ch)
    return (left, top, left + cw, top + ch)


def _reduced(image: Image.Image, min_size: tuple[int, int]) -> Image.Image:
    """Pixels at least ``min_size`` (height, width): a JPEG not yet decoded decodes at a reduced scale."""
    return image.decode_reduced(min_size) if isinstance(image, DeferredImage) else image


class FitSource:
    """An image prepared for many fits: reduced working copies are made once and reused.

    What an interactive fitter needs. Each fit resamples from a working copy holding
    ``oversample`` (default 2) source pixels per target pixel instead of from the full-resolution
    image, while the geometry and the report are always computed in full-resolution coordinates.
    A working copy is the JPEG decoded at a reduced DCT scale (or the full image), resized once with
    Lanczos to exactly ``oversample`` x the size that covers the target; copies are cached per
    target size. At ``oversample=2`` a fit from it stays above 50 dB PSNR against the same fit of
    the full-resolution decode on a noisy 12-megapixel photo (the tests assert >= 40 dB).

    >>> src = FitSource(Image.new("RGB", (4000, 3000), "teal"))
    >>> fit_image(src, (480, 720)).report.source_size, src.working_size((480, 720))
    ((3000, 4000), (1080, 1440))
    """

    def __init__(self, image: Any, *, oversample: float = 2.0):
        self.image = load_image(image)  # a big JPEG stays undecoded: see cogviz.image.DeferredImage
        self.oversample = float(oversample)
        self._copies: dict[tuple, Image.Image] = {}

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the full-resolution source, PIL's order."""
        return self.image.size

    def working_size(self, target: tuple[int, int]) -> tuple[int, int]:
        """(height, width) of the working copy for a (height, width) target; the full size if smaller."""
        sw, sh = self.size
        s = min(1.0, _cover_scale(sw, sh, target[1], target[0]) * self.oversample)
        return (sh, sw) if s >= 1.0 else (max(1, math.ceil(sh * s)), max(1, math.ceil(sw * s)))

    def preview(self, max_side: int = 360) -> Image.Image:
        """A copy no larger than ``max_side`` on its long side, for display (cached)."""
        key = ("preview", max_side)
        if key not in self._copies:
            sw, sh = self.size
            f = min(1.0, max_side / max(sw, sh))
            size = (max(1, round(sw * f)), max(1, round(sh * f)))
            base = _reduced(self.image, (size[1], size[0]))
            self._copies[key] = base if base.size == size else base.resize(size, Image.Resampling.BILINEAR,
                                                                            reducing_gap=2.0)
        return self._copies[key]

    def pixels_for(self, target: tuple[int, int]) -> Image.Image:
        """The working copy for a (height, width) target (cached)."""
        wh, ww = self.working_size(target)
        if (ww, wh) == self.size:
            return self.image
        if (wh, ww) not in self._copies:
            base = _reduced(self.image, (wh, ww))
            self._copies[(wh, ww)] = base if base.size == (ww, wh) else base.resize(
                (ww, wh), RESAMPLE, reducing_gap=REDUCING_GAP)
        return self._copies[(wh, ww)]


def fit_image(
    image: Any,
    size: tuple[int, int] | str | Preset = "CogVideoX-5b-I2V",
    mode: str = "crop",
    *,
    focus: tuple[float, float] = (0.5, 0.5),
    fill: str | tuple[int, int, int] = (0, 0, 0),
    blur_radius: float = 24.0,
) -> FittedImage:
    """Fit ``image`` to exactly ``size`` with an explicit ``mode``; see the module doc for the modes.

    Args:
        image: a PIL image, any source :func:`cogviz.load_image` accepts, or a :class:`FitSource`.
            A big JPEG not yet decoded (a path, or what ``load_image`` returned) is decoded directly
            at a reduced DCT scale that still covers the target; the report always describes the
            full-resolution source.
        size: ``(height, width)``, or a preset name (``"CogVideoX-5b-I2V"`` -> 480x720;
            ``"CogVideoX1.5-5B-I2V"`` -> the best 1.5 size for this image's aspect).
        mode: ``"crop"`` (default: what CogVideoX 1.0 was trained on), ``"pad"`` or ``"stretch"``.
        focus: (x, y) in [0, 1], the source point kept in the middle of a crop where possible
            (and where the image sits on the canvas in pad mode).
        fill: pad mode: an RGB colour, ``"edge"`` (replicate the border pixels) or ``"blur"``
            (a blurred, cover-scaled copy of the image behind it).

    >>> fitted = fit_image(Image.new("RGB", (400, 400)), (480, 720))
    >>> fitted.image.size, round(fitted.report.cropped_pct, 1)
    ((720, 480), 33.3)
    """
    fx, fy = _check_fit_args(mode, focus, fill)
    sw, sh, (th, tw), resample = _source(image, size)
    crop_box = fill_name = None
    if mode == "stretch":
        out = resample((tw, th))
        scale = (th / sh, tw / sw)
        image_box = (0, 0, tw, th)
    elif mode == "crop":
        crop_box = _cover_box(sw, sh, tw, th, (fx, fy))
        out = resample((tw, th), crop_box)
        scale = (th / (crop_box[3] - crop_box[1]), tw / (crop_box[2] - crop_box[0]))
        image_box = (0, 0, tw, th)
    else:
        out, scale, image_box, fill_name = _pad(resample, (sw, sh), (tw, th), (fx, fy), fill, blur_radius)
    return FittedImage(out, _report(mode, (sh, sw), (th, tw), scale, crop_box, image_box, (fx, fy), fill_name))


def _check_fit_args(mode, focus, fill) -> tuple[float, float]:
    if mode not in MODES:
        raise FitError(f"mode must be one of {MODES}, got {mode!r}")
    try:
        fx, fy = (float(v) for v in focus)
    except (TypeError, ValueError):
        raise FitError(f"focus must be (x, y) in [0, 1], got {focus!r}") from None
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
        raise FitError(f"focus must be (x, y) with both in [0, 1], got {focus!r}")
    if isinstance(fill, str) and fill not in ("edge", "blur"):
        raise FitError(f"fill must be an (r, g, b) colour, 'edge' or 'blur', got {fill!r}")
    return fx, fy


def _source(image, size):
    """(source width, height, target (h, w), resample(size_wh, box=None)): the pixels to resample, maybe
    a reduced copy, with boxes given in full-resolution coordinates."""
    if isinstance(image, FitSource):
        sw, sh = image.size
        th, tw = _parse_size(size, (sh, sw))
        pixels = image.pixels_for((th, tw))
    else:
        image = load_image(image)  # any source and mode -> RGB, EXIF orientation applied
        sw, sh = image.size
        th, tw = _parse_size(size, (sh, sw))
        # A big JPEG decodes directly at 1/2, 1/4 or 1/8 scale, kept >= DRAFT_OVERSAMPLE x the cover size.
        s = _cover_scale(sw, sh, tw, th) * DRAFT_OVERSAMPLE
        pixels = _reduced(image, (math.ceil(sh * s), math.ceil(sw * s)))
    # The geometry is computed at full resolution; ``pixels`` may be a reduced copy: boxes map onto it.
    kx, ky = pixels.width / sw, pixels.height / sh

    def resample(size_wh, box=None):
        l, t, r, b = (0.0, 0.0, sw, sh) if box is None else box
        return pixels.resize(size_wh, RESAMPLE, box=(l * kx, t * ky, r * kx, b * ky), reducing_gap=REDUCING_GAP)

    return sw, sh, (th, tw), resample


def _pad(resample, source_wh, target_wh, focus, fill, blur_radius):
    """Pad mode: the whole image, scaled to fit, on a canvas of ``fill``. -> (out, scale, image_box, fill name)."""
    (sw, sh), (tw, th), (fx, fy) = source_wh, target_wh, focus
    s = min(tw / sw, th / sh)
    iw, ih = max(1, min(tw, round(sw * s))), max(1, min(th, round(sh * s)))
    left, top = round((tw - iw) * fx), round((th - ih) * fy)
    inner = resample((iw, ih))
    if fill == "edge":
        a = np.pad(np.asarray(inner), ((top, th - ih - top), (left, tw - iw - left), (0, 0)), mode="edge")
        out, fill_name = Image.fromarray(a), "edge"
    elif fill == "blur":
        out = resample((tw, th), _cover_box(sw, sh, tw, th, (0.5, 0.5))).filter(ImageFilter.GaussianBlur(blur_radius))
        out.paste(inner, (left, top))
        fill_name = "blur"
    else:
        try:
            colour = tuple(int(c) for c in fill)
            assert len(colour) == 3 and all(0 <= c <= 255 for c in colour)
        except (TypeError, ValueError, AssertionError):
            raise FitError(f"fill must be an (r, g, b) colour with values 0-255, 'edge' or 'blur', "
                           f"got {fill!r}") from None
        out = Image.new("RGB", (tw, th), colour)
        out.paste(inner, (left, top))
        fill_name = f"rgb{colour}"
    return out, (ih / sh, iw / sw), (left, top, left + iw, top + ih), fill_name


def _report(mode, source_hw, target_hw, scale, crop_box, image_box, focus, fill_name) -> FitReport:
    (sh, sw), (th, tw) = source_hw, target_hw
    distortion = abs(scale[1] / scale[0] - 1.0) * 100.0
    kept = (crop_box[2] - crop_box[0]) * (crop_box[3] - crop_box[1]) if crop_box else sw * sh
    cropped = max(0.0, (1.0 - kept / (sw * sh)) * 100.0)
    ib = image_box
    padded = max(0.0, (1.0 - (ib[2] - ib[0]) * (ib[3] - ib[1]) / (tw * th)) * 100.0)
    return FitReport(mode=mode, source_size=(sh, sw), target_size=(th, tw), scale=scale, crop_box=crop_box,
                     image_box=image_box, distortion_pct=distortion, cropped_pct=cropped, padded_pct=padded,
                     focus=focus, fill=fill_name)

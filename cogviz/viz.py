"""Pure renderers: they return images, arrays or PNG bytes and never display anything."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from .fit import FitReport

__all__ = ["to_png", "fit_overlay", "thumbnail"]


def to_png(image: "Image.Image | np.ndarray") -> bytes:
    """PNG bytes of a PIL image or a uint8 (H, W[, 3]) array."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)  # speed over size: these are previews
    return buf.getvalue()


def thumbnail(image: Image.Image, max_side: int = 360) -> tuple[Image.Image, float]:
    """A copy no larger than ``max_side`` on its long side, and the factor applied."""
    f = min(1.0, max_side / max(image.size))
    if f >= 1.0:
        return image.copy(), 1.0
    size = (max(1, round(image.width * f)), max(1, round(image.height * f)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), f


def fit_overlay(source: Image.Image, report: FitReport, *, max_side: int = 360,
                colour: tuple[int, int, int] = (255, 64, 64)) -> Image.Image:
    """The source with what a fit keeps outlined and what it discards dimmed.

    crop: the crop box drawn, the cut-away area darkened. pad and stretch keep the whole source: it
    is outlined, and the report (padding, stretch) is read beside the fitted result.
    """
    thumb, f = thumbnail(source.convert("RGB"), max_side)
    w, h = thumb.size
    box = report.crop_box if report.crop_box is not None else (0, 0, source.width, source.height)
    l, t, r, b = (v * f for v in box)
    a = np.asarray(thumb).astype(np.float32)
    keep = np.zeros((h, w), bool)
    keep[int(round(t)):int(round(b)), int(round(l)):int(round(r))] = True
    a[~keep] *= 0.35
    out = Image.fromarray(a.astype(np.uint8))
    d = ImageDraw.Draw(out)
    d.rectangle([l, t, max(l, r - 1), max(t, b - 1)], outline=colour, width=max(2, round(max_side / 180)))
    return out

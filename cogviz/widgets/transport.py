"""Widget transport: pictures as PNG bytes made for live widget updates (indexed colour: fast and small)."""
from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image

from ..viz.latents import _CMAPS, FLAT_GREY
from ..viz.picture import _lut

_UI_COLOURS = ((255, 255, 255), (0, 0, 0), (40, 40, 40), (60, 60, 60), FLAT_GREY,
               (90, 90, 90), (170, 170, 170), (210, 210, 210), (235, 235, 235))  # + greys for smoothed text


@functools.lru_cache(maxsize=16)
def _palette_image(cmap: str) -> Image.Image:
    colours = np.concatenate([_lut(cmap)[::2], np.array(_UI_COLOURS, np.uint8)])  # 128 map levels + UI colours
    pal = Image.new("P", (1, 1))
    pal.putpalette(colours.ravel().tolist())
    return pal


def mosaic_png(image: np.ndarray, *, norm: str = "symmetric", cmap: str | None = None) -> bytes:
    """PNG bytes of a mosaic, stored as an indexed-colour PNG over its colormap (128 levels) and the
    label colours: about 4x faster to encode and 3x smaller than RGB, for live widget updates."""
    q = Image.fromarray(image).quantize(palette=_palette_image(cmap or _CMAPS[norm]), dither=Image.Dither.NONE)
    buf = io.BytesIO()
    q.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()

"""The picture type and the renderers of images: every renderer returns a :class:`Picture`, a uint8
``(H, W, 3)`` array that shows itself as a PNG wherever IPython displays it."""
from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageDraw

from ..errors import ViewError
from ..fit import FitReport


class Picture(np.ndarray):
    """A rendered picture: a uint8 ``(H, W, 3)`` array that displays itself as a PNG.

    Use it as the array it is (slicing, ``np.concatenate``, ``Image.fromarray``), or
    ``.save(path)``, ``.to_png()``, ``.to_array()`` (a plain ndarray), ``.to_pil()``. ``width`` (CSS
    pixels) sets the displayed width.

    >>> pic = picture(np.zeros((4, 6, 3), np.uint8), title=None)
    >>> pic.shape, pic.to_png()[:4], pic._repr_png_()[:4]
    ((4, 6, 3), b'\\x89PNG', b'\\x89PNG')
    """

    width: int | None = None
    figure = None

    def __new__(cls, array, *, width: int | None = None, figure=None):
        a = np.asarray(array)
        if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
            raise ViewError(f"a Picture is a uint8 (H, W), (H, W, 3) or (H, W, 4) array, got {a.dtype} {a.shape}")
        obj = np.ascontiguousarray(a).view(cls)
        obj.width, obj.figure = width, figure
        return obj

    def __array_finalize__(self, obj):
        self.width = getattr(obj, "width", None)
        self.figure = None

    def _is_image(self) -> bool:
        return self.dtype == np.uint8 and (self.ndim == 2 or (self.ndim == 3 and self.shape[-1] in (3, 4))) \
            and self.size > 0

    def to_array(self) -> np.ndarray:
        """The pixels as a plain ``np.ndarray``."""
        return np.asarray(self).view(np.ndarray)

    def to_pil(self) -> Image.Image:
        return Image.fromarray(self.to_array())

    def to_png(self) -> bytes:
        return to_png(self.to_array())

    def save(self, path) -> None:
        """Write the picture (format from the suffix: .png, .jpg, .webp, ...)."""
        self.to_pil().save(path)

    def _repr_png_(self):
        if not self._is_image():
            return None  # a slice that is no longer a picture displays as an array
        if self.width:
            return self.to_png(), {"width": int(self.width)}
        return self.to_png()

    def __repr__(self):
        if self._is_image() and type(self) is Picture:
            return f"<cogviz Picture {self.shape[1]}x{self.shape[0]}>"
        return repr(self.to_array())

    def __reduce__(self):  # pickles as a plain array
        return (picture, (self.to_array(),))


def picture(image, *, title: str | None = None, width: int | None = None) -> Picture:
    """Any image (a uint8 array, a PIL image, a matplotlib Figure) as a :class:`Picture`, optionally titled.

    A Figure is drawn with its own Agg canvas (no pyplot), and kept on ``.figure``.
    """
    fig = None
    if hasattr(image, "savefig") and hasattr(image, "canvas"):
        fig = image
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    elif isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ViewError(f"picture() takes uint8 pixels, a PIL image or a matplotlib Figure, got {a.dtype} {a.shape}")
    if title:
        a = _titled(a, title)
    return Picture(a, width=width, figure=fig)


def _titled(a: np.ndarray, title: str) -> np.ndarray:
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    a = a[..., :3]
    bar = np.full((16, a.shape[1], 3), 255, np.uint8)
    img = Image.fromarray(np.concatenate([bar, a]))
    ImageDraw.Draw(img).text((2, 2), title, fill=(0, 0, 0))
    return np.asarray(img)


def _pictured(fn):
    """Renderer decorator: whatever the renderer composes comes back as a Picture."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        return out if isinstance(out, Picture) else picture(out)

    return wrapper


def to_png(image: Image.Image | np.ndarray) -> bytes:
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


@_pictured
def fit_overlay(source: Image.Image, report: FitReport, *, max_side: int = 360,
                colour: tuple[int, int, int] = (255, 64, 64)) -> Image.Image:
    """The source with what a fit keeps outlined and what it discards dimmed.

    crop: the crop box drawn, the cut-away area darkened. pad and stretch keep the whole source: it
    is outlined, and the report (padding, stretch) is read beside the fitted result. ``source`` may
    be the full-resolution source or any reduced copy of it (e.g. ``FitSource.preview``): the
    report's full-resolution boxes are mapped onto it.
    """
    thumb, f = thumbnail(source.convert("RGB"), max_side)
    w, h = thumb.size
    f *= source.width / report.source_size[1]  # full-resolution source pixels -> thumbnail pixels
    box = report.crop_box if report.crop_box is not None else (0, 0, report.source_size[1], report.source_size[0])
    l, t, r, b = (v * f for v in box)
    a = np.asarray(thumb).astype(np.float32)
    keep = np.zeros((h, w), bool)
    keep[int(round(t)):int(round(b)), int(round(l)):int(round(r))] = True
    a[~keep] *= 0.35
    out = Image.fromarray(a.astype(np.uint8))
    d = ImageDraw.Draw(out)
    d.rectangle([l, t, max(l, r - 1), max(t, b - 1)], outline=colour, width=max(2, round(max_side / 180)))
    return out


@functools.lru_cache(maxsize=16)
def _lut(cmap: str) -> np.ndarray:
    import matplotlib

    return (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255 + 0.5).astype(np.uint8)


@_pictured
def colourise(values, *, vmax: float | None = None, cmap: str = "magma") -> np.ndarray:
    """A 2-d array of non-negative values -> uint8 ``(h, w, 3)`` through a colormap, 0..vmax (default: its max)."""
    v = _as_np(values)
    top = vmax or float(v.max()) or 1.0
    return _lut(cmap)[(np.clip(v / top, 0, 1) * 255).astype(np.uint8)]


@_pictured
def rgb_tiles(images, titles, *, zoom: int | None = None, gap: int = 4) -> np.ndarray:
    """uint8 ``(h, w, 3)`` images side by side with titles (e.g. PCA / RGB-map previews per frame)."""
    images = [np.asarray(i) for i in images]
    h = max(i.shape[0] for i in images)
    zoom = zoom or max(1, 96 // h)
    images = [_upscale(i, zoom) for i in images]
    width = sum(i.shape[1] for i in images) + gap * (len(images) - 1)
    out = np.full((14 + max(i.shape[0] for i in images), width, 3), 255, np.uint8)
    x = 0
    for im in images:
        out[14:14 + im.shape[0], x:x + im.shape[1]] = im
        x += im.shape[1] + gap
    img = Image.fromarray(out)
    d = ImageDraw.Draw(img)
    x = 0
    for im, t in zip(images, titles):
        d.text((x + 1, 1), t, fill=(0, 0, 0))
        x += im.shape[1] + gap
    return np.asarray(img)


def figure_png(fig, dpi: int = 90) -> bytes:
    """PNG bytes of a matplotlib Figure (no pyplot, no display), or of a :class:`Picture`."""
    if isinstance(fig, Picture):
        return fig.to_png()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


@_pictured
def heatmap(values, *, row_labels, col_labels, title: str = "", cmap: str = "magma", cell: int = 28,
            fmt: str = "{:.2f}") -> np.ndarray:
    """A labelled 2-d heat map (values in [0, 1] coloured over their own range) -> uint8 image."""
    v = _as_np(values)
    lo, hi = float(v.min()), float(v.max())
    idx = np.clip((v - lo) / max(hi - lo, 1e-12) * 255 + 0.5, 0, 255).astype(np.uint8)
    rgb = _lut(cmap)[idx].repeat(cell, 0).repeat(cell * 2, 1)
    left, top = 64, 28
    out = np.full((top + rgb.shape[0] + 4, left + rgb.shape[1] + 4, 3), 255, np.uint8)
    out[top:top + rgb.shape[0], left:left + rgb.shape[1]] = rgb
    img = Image.fromarray(out)
    d = ImageDraw.Draw(img)
    d.text((2, 1), title, fill=(0, 0, 0))
    for j, lab in enumerate(col_labels):
        d.text((left + j * cell * 2 + 2, 15), str(lab), fill=(0, 0, 0))
    for i, lab in enumerate(row_labels):
        d.text((2, top + i * cell + cell // 2 - 5), str(lab), fill=(0, 0, 0))
        for j in range(v.shape[1]):
            bright = idx[i, j] > 150
            d.text((left + j * cell * 2 + 3, top + i * cell + cell // 2 - 5), fmt.format(v[i, j]),
                   fill=(0, 0, 0) if bright else (255, 255, 255))
    return np.asarray(img)


@_pictured
def frame_strip(frames, indices=None, *, titles=None, zoom: int | None = None, gap: int = 4) -> np.ndarray:
    """Chosen frames of a uint8 ``(F, H, W, 3)`` video side by side, titled ``frame i`` (or ``titles``)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ViewError(f"frame_strip takes uint8 frames (F, H, W, 3), got shape {frames.shape}")
    if indices is None:
        indices = np.unique(np.linspace(0, len(frames) - 1, min(5, len(frames))).round().astype(int)).tolist()
    titles = titles or [f"frame {i}" for i in indices]
    return rgb_tiles([frames[i] for i in indices], titles, zoom=zoom, gap=gap)


def _as_np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _upscale(img: np.ndarray, zoom: int) -> np.ndarray:
    return img if zoom == 1 else img.repeat(zoom, axis=-3).repeat(zoom, axis=-2)

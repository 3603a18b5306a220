"""Pure renderers: they return pictures, arrays or PNG bytes and never display anything.

Every renderer returns a :class:`Picture`: a uint8 ``(H, W, 3)`` numpy array that shows itself as a
PNG wherever IPython displays it (``_repr_png_``) - inline, JupyterLab, the classic notebook,
exported HTML - whatever state the kernel is in: nothing relies on pyplot having been touched.
Matplotlib figures (``stats_figure``, ``plot``-style renderers) are drawn with the Agg canvas into a
``Picture`` too, with the figure kept on ``.figure`` for editing.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageDraw

from .fit import FitReport

__all__ = ["Picture", "picture", "to_png", "fit_overlay", "thumbnail", "NORMS", "zero_colour", "channel_mosaic", "frames_overview", "rgb_tiles",
           "denoising_film", "stats_figure", "figure_png", "heatmap", "mosaic_png", "colourise", "frame_strip",
           "anchor_decay", "fidelity_motion"]


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
            raise ValueError(f"a Picture is a uint8 (H, W), (H, W, 3) or (H, W, 4) array, got {a.dtype} {a.shape}")
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
        raise ValueError(f"picture() takes uint8 pixels, a PIL image or a matplotlib Figure, got {a.dtype} {a.shape}")
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


# ============================================================================ latent renderers
# Channel grids are composed with numpy (a colour lookup table indexed by quantised values) and
# labelled with PIL: one array operation per view instead of one matplotlib axes per channel.

NORMS = ("symmetric", "shared", "channel")
_CMAPS = {"symmetric": "RdBu_r", "shared": "viridis", "channel": "viridis"}
FLAT_GREY = (128, 128, 128)  #: per-channel mode: a constant channel (e.g. z_img padding) has no range


@functools.lru_cache(maxsize=16)
def _lut(cmap: str) -> np.ndarray:
    import matplotlib

    return (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255 + 0.5).astype(np.uint8)


def zero_colour(norm: str = "symmetric", cmap: str | None = None) -> tuple[int, int, int]:
    """The colour a value of exactly 0 gets under ``symmetric`` normalisation (the colormap's centre)."""
    return tuple(int(v) for v in _lut(cmap or _CMAPS["symmetric"])[128])


def _as_np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _normalise(a: np.ndarray, norm: str, vmax: float | None = None):
    """(C, h, w) -> (uint8 LUT indices (C, h, w), lo (C,), hi (C,), flat (C,) bool)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    c = a.shape[0]
    flat_vals = a.reshape(c, -1)
    if norm == "channel":
        lo, hi = flat_vals.min(1), flat_vals.max(1)
    elif norm == "shared":
        lo, hi = np.full(c, a.min()), np.full(c, a.max())
    else:
        m = vmax or float(np.abs(a).max()) or 1.0
        lo, hi = np.full(c, -m), np.full(c, m)
    flat = hi <= lo if norm != "symmetric" else ~np.any(a.reshape(c, -1), axis=1)
    span = np.where(flat, 1.0, hi - lo)
    idx = np.clip((a - lo[:, None, None]) / span[:, None, None] * 255 + 0.5, 0, 255).astype(np.uint8)
    if norm == "symmetric":
        idx[flat] = 128
    return idx, lo, hi, flat


def _upscale(img: np.ndarray, zoom: int) -> np.ndarray:
    return img if zoom == 1 else img.repeat(zoom, axis=-3).repeat(zoom, axis=-2)


@_pictured
def channel_mosaic(latent, *, norm: str = "symmetric", cols: int = 8, zoom: int | None = None, split: int | None = None,
                   labels: bool = True, cmap: str | None = None, gap: int = 2, title: str | None = None,
                   vmax: float | None = None) -> np.ndarray:
    """One latent frame ``(C, h, w)`` as a labelled grid of channel tiles -> uint8 ``(H, W, 3)``.

    norm: ``"symmetric"`` (default; +-max|x| over all channels, diverging colormap, 0 is the
    centre colour), ``"shared"`` (one min-max for all channels) or ``"channel"`` (each channel its
    own min-max; constant channels are drawn flat grey). ``split=16`` draws the 32-channel
    transformer input as two labelled blocks, ``z_t`` (channels 0-15) and ``z_img`` (16-31),
    separated by a band. A footer reads out the value range. ``vmax`` fixes the symmetric scale
    (e.g. one scale over all the steps of a film).
    """
    a = _as_np(latent)
    if a.ndim != 3:
        raise ValueError(f"channel_mosaic takes one latent frame (C, h, w), got shape {a.shape}")
    c, h, w = a.shape
    zoom = zoom or max(1, 48 // max(h, 1))
    idx, lo, hi, flat = _normalise(a, norm, vmax)
    rgb = _lut(cmap or _CMAPS[norm])[idx]  # (C, h, w, 3)
    if norm == "channel":
        rgb[flat] = FLAT_GREY
    rgb = _upscale(rgb, zoom)
    th, tw = h * zoom, w * zoom
    label_h = 12 if labels else 0
    groups = [(0, c)] if not split or split >= c else [(0, split), (split, c)]
    names = [None] if len(groups) == 1 else [f"z_t  (channels 0-{split - 1})", f"z_img  (channels {split}-{c - 1})"]
    cols = min(cols, max(e - s for s, e in groups))
    blocks = []
    for (s, e), name in zip(groups, names):
        n = e - s
        rows = -(-n // cols)
        block = np.full((label_h * (name is not None) + rows * (th + gap + label_h), cols * (tw + gap), 3), 255,
                        np.uint8)
        y0 = label_h if name is not None else 0
        for k in range(n):
            r, q = divmod(k, cols)
            y, x = y0 + r * (th + gap + label_h) + label_h, q * (tw + gap)
            block[y:y + th, x:x + tw] = rgb[s + k]
        blocks.append(block)
    band = np.full((6, blocks[0].shape[1], 3), (60, 60, 60), np.uint8)
    parts = [blocks[0]] + ([band, blocks[1]] if len(blocks) > 1 else [])
    footer_h = 14
    out = np.concatenate(parts + [np.full((footer_h + (14 if title else 0), blocks[0].shape[1], 3), 255, np.uint8)])
    if title:
        out = np.concatenate([np.full((14, out.shape[1], 3), 255, np.uint8), out[:-14]])
    img = Image.fromarray(out)
    d = ImageDraw.Draw(img)
    top = 14 if title else 0
    if title:
        d.text((2, 1), title, fill=(0, 0, 0))
    y_block = top
    for bi, ((s, e), name) in enumerate(zip(groups, names)):
        y0 = y_block + (label_h if name is not None else 0)
        if name is not None:
            d.text((2, y_block), name, fill=(0, 0, 0))
        if labels:
            for k in range(e - s):
                r, q = divmod(k, cols)
                d.text((q * (tw + gap) + 1, y0 + r * (th + gap + label_h)), f"c{s + k}", fill=(40, 40, 40))
        y_block += blocks[bi].shape[0] + (band.shape[0] if bi == 0 else 0)
    rng = f"[{a.min():.3g}, {a.max():.3g}]"
    extra = f", +-{hi[0]:.3g} about 0" if norm == "symmetric" else (", shared" if norm == "shared" else ", per channel")
    d.text((2, out.shape[0] - footer_h), f"norm={norm}: values {rng}{extra}", fill=(0, 0, 0))
    return np.asarray(img)


@_pictured
def frames_overview(latent, *, norm: str = "symmetric", tile: int = 24, split: int | None = None,
                    cmap: str | None = None) -> np.ndarray:
    """A ``(F, C, h, w)`` latent as a frames x channels grid (rows = latent frames) -> uint8 image.

    One normalisation over the whole tensor (symmetric by default), so all-zero frames, such as
    z_img's frames after the first, show as rows of the zero colour. Tiles are shrunk by block
    averaging to about ``tile`` pixels high.
    """
    a = _as_np(latent)
    if a.ndim != 4:
        raise ValueError(f"frames_overview takes (F, C, h, w), got shape {a.shape}")
    f, c, h, w = a.shape
    k = max(1, h // tile)
    hs, ws = h // k, w // k
    small = a[:, :, :hs * k, :ws * k].reshape(f, c, hs, k, ws, k).mean((3, 5))
    if norm == "symmetric":
        m = float(np.abs(small).max()) or 1.0
        idx = np.clip(small / m * 127.5 + 128, 0, 255).astype(np.uint8)
    else:
        lo, hi = float(small.min()), float(small.max())
        idx = np.clip((small - lo) / max(hi - lo, 1e-12) * 255 + 0.5, 0, 255).astype(np.uint8)
    rgb = _lut(cmap or _CMAPS[norm])[idx]
    z = max(1, tile // hs)
    rgb = _upscale(rgb, z)
    th, tw = hs * z, ws * z
    left, top, gap = 70, 14, 1
    sep = 4 if split else 0
    width = left + c * (tw + gap) + sep
    out = np.full((top + f * (th + gap) + 14, width, 3), 255, np.uint8)
    for fi in range(f):
        for ci in range(c):
            x = left + ci * (tw + gap) + (sep if split and ci >= split else 0)
            out[top + fi * (th + gap):top + fi * (th + gap) + th, x:x + tw] = rgb[fi, ci]
    img = Image.fromarray(out)
    d = ImageDraw.Draw(img)
    for fi in range(f):
        zero = not np.any(a[fi, split:] if split else a[fi])
        note = (" z_img=0" if split else " zeros") if zero else (" image" if split and fi == 0 else "")
        d.text((2, top + fi * (th + gap) + th // 2 - 5), f"f{fi}{note}", fill=(0, 0, 0))
    if split:
        d.text((left, 1), "z_t", fill=(0, 0, 0))
        d.text((left + split * (tw + gap) + sep, 1), "z_img", fill=(0, 0, 0))
    else:
        d.text((left, 1), f"channels 0-{c - 1} ->", fill=(0, 0, 0))
    d.text((2, out.shape[0] - 13), f"frames x channels, norm={norm}, values [{a.min():.3g}, {a.max():.3g}]",
           fill=(0, 0, 0))
    return np.asarray(img)


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


def denoising_film(trace, *, frame: int = 0, channels=slice(0, 16), norm: str = "symmetric",
                   cols: int = 8) -> np.ndarray:
    """z_t over the steps beside the fixed z_img, as a video ``(steps, H, W, 3)`` uint8.

    Both panels use one symmetric scale fixed over all steps, so what changes between frames is
    the data: z_t moves from noise towards the clean latent, z_img stays the same. Needs a trace
    with ``step/*/z_t`` and ``z_img`` recorded.
    """
    steps = sorted(int(n.split("/")[1]) for n in trace.names() if n.startswith("step/") and n.endswith("/z_t"))
    if not steps or "z_img" not in trace:
        raise ValueError("denoising_film needs a trace recorded with 'step/*/z_t' and 'z_img'")
    z_img = _as_np(trace["z_img"][0, frame, channels])
    zs = [_as_np(trace[f"step/{i}/z_t"][0, frame, channels]) for i in steps]
    m = max(float(np.abs(np.stack(zs)).max()), float(np.abs(z_img).max())) or 1.0
    right = channel_mosaic(z_img, norm="symmetric", cols=cols, labels=False, vmax=m,
                           title=f"z_img, fixed (latent frame {frame})")
    out = []
    for i, z in zip(steps, zs):
        left = channel_mosaic(z, norm="symmetric", cols=cols, labels=False, vmax=m,
                              title=f"z_t, step {i + 1}/{len(steps)} (latent frame {frame})")
        h = max(left.shape[0], right.shape[0])
        pad = lambda x, h=h: np.pad(x, ((0, h - x.shape[0]), (0, 0), (0, 0)), constant_values=255)  # noqa: E731
        out.append(np.concatenate([pad(left), np.full((h, 8, 3), 255, np.uint8), pad(right)], axis=1))
    return np.stack(out)


@_pictured
def stats_figure(trace, *, frame: int = 0):
    """Per-channel statistics of z_t across the steps against z_img, and histograms: a matplotlib Figure.

    Left: the std of each z_t channel over the steps (one line per channel) and z_img's std (dashed,
    flat: it never changes). Right: histograms of z_t at the first and last step and of z_img.
    """
    from matplotlib.figure import Figure

    from .analysis import channel_stats

    steps = sorted(int(n.split("/")[1]) for n in trace.names() if n.startswith("step/") and n.endswith("/z_t"))
    if not steps or "z_img" not in trace:
        raise ValueError("stats_figure needs a trace recorded with 'step/*/z_t' and 'z_img'")
    std = np.stack([channel_stats(trace[f"step/{i}/z_t"][0, frame])["std"] for i in steps])  # (S, C)
    img_std = channel_stats(trace["z_img"][0, frame])["std"]
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(np.array(steps) + 1, std, lw=0.8, color="tab:blue", alpha=0.6)
    ax1.plot([], [], color="tab:blue", label="z_t channels")
    for v in img_std:
        ax1.axhline(v, color="tab:red", lw=0.6, ls="--", alpha=0.6)
    ax1.plot([], [], color="tab:red", ls="--", label="z_img channels (fixed)")
    ax1.set(xlabel="step", ylabel="std over the latent frame", title=f"per-channel std, latent frame {frame}")
    ax1.legend(fontsize=8)
    first = _as_np(trace[f"step/{steps[0]}/z_t"][0, frame]).ravel()
    last = _as_np(trace[f"step/{steps[-1]}/z_t"][0, frame]).ravel()
    zi = _as_np(trace["z_img"][0, frame]).ravel()
    bins = np.linspace(min(first.min(), last.min(), zi.min()), max(first.max(), last.max(), zi.max()), 60)
    for v, lab, col in ((first, f"z_t step {steps[0] + 1}", "tab:gray"), (last, f"z_t step {steps[-1] + 1}", "tab:blue"),
                        (zi, "z_img", "tab:red")):
        ax2.hist(v, bins=bins, histtype="step", label=lab, color=col, density=True)
    ax2.set(xlabel="value", ylabel="density", title="value histograms")
    ax2.legend(fontsize=8)
    return fig


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


@_pictured
def frame_strip(frames, indices=None, *, titles=None, zoom: int | None = None, gap: int = 4) -> np.ndarray:
    """Chosen frames of a uint8 ``(F, H, W, 3)`` video side by side, titled ``frame i`` (or ``titles``)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frame_strip takes uint8 frames (F, H, W, 3), got shape {frames.shape}")
    if indices is None:
        indices = np.unique(np.linspace(0, len(frames) - 1, min(5, len(frames))).round().astype(int)).tolist()
    titles = titles or [f"frame {i}" for i in indices]
    return rgb_tiles([frames[i] for i in indices], titles, zoom=zoom, gap=gap)


def _runs(runs, by: str):
    """``{label: table or [tables]}`` or a long DataFrame with a ``by`` column -> [(label, [tables])]."""
    import pandas as pd

    if isinstance(runs, pd.DataFrame):
        if by not in runs.columns:
            raise ValueError(f"the table has no {by!r} column to tell runs apart; columns: {list(runs.columns)}")
        return [(str(k), [g]) for k, g in runs.groupby(by, sort=False)]
    if not isinstance(runs, dict) or not runs:
        raise ValueError("runs: expected {label: anchor_metrics table (or a list of them)} or a DataFrame with a "
                         f"{by!r} column, got {type(runs).__name__}")
    return [(str(k), list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in runs.items()]


def _colours(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


@_pictured
def anchor_decay(runs, metric: str = "ssim", *, by: str = "label", title: str | None = None):
    """How the anchor decays over the video: ``metric`` against frame, one line per ablation.

    ``runs``: ``{label: anchor_metrics table}`` (a list of tables per label — several seeds — draws
    their mean with a min-max band), or one long DataFrame with ``frame``, ``metric`` and ``by``
    columns (a sweep's results). A matplotlib Figure drawn into a :class:`Picture`.
    """
    import pandas as pd
    from matplotlib.figure import Figure

    from .metrics import REGISTRY, label

    if metric not in REGISTRY:
        raise ValueError(f"metric={metric!r}: not a per-frame metric; expected one of {', '.join(REGISTRY)}")
    groups = _runs(runs, by)
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for (lab, tables), colour in zip(groups, _colours(len(groups))):
        long = pd.concat([pd.DataFrame({"frame": t["frame"], "v": t[metric]}) for t in tables])
        stats = long.groupby("frame")["v"].agg(["mean", "min", "max", "count"])
        n = int(stats["count"].max())
        ax.plot(stats.index, stats["mean"], marker="o", ms=3, lw=1.5, color=colour,
                label=lab if n == 1 else f"{lab} (n={n})")
        if n > 1:
            ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.15, lw=0)
    ax.set(xlabel="frame", ylabel=label(metric), title=title or f"anchor decay: {label(metric)} per frame")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=1 if len(groups) <= 6 else 2)
    return fig


@_pictured
def fidelity_motion(runs, *, by: str = "label", x: str = "motion", y: str = "mean_ssim",
                    title: str | None = None):
    """The fidelity-motion plane: each run a point (``x``: mean motion, ``y``: mean SSIM to the image),
    one colour per ablation, a ringed marker at each ablation's mean — the trade-off that image
    noise and strength tune.

    ``runs``: ``{label: anchor_metrics table, a summarize() Series, or a list of either}``, or a
    DataFrame of summaries (one row per run) with a ``by`` column.
    """
    import pandas as pd
    from matplotlib.figure import Figure

    from .metrics import label, summarize

    def point(t):
        if isinstance(t, pd.DataFrame) and "frame" in t.columns:
            return summarize(t)
        return t

    groups = _runs(runs, by)
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for (lab, tables), colour in zip(groups, _colours(len(groups))):
        rows = []
        for t in tables:
            t = point(t)
            rows.append(t if isinstance(t, pd.DataFrame) else pd.DataFrame([t]))
        pts = pd.concat(rows)
        ax.scatter(pts[x], pts[y], s=22, color=colour, alpha=0.55, lw=0)
        ax.scatter([pts[x].mean()], [pts[y].mean()], s=90, color=colour, edgecolors="black", lw=1.0,
                   label=lab if len(pts) == 1 else f"{lab} (n={len(pts)})", zorder=3)
    ax.set(xlabel=label(x), ylabel=label(y),
           title=title or "fidelity against motion: up = anchored, right = moving")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=1 if len(groups) <= 6 else 2)
    return fig

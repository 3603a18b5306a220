"""Maps people read: where each frame reads the image (read maps over the image, correspondence
arrows over the frames) and block maps of changes on a diverging scale centred at 0 — each with a
colour bar, labelled axes, drawn large (matplotlib figures into a :class:`Picture`)."""
from __future__ import annotations

import numpy as np

from ..errors import CogvizError
from .picture import _as_np, _pictured

__all__ = ["read_map_picture", "map_over_frames", "arrows_picture", "change_map"]


def _image(image) -> np.ndarray:
    from ..fit import FittedImage

    if isinstance(image, FittedImage):
        image = image.image
    return np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)


@_pictured
def read_map_picture(readmap, image, *, frames=None, title: str | None = None, panel: float = 2.6):
    """The image with each token frame's read mass over it: ``readmap`` ``(F', h', w')`` (one row of
    ``step/{i}/block/{l}/readmap``, mean over heads: ``trace.row(name).mean(0)``), or ``(heads, F',
    h', w')`` averaged here. One panel per frame in ``frames`` (default: every later frame), one
    colour scale for all, with its colour bar."""
    from matplotlib.figure import Figure

    m = _as_np(readmap)
    if m.ndim == 4:
        m = m.mean(0)
    if m.ndim != 3:
        raise CogvizError(f"readmap of shape {m.shape}: expected (frames, h, w) or (heads, frames, h, w)")
    frames = list(range(1, m.shape[0])) if frames is None else list(frames)
    bad = [f for f in frames if not 0 <= f < m.shape[0]]
    if bad or not frames:
        raise CogvizError(f"frames={frames}: this read map has token frames 0-{m.shape[0] - 1}")
    img = _image(image)
    h, w = img.shape[:2]
    fig = Figure(figsize=(panel * len(frames) + 1.0, panel * h / w + 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(frames)))
    vmax = float(m[frames].max())
    for ax, f in zip(axes, frames):
        ax.imshow(img)
        shown = ax.imshow(m[f], cmap="magma", alpha=0.6, vmin=0, vmax=vmax, extent=(0, w, h, 0),
                          interpolation="nearest")
        ax.set(title=f"token frame {f} reads", xticks=[], yticks=[])
    fig.colorbar(shown, ax=list(axes), shrink=0.9, label="attention on each image token")
    fig.suptitle(title or "where each frame reads the image")
    return fig


@_pictured
def map_over_frames(maps, frames_rgb, *, frames=None, title: str = "", label: str = "attention",
                    panel: float = 2.6, vmin: float = 0.0, vmax: float | None = None):
    """Maps over the video's token frames ``(F', h', w')`` (a word's map, a region's), each drawn over
    the video frame its latent frame ends on (latent frame j: video frame 4j), one colour scale
    (``vmin`` to ``vmax``, by default the shown maps' largest value), a colour bar."""
    from matplotlib.figure import Figure

    m = _as_np(maps)
    video = np.asarray(frames_rgb)
    frames = list(range(m.shape[0])) if frames is None else list(frames)
    bad = [f for f in frames if not 0 <= f < m.shape[0]]
    if bad or not frames:
        raise CogvizError(f"frames={frames}: these maps have token frames 0-{m.shape[0] - 1}")
    h, w = video.shape[1:3]
    fig = Figure(figsize=(panel * len(frames) + 1.0, panel * h / w + 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(frames)))
    vmax = float(m[frames].max()) if vmax is None else vmax
    for ax, f in zip(axes, frames):
        ax.imshow(video[min(len(video) - 1, 4 * f)])
        shown = ax.imshow(m[f], cmap="magma", alpha=0.6, vmin=vmin, vmax=vmax, extent=(0, w, h, 0),
                          interpolation="nearest")
        ax.set(title=f"token frame {f}", xticks=[], yticks=[])
    fig.colorbar(shown, ax=list(axes), shrink=0.9, label=label)
    fig.suptitle(title)
    return fig


@_pictured
def arrows_picture(arrows, frames_rgb, *, frames=None, title: str | None = None, panel: float = 2.6,
                   true=None):
    """Correspondence arrows over the video: ``arrows`` ``(F', h', w', 2)`` (:func:`cogviz.readmaps.flow`
    or :func:`~cogviz.readmaps.argmax_flow` of one row), each from the image-frame token a token reads
    to the token, drawn over the video frame that latent frame ends on; ``true``: an optional
    ``(F', 2)`` displacement drawn beside, in tokens."""
    from matplotlib.figure import Figure

    a = _as_np(arrows)
    video = np.asarray(frames_rgb)
    frames = list(range(1, a.shape[0])) if frames is None else list(frames)
    rows, cols = a.shape[1:3]
    h, w = video.shape[1:3]
    sy, sx = h / rows, w / cols
    fig = Figure(figsize=(panel * len(frames) + 0.4, panel * h / w + 0.7), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(frames)))
    yy, xx = np.mgrid[0:rows, 0:cols]
    for ax, f in zip(axes, frames):
        ax.imshow(video[min(len(video) - 1, 4 * f)])
        dy, dx = a[f][..., 0], a[f][..., 1]
        ax.quiver((xx - dx + 0.5) * sx, (yy - dy + 0.5) * sy, dx * sx, dy * sy, angles="xy", scale_units="xy",
                  scale=1, color="cyan", width=0.012)
        if true is not None:
            ty, tx = _as_np(true)[f]
            ax.annotate("", xy=(w / 2 + tx * sx, h / 2 + ty * sy), xytext=(w / 2, h / 2),
                        arrowprops=dict(color="yellow", lw=2))
        ax.set(title=f"token frame {f}", xticks=[], yticks=[])
    fig.suptitle(title or "where each token reads from in the image frame (cyan); true motion (yellow)")
    return fig


@_pictured
def change_map(values, *, row_labels, col_labels, title: str = "", label: str = "change", xlabel: str = "",
               ylabel: str = "", centred: bool = True, low=None, high=None):
    """A table (rows x columns) with a colour bar and labelled axes, each cell annotated: changes on a
    diverging scale centred at 0 (blue below, red above); ``centred=False``: values on a sequential
    scale over their own range. ``low``/``high`` (tables of the same shape): each cell's interval,
    written as ``±`` its half-width, the cell hatched where the interval holds 0."""
    from matplotlib.colors import Normalize, TwoSlopeNorm
    from matplotlib.figure import Figure

    v = _as_np(values).astype(float)
    if v.ndim != 2:
        raise CogvizError(f"values of shape {v.shape}: expected a 2-d table")
    if (low is None) != (high is None) or (low is not None and (np.shape(low) != v.shape or np.shape(high) != v.shape)):
        raise CogvizError(f"low and high: give both, each of the values' shape {v.shape}")
    span = float(np.nanmax(np.abs(v))) or 1e-9
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    norm = TwoSlopeNorm(0.0, -span, span) if centred else Normalize(lo, max(hi, lo + 1e-9))
    small = v.shape[1] <= 12
    fig = Figure(figsize=(max(4.0, (1.3 if small else 0.5) * v.shape[1] + 2.4), max(3.0, 0.42 * v.shape[0] + 1.4)),
                 layout="constrained")
    ax = fig.subplots()
    shown = ax.imshow(v, cmap="RdBu_r" if centred else "magma", norm=norm, aspect="auto")
    for (i, j), x in np.ndenumerate(v if small else np.empty((0, 0))):
        dark = abs(x) > 0.6 * span if centred else norm(x) < 0.5
        half = "" if low is None else f"\n±{(high[i][j] - low[i][j]) / 2:.3f}"
        ax.text(j, i, (f"{x:+.3f}" if centred else f"{x:.3f}") + half, ha="center", va="center", fontsize=8,
                color="white" if dark else "black")
    if low is not None:
        from matplotlib.patches import Rectangle

        for (i, j), lo in np.ndenumerate(_as_np(low).astype(float)):
            if lo <= 0 <= float(_as_np(high)[i, j]):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="0.45", lw=0))
    ax.set(xticks=range(v.shape[1]), xticklabels=col_labels, yticks=range(v.shape[0]), yticklabels=row_labels,
           xlabel=xlabel, ylabel=ylabel, title=title)
    fig.colorbar(shown, ax=ax, label=label)
    return fig

"""Latent renderers: channel mosaics, frame overviews, the denoising film and latent statistics."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..errors import ViewError
from .picture import _as_np, _lut, _pictured, _upscale

NORMS = ("symmetric", "shared", "channel")


_CMAPS = {"symmetric": "RdBu_r", "shared": "viridis", "channel": "viridis"}


FLAT_GREY = (128, 128, 128)  #: per-channel mode: a constant channel (e.g. z_img padding) has no range


def zero_colour(norm: str = "symmetric", cmap: str | None = None) -> tuple[int, int, int]:
    """The colour a value of exactly 0 gets under ``symmetric`` normalisation (the colormap's centre)."""
    return tuple(int(v) for v in _lut(cmap or _CMAPS["symmetric"])[128])


def _normalise(a: np.ndarray, norm: str, vmax: float | None = None):
    """(C, h, w) -> (uint8 LUT indices (C, h, w), lo (C,), hi (C,), flat (C,) bool)."""
    if norm not in NORMS:
        raise ViewError(f"norm must be one of {NORMS}, got {norm!r}")
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
        raise ViewError(f"channel_mosaic takes one latent frame (C, h, w), got shape {a.shape}")
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
        raise ViewError(f"frames_overview takes (F, C, h, w), got shape {a.shape}")
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


def denoising_film(trace, *, frame: int = 0, channels=slice(0, 16), norm: str = "symmetric",
                   cols: int = 8) -> np.ndarray:
    """z_t over the steps beside the fixed z_img, as a video ``(steps, H, W, 3)`` uint8.

    Both panels use one symmetric scale fixed over all steps, so what changes between frames is
    the data: z_t moves from noise towards the clean latent, z_img stays the same. Needs a trace
    with ``step/*/z_t`` and ``z_img`` recorded.
    """
    steps = sorted(int(n.split("/")[1]) for n in trace.names() if n.startswith("step/") and n.endswith("/z_t"))
    if not steps or "z_img" not in trace:
        raise ViewError("denoising_film needs a trace recorded with 'step/*/z_t' and 'z_img'")
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

    from ..analysis import channel_stats

    steps = sorted(int(n.split("/")[1]) for n in trace.names() if n.startswith("step/") and n.endswith("/z_t"))
    if not steps or "z_img" not in trace:
        raise ViewError("stats_figure needs a trace recorded with 'step/*/z_t' and 'z_img'")
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

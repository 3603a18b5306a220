"""Ablations as *where x what* (pyvene's location x intervention): a :class:`Where` says which tensor,
which steps, blocks, frames, latent cells and CFG half; an operation says what happens there (zero,
scale, noise, shift, flip, blur, replace, patch from a source, an attention factor). :func:`act`
makes the pair one sampler :class:`~cogviz.points.Intervention`; :func:`attention` one
:class:`~cogviz.inside.AttentionEdit`. The named kinds (:mod:`cogviz.ablations`) are presets of
these pairs, and a research question the kinds do not cover is one more pair::

    >>> import torch
    >>> from cogviz.points import Context
    >>> iv = act(Where("z_img", frames=(0,), box=(0, 0, 1, 1)), Scale(0.0))
    >>> z = torch.ones(1, 2, 1, 2, 2)
    >>> iv.fn(z, Context("z_img", None, None, "both", ()))[0, :, 0].tolist()
    [[[0.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]]

The step window is :func:`cogviz.points.in_window` (one rule for ablations and attention edits).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import AblationError
from ..points import Intervention, in_window

__all__ = ["Where", "Zero", "Scale", "Noise", "Shift", "Flip", "Blur", "Replace", "FromSource", "AttentionFactor",
           "act", "attention", "OPERATIONS"]

_HALVES = {None: "both", "conditional": "cond", "unconditional": "uncond"}


@dataclass(frozen=True)
class Where:
    """Where an operation acts.

    ``point``: a point name or pattern (``"z_img"``, ``"image.pixels"``, ``"step/*/input"``,
    ``"step/*/z_t"``, ``"step/*/block/3/hidden"``, ``"latents.final"``; ``"attention"`` for attention
    edits); ``start``/``end``: the step window, fractions of the steps (per-step points); ``layers``:
    blocks and ``heads``: attention heads (attention edits; None: all); ``part="image"``: the image
    channels of ``step/*/input`` only; ``frames``: indices along the frame axis (latent frames; token frames at block points),
    ``"image"`` / ``"later"`` at block points; ``box``: latent cells ``(c0, r0, c1, r1)``,
    end-exclusive, and ``outside=True`` for every cell but those; ``half``: ``"conditional"`` or
    ``"unconditional"`` (one CFG half of ``z_img`` / ``step/*/input``; None: both)."""

    point: str
    start: float = 0.0
    end: float = 1.0
    layers: tuple[int, ...] | None = None
    heads: tuple[int, ...] | None = None
    part: str = "all"
    frames: Any = None
    box: tuple[int, int, int, int] | None = None
    outside: bool = False
    half: str | None = None

    def __post_init__(self):
        if not 0.0 <= self.start < self.end <= 1.0:
            raise AblationError(f"Where({self.point!r}): the step window [{self.start}, {self.end}) must satisfy "
                                "0 <= start < end <= 1 (fractions of the steps)")
        if self.part not in ("all", "image"):
            raise AblationError(f"Where({self.point!r}).part={self.part!r}: expected 'all' or 'image'")
        if self.half not in _HALVES:
            raise AblationError(f"Where({self.point!r}).half={self.half!r}: expected 'conditional', "
                                "'unconditional' or None (both)")

    def active(self, step: int | None, steps: int) -> bool:
        """Whether step ``step`` of ``steps`` lies in the window (points without a step always do)."""
        return step is None or in_window(step, steps, self.start, self.end)

    def region(self, x: torch.Tensor, channels: int) -> tuple:
        """The index into ``x`` (rows, frames, channels, ...) this place covers (the box aside)."""
        frames = slice(None)
        if self.frames == "image":
            frames = slice(0, 1)
        elif self.frames == "later":
            frames = slice(1, None)
        elif self.frames is not None:
            n = x.shape[1]
            frames = sorted({int(f) % n for f in self.frames})
            frames = slice(frames[0], frames[0] + 1) if len(frames) == 1 else frames
        if self.part == "image":
            return (slice(None), frames, slice(channels, None))
        return (slice(None), frames)

    def box_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """(h, w) True where the operation's result is taken (None: everywhere)."""
        if self.box is None:
            return None
        c0, r0, c1, r1 = self.box
        inside = torch.zeros(x.shape[-2:], dtype=torch.bool, device=x.device)
        inside[r0:r1, c0:c1] = True
        return ~inside if self.outside else inside


# -- operations: what happens at a place --------------------------------------------------------
@dataclass(frozen=True)
class Zero:
    def __call__(self, x, ctx):
        return torch.zeros_like(x)


@dataclass(frozen=True)
class Scale:
    factor: float

    def __call__(self, x, ctx):
        return x * self.factor


@dataclass(frozen=True)
class Noise:
    """``x + sigma * N(0, 1)`` from its own CPU generator (``seed``; the same on any device); with
    ``per_step`` a fresh draw each step scaled by ``t / 1000``; ``same_rows``: one draw for every row."""

    sigma: float
    seed: int = 0
    per_step: bool = False
    same_rows: bool = False

    def __call__(self, x, ctx):
        step = ctx.step + 1 if self.per_step else 0
        shape = x[:1].shape if self.same_rows else x.shape
        g = torch.Generator().manual_seed(self.seed + 1_000_003 * step)
        n = torch.randn(shape, generator=g).to(x.device, x.dtype) * self.sigma
        return x + (n * (float(ctx.timestep) / 1000) if self.per_step else n)


@dataclass(frozen=True)
class Shift:
    """Moved by (``dx``, ``dy``) cells (right and down positive); vacated cells zero."""

    dx: int = 0
    dy: int = 0

    def __call__(self, x, ctx):
        cx, cy = self.dx, self.dy
        out = torch.zeros_like(x)
        h, w = x.shape[-2:]
        out[..., max(cy, 0):h + min(cy, 0), max(cx, 0):w + min(cx, 0)] = \
            x[..., max(-cy, 0):h - max(cy, 0), max(-cx, 0):w - max(cx, 0)]
        return out


@dataclass(frozen=True)
class Flip:
    axis: str = "horizontal"

    def __call__(self, x, ctx):
        return torch.flip(x, dims=(-1 if self.axis == "horizontal" else -2,))


@dataclass(frozen=True)
class Blur:
    """Down-sampled by ``factor`` (area) and up-sampled back (bilinear): the coarse layout only."""

    factor: float

    def __call__(self, x, ctx):
        from einops import rearrange
        from torch.nn import functional as F

        b, f, c, h, w = x.shape
        y = rearrange(x.float(), "b f c h w -> (b f) c h w")
        small = F.interpolate(y, size=(max(1, round(h * self.factor)), max(1, round(w * self.factor))), mode="area")
        y = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        return rearrange(y, "(b f) c h w -> b f c h w", b=b).to(x.dtype)


@dataclass(frozen=True)
class Replace:
    """The value ``value(x, ctx)`` gives (another image's pixels, a noised latent, ...)."""

    value: Callable

    def __call__(self, x, ctx):
        return self.value(x, ctx)


@dataclass(frozen=True)
class FromSource:
    """The same place in the companion source's rows (activation patching; ``ctx.sources[0]``)."""

    def __call__(self, x, ctx):
        return ctx.sources[0]


@dataclass(frozen=True)
class AttentionFactor:
    """Attention from ``queries`` to ``keys`` times ``factor`` (0: knocked out), renormalized."""

    factor: float
    queries: Any = "later"
    keys: Any = "image"


OPERATIONS = (Zero, Scale, Noise, Shift, Flip, Blur, Replace, FromSource, AttentionFactor)


def act(where: Where, op, steps: int = 1, channels: int = 16) -> Intervention:
    """``op`` at ``where`` as one sampler intervention (``steps``: the call's, for the window;
    ``channels``: where the image channels start, for ``part="image"``)."""
    if isinstance(op, AttentionFactor):
        raise AblationError("an attention factor acts inside attention: use attention(where, op)")
    whole = where.start == 0.0 and where.end == 1.0

    def fn(x, ctx):
        if not whole and not where.active(ctx.step, steps):
            return x
        idx = where.region(x, channels)
        src = ctx if not ctx.sources else replace(ctx, sources=tuple(s[idx] for s in ctx.sources))
        new = op(x[idx], src)
        mask = where.box_mask(x)
        if mask is not None:
            new = torch.where(mask, new, x[idx])
        if idx == (slice(None), slice(None)):
            return new
        out = x.clone()
        out[idx] = new
        return out

    return Intervention(where.point, fn, _HALVES[where.half])


def attention(where: Where, op: AttentionFactor):
    """An attention factor at ``where`` (its layers and step window) as one attention edit."""
    from ..inside import AttentionEdit

    return AttentionEdit(op.queries, op.keys, op.factor, where.layers, where.start, where.end, where.heads)

"""The kinds that act inside the transformer: attention knocked out or scaled between token groups,
and activations patched from a source image's rows of the same forward."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..sampler import Conditioning
from .base import Ablation, _heads, _holds_steps, _image_value, _layers, _register, _step_window, _tokens
from .image_kinds import SwapImage
from .where import AttentionFactor, FromSource, Where, act, attention

__all__ = ["AttentionKnockout", "ScaleAttention", "PatchActivations"]


class _AttentionAblation(Ablation):
    """Shared checks of the ablations that edit attention inside the transformer."""

    later: ClassVar[tuple[str, ...]] = ("heads",)

    def _check_fields(self) -> None:
        _layers(self)
        _tokens(self, "queries")
        _tokens(self, "keys")
        _step_window(self)
        _heads(self)

    def check(self, setup):
        from ..inside import check_blocks

        check_blocks(setup.pipe, () if self.layers == "all" else self.layers, f"{self.kind}.layers")
        _holds_steps(self, setup)
        n, heads = setup.pipe.transformer.config.num_attention_heads, getattr(self, "heads", "all")
        if heads != "all" and max(heads) >= n:
            self._fail("heads", list(self.heads), f"this transformer has {n} heads, 0-{n - 1}")

    def _edit(self, factor: float) -> list:
        where = Where("attention", self.start, self.end, layers=None if self.layers == "all" else self.layers,
                      heads=None if self.heads == "all" else self.heads)
        return [attention(where, AttentionFactor(factor, self.queries, self.keys))]


@_register
@dataclass(frozen=True)
class AttentionKnockout(_AttentionAblation):
    """In ``layers`` and the ``[start, end)`` fraction of the steps, the tokens of ``queries`` cannot
    attend to the tokens of ``keys`` (masked before the softmax). The default cuts the direct road
    from the image to the later frames: their attention to the image frame. ``queries``/``keys``:
    ``"image"`` (the token frame holding the image), ``"later"`` (every other), ``"text"``, a list of
    those (their union: ``queries=["text", "later"]`` with ``keys="image"`` closes both roads the
    image has to the later frames, directly and through the text tokens, which every block
    updates), or a list of latent-frame indices; ``layers``: ``"all"`` or a list of block indices;
    ``heads``: ``"all"`` or a list of attention heads. Out of distribution."""

    layers: Any = "all"
    queries: Any = "later"
    keys: Any = "image"
    start: float = 0.0
    end: float = 1.0
    heads: Any = "all"
    kind: ClassVar[str] = "attention_knockout"
    in_distribution: ClassVar[str] = "no: the model never ran with attention cut"

    def __post_init__(self):
        self._check_fields()

    def attention_edits(self) -> list:
        return self._edit(0.0)


@_register
@dataclass(frozen=True)
class ScaleAttention(_AttentionAblation):
    """Attention from ``queries`` to ``keys`` multiplied by ``factor`` and renormalized (``log(factor)``
    added to those logits before the softmax): more or less reliance on the image frame. ``factor=1``
    is the baseline, ``factor=0`` the knockout. Fields as :class:`AttentionKnockout`'s."""

    factor: float = 1.0
    layers: Any = "all"
    queries: Any = "later"
    keys: Any = "image"
    start: float = 0.0
    end: float = 1.0
    heads: Any = "all"
    kind: ClassVar[str] = "scale_attention"
    in_distribution: ClassVar[str] = "only at factor 1"

    def __post_init__(self):
        self._number("factor", 0.0, 100.0)
        self._check_fields()

    def attention_edits(self) -> list:
        return self._edit(self.factor)


@_register
@dataclass(frozen=True)
class PatchActivations(Ablation):
    """Activation patching: after each block of ``layers``, in the ``[start, end)`` fraction of the
    steps, the hidden states of the tokens of ``frames`` are replaced by the ones the same call
    computes for the ``source`` image (same prompt, seed and noise: its rows ride in the same batch).
    ``frames``: ``"image"`` (the image's token frame), ``"later"``, or a list of latent-frame
    indices; ``source``: a path, URL or in-memory image (kept as :class:`ImageRef`), fitted like the
    conditioning image. Where does the picture get decided? Patch block by block and watch frame 0."""

    source: Any
    layers: Any = "all"
    frames: Any = "image"
    start: float = 0.0
    end: float = 1.0
    kind: ClassVar[str] = "patch_activations"
    in_distribution: ClassVar[str] = "no: hidden states from another run"

    def __post_init__(self):
        object.__setattr__(self, "source", _image_value(self, "source", self.source))
        _layers(self)
        _tokens(self, "frames")
        if self.frames == "text":
            self._fail("frames", "text", "the hidden-state points hold the video tokens: expected 'image', 'later' "
                                         "or a list of latent-frame indices")
        _step_window(self)

    check = _AttentionAblation.check

    def sources(self, setup) -> list:
        """The source image's rows, as a companion conditioning (its pixels before the VAE encodes)."""
        swap = SwapImage(self.source)  # its dict keys the companion: one row per source image in a forward
        return [Conditioning(tuple(swap.interventions(setup)), meta=(swap.to_dict(),))]

    def interventions(self, setup):
        from ..family import token_frame

        layers = range(setup.blocks) if self.layers == "all" else self.layers
        frames = self.frames if isinstance(self.frames, str) else sorted({token_frame(setup.pipe, i)
                                                                          for i in self.frames})
        return [act(Where(f"step/*/block/{layer}/hidden", self.start, self.end, frames=frames), FromSource(),
                    setup.steps) for layer in layers]

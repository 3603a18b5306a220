"""The one place cogviz installs anything inside the transformer: attention processors and block
forward hooks, for one call, removed afterwards (also on error).

Every hook is declared as data before compute — where it sits (a block's attention or its output),
which blocks, what it **reads** (``"attention"``: the attention weights; ``"block output"``), whether
it **writes** (changes what the block computes) and whether it **records** into a trace. The speed
policy (:func:`cogviz.speed.check_hooks`) refuses from these declarations alone, before compute, any
write a cache preset would skip on its reused steps and any record a cache would falsify; two hooks
that would replace the same block's attention are refused here. ::

    | hook                 | site      | reads       | writes | records | made by                       |
    |----------------------|-----------|-------------|--------|---------|-------------------------------|
    | attention edits      | attention | attention   | yes    | no      | ablations' attention kinds    |
    | attention shares     | attention | attention   | no     | yes     | ``attention_layers=``         |
    | block points         | block     | block output| if an intervention matches | if recorded | ``step/{i}/block/{l}/hidden`` |
    | block lens           | block     | block output| no     | yes     | ``step/{i}/block/{l}/lens``   |
    | attention counter    | attention | nothing     | no     | no      | every call under a cache preset |

The hooks see the forward being run through one :class:`Forward`: the step, its timestep and each
variant's span of batch rows, so every edit and record applies to its own variant's rows only.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import CogvizError

__all__ = ["Hook", "Forward", "check", "installed"]

SITES = ("attention", "block")


@dataclass
class Forward:
    """What the hooks read about the forward being run: the step and its timestep, each variant's rows
    ``[((r0, r1), attention_edits, variant), ...]`` in this forward's batch, and the call's geometry."""

    steps: int
    tokens_per_frame: int
    frames: int                 # token frames
    family: Any
    step: int = 0
    t: Any = None
    rows: list = field(default_factory=list)
    attention_calls: list | None = None  # [count]: the attention counter's tally (under a cache preset)

    @classmethod
    def of(cls, plan) -> Forward:
        return cls(plan.steps, plan.tokens_per_frame, plan.token_frames, plan.family)


@dataclass(frozen=True)
class Hook:
    """One call-scoped hook (see the module doc). ``make(layer)`` gives, at site ``"attention"``, the
    processor for that block (with ``wraps``: ``make(layer, inner)`` wraps the block's processor in
    place, which keeps diffusers' cache hooks intact); at site ``"block"``, a function
    ``(hidden, temb) -> hidden`` on the block's video-token output ``(B, N, C)`` and the time
    embedding the block was called with."""

    name: str
    site: str
    layers: tuple[int, ...]
    make: Callable
    reads: str | None = None
    writes: bool = False
    records: bool = False
    wraps: bool = False

    def __post_init__(self):
        if self.site not in SITES:
            raise CogvizError(f"hook {self.name!r}: site {self.site!r} is not one of {SITES}")


def check(hooks: list[Hook]) -> None:
    """Refuse, before compute, two hooks replacing one block's attention. (The speed policy,
    :func:`cogviz.speed.check_hooks`, judges the same declarations against a pipeline's presets.)"""
    taken: dict[int, str] = {}
    for h in hooks:
        if h.site != "attention" or h.wraps:
            continue
        for layer in h.layers:
            if layer in taken:
                raise CogvizError(f"block {layer}: {taken[layer]} and {h.name} both replace its attention; "
                                  "run them in separate calls")
            taken[layer] = h.name


@contextlib.contextmanager
def installed(pipe, hooks: list[Hook]):
    """Install ``hooks`` on ``pipe``'s transformer blocks (replacing processors first, then wrappers,
    then forward hooks) and restore every block as it was afterwards, even on error."""
    blocks = pipe.transformer.transformer_blocks
    saved = {}
    handles = []
    try:
        for h in sorted(hooks, key=lambda h: (h.site != "attention", h.wraps)):
            for layer in h.layers:
                attn = blocks[layer].attn1
                if h.site == "block":
                    handles.append(blocks[layer].register_forward_hook(_output_hook(h.make(layer)), with_kwargs=True))
                    continue
                saved.setdefault(layer, attn.processor)
                if h.wraps:
                    attn.processor = h.make(layer, attn.processor)  # plain attribute: cache hooks stay
                else:
                    attn.set_processor(h.make(layer))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for layer, processor in saved.items():
            blocks[layer].attn1.processor = processor


def _output_hook(fn):
    def hook(module, args, kwargs, output):
        hidden, encoder = output
        return fn(hidden, kwargs.get("temb")), encoder

    return hook

"""The named points of a generation: what a call can record and intervene on, and the trace.

Every stage the sampler passes has one stable name. The names of one call are enumerable
(:func:`point_names`), and every name a call is given — an intervention's point, its CFG half,
a record pattern — is checked against them *before any compute*: one that matches nothing is an
error naming the closest valid names, never a silently unablated video.

==================================  ======================================================================
``image.fitted``                    (H, W, 3) uint8, the fitted conditioning image
``image.pixels``                    (1, 3, H, W) the image in [-1, 1] as the VAE receives it
``z_img``                           (B, F, 16, h, w) the image latent: frame 0 the image, zeros after
``prompt_embeds``                   (2B or B, L, D) text embeddings (negative prompt first under CFG)
``step/{i}/z_t``                    (B, F, 16, h, w) the noisy latent entering step i
``step/{i}/input``                  (2B or B, F, 32, h, w) concat(z_t, z_img) on channels; with image
                                    guidance one more row last: the first row with its image channels zeroed
``step/{i}/pred``                   (B, F, 16, h, w) the guided v-prediction of step i
``step/{i}/x0``                     (B, F, 16, h, w) record-only: the clean latent the sampler predicts at
                                    step i (the scheduler's own ``pred_original_sample``): the model's
                                    belief about the finished video at that step
``step/{i}/block/{l}/hidden``       (rows, F', h/2, w/2, D) block l's output for the video tokens at step i
                                    (rows: the CFG rows, negative prompt first; F' token frames: latent
                                    frames, halved on 1.5); hooked only in the blocks a call names
``step/{i}/block/{l}/attention``    (2B or B, F', 1 + F') record-only, opt-in (``attention_layers=``):
                                    for the queries of each token frame, block l's attention share on
                                    the text and on each token frame
``step/{i}/block/{l}/lens``         (rows, F, 16, h, w) record-only: block l's output through the model's
                                    final norms and projection: the prediction it would make if it
                                    stopped there (:mod:`cogviz.lens`)
``step/{i}/block/{l}/readmap``      (rows, heads, F', h/2, w/2) record-only: for the queries of each token
                                    frame, block l's attention mass on each token of the image frame,
                                    per head: where in the image that frame reads (:mod:`cogviz.readmaps`)
``step/{i}/block/{l}/readtokens``   (rows, F', h/2, w/2, h/2, w/2) record-only: for every video token,
                                    its attention on each token of the image frame (mean over heads)
``step/{i}/block/{l}/words``        (rows, L, F', h/2, w/2) record-only: for each text token, every video
                                    token's attention on it (mean over heads): the words on the video
``step/{i}/block/{l}/concepts``     (rows, L, F', h/2, w/2) record-only: each text token's attention
                                    output dotted with every video token's: ConceptAttention's
                                    output-space words on the video (:func:`cogviz.readmaps.concept_map`)
``step/{i}/block/{l}/readpos``      (rows, F', h/2, w/2, 3) record-only: for every video token, its mass on
                                    the image frame and the expected (row, column) there it reads from
``latents.final``                   (B, F, 16, h, w) the denoised latent (1.5 padding frames included)
``frames``                          (F', H, W, 3) uint8, the decoded video
==================================  ======================================================================

This module is the bottom of the core: it imports nothing else of cogviz but its errors.

>>> names = point_names(steps=2)
>>> check_patterns(["step/*/z_t"], names, what="record pattern")
>>> check_patterns(["z_image"], names, what="record pattern")
Traceback (most recent call last):
...
cogviz.errors.PointError: record pattern 'z_image' matches no point of this call; did you mean 'z_img'...
"""
from __future__ import annotations

import difflib
import fnmatch
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import CogvizError, NotRecordedError, PointError

__all__ = ["NAMES", "INTERVENABLE", "HALVES", "DEFAULT_RECORD", "in_window", "point_names", "check_patterns",
           "check_interventions", "Context", "Intervention", "Trace"]

NAMES = ("image.fitted", "image.pixels", "z_img", "prompt_embeds", "step/{i}/z_t", "step/{i}/input",
         "step/{i}/block/{l}/hidden", "step/{i}/block/{l}/attention", "step/{i}/block/{l}/lens",
         "step/{i}/block/{l}/readmap",
         "step/{i}/block/{l}/readtokens", "step/{i}/block/{l}/readpos", "step/{i}/block/{l}/words",
         "step/{i}/block/{l}/concepts", "step/{i}/pred", "step/{i}/x0", "latents.final", "frames")
#: The points an :class:`Intervention` may change (the others are read-only records).
INTERVENABLE = ("image.pixels", "z_img", "step/{i}/z_t", "step/{i}/input", "step/{i}/block/{l}/hidden",
                "step/{i}/pred", "latents.final")
#: Points that carry both CFG halves (negative prompt first), so ``half=`` means something there.
HALVED = ("z_img", "step/{i}/input")
HALVES = ("both", "cond", "uncond")
#: Recorded by default: everything but the per-step tensors (cheap at any model size).
DEFAULT_RECORD = ("image.fitted", "z_img", "prompt_embeds", "latents.final", "frames")


def in_window(step: int, steps: int, start: float, end: float) -> bool:
    """The one step-window rule: step ``step`` of ``steps`` lies in ``[start, end)``, fractions of the
    steps (``end=1`` includes the last step). Ablation windows and attention edits both read it.

    >>> [i for i in range(4) if in_window(i, 4, 0.25, 0.75)]
    [1, 2]
    """
    return start * steps <= step < end * steps


def _expand(template: str, steps: int, blocks: int, attention: list[int]) -> list[str]:
    if "{l}" in template:
        layers = attention if template.endswith("attention") else range(blocks)
        return [template.format(i=i, l=layer) for i in range(steps) for layer in layers]
    if "{i}" in template:
        return [template.format(i=i) for i in range(steps)]
    return [template]


def point_names(steps: int, *, blocks: int = 0, attention_layers: Iterable[int] = (),
                intervenable: bool = False) -> list[str]:
    """Every point name of a call of ``steps`` steps on a transformer of ``blocks`` blocks
    (``intervenable=True``: only those an intervention may change); ``attention_layers``: the
    blocks whose attention shares the call records.

    >>> point_names(2, intervenable=True)
    ['image.pixels', 'z_img', 'step/0/z_t', 'step/1/z_t', 'step/0/input', 'step/1/input', 'step/0/pred', 'step/1/pred', 'latents.final']
    >>> point_names(1, blocks=2, intervenable=True)[-4:]
    ['step/0/block/0/hidden', 'step/0/block/1/hidden', 'step/0/pred', 'latents.final']
    """
    attention = list(attention_layers)
    return [n for t in (INTERVENABLE if intervenable else NAMES) for n in _expand(t, steps, blocks, attention)]


def _generic(name: str) -> str:
    """``step/12/input`` -> ``step/*/input``: the shape of a name, for suggestions."""
    return re.sub(r"(?<=/)\d+(?=/|$)", "*", name)


def _closest(pattern: str, names: list[str]) -> list[str]:
    shapes = list(dict.fromkeys(_generic(n) for n in names))
    close = difflib.get_close_matches(_generic(pattern), shapes, n=3, cutoff=0.6)
    return close or difflib.get_close_matches(pattern, names, n=3, cutoff=0.6)


def _no_match(pattern: str, names: list[str], what: str) -> PointError:
    close = _closest(pattern, names)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    steps = sorted({int(m.group(1)) for n in names if (m := re.match(r"step/(\d+)/", n))})
    span = f"steps are {steps[0]}-{steps[-1]}; " if steps else ""
    shapes = ", ".join(dict.fromkeys(_generic(n) for n in names))
    return PointError(f"{what} {pattern!r} matches no point of this call; {hint}{span}the points are: {shapes} "
                      "(shell wildcards: 'step/*/input')")


def check_patterns(patterns: Iterable[str], names: list[str], *, what: str = "pattern") -> None:
    """Raise :class:`~cogviz.errors.PointError` for the first pattern that matches none of ``names``."""
    for p in patterns:
        if not isinstance(p, str):
            raise PointError(f"{what} {p!r}: expected a point name or a wildcard pattern (a str)")
        if not any(fnmatch.fnmatchcase(n, p) for n in names):
            raise _no_match(p, names, what)


def _is_halved(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, t.replace("{i}", "*")) for t in HALVED)


def check_interventions(interventions: Iterable[Intervention], steps: int, *, cfg: bool, blocks: int = 0) -> None:
    """Each intervention's point must match a point it may change, and its ``half`` must mean something
    there: ``cond``/``uncond`` only on ``z_img`` and ``step/{i}/input``, ``uncond`` only under CFG."""
    names = point_names(steps, blocks=blocks, intervenable=True)
    everything = point_names(steps, blocks=blocks, attention_layers=range(max(blocks, 1)))
    for iv in interventions:
        if not isinstance(iv, Intervention):
            raise PointError(f"interventions: expected Intervention objects, got {type(iv).__name__}")
        matched = [n for n in names if fnmatch.fnmatchcase(n, iv.point)]
        if not matched:
            if any(fnmatch.fnmatchcase(n, iv.point) for n in everything):
                raise PointError(f"intervention point {iv.point!r} is record-only; an intervention may change "
                                 f"{', '.join(INTERVENABLE)}")
            raise _no_match(iv.point, names, "intervention point")
        if iv.half != "both" and not all(_is_halved(n) for n in matched):
            raise PointError(f"intervention at {iv.point!r} with half={iv.half!r}: only z_img and step/{{i}}/input "
                             "carry CFG halves; use half='both' there")
        if iv.half == "uncond" and not cfg:
            raise PointError(f"intervention at {iv.point!r} with half='uncond': this call has no unconditional "
                             "half (guidance <= 1 disables CFG); use half='both' or guidance > 1")


@dataclass(frozen=True)
class Context:
    """What an intervention is told: the point's name, the step (None for z_img), timestep, CFG half."""

    name: str
    step: int | None
    timestep: int | None
    half: str  # "both", "cond" or "uncond"
    sources: tuple = ()  # the same point in the call's source rows (activation patching), when it has some


@dataclass(frozen=True)
class Intervention:
    """Replace the tensor at ``point`` (a name or wildcard pattern, e.g. ``"z_img"``,
    ``"step/*/input"``, ``"step/3/pred"``) with ``fn(tensor, context)``.

    ``half`` picks one half of a CFG batch (``"cond"`` or ``"uncond"``) for ``z_img`` and
    ``step/{i}/input``; ``fn`` then receives and returns that half only. Interventions live for one
    call of :func:`cogviz.generate`: nothing is attached to the pipeline. A point that matches
    nothing, or a half that means nothing there, is an error before any compute.
    """

    point: str
    fn: Callable
    half: str = "both"

    def __post_init__(self):
        if not isinstance(self.point, str) or not self.point:
            raise PointError(f"Intervention point {self.point!r}: expected a point name or pattern, e.g. 'z_img'")
        if self.half not in HALVES:
            close = difflib.get_close_matches(str(self.half), HALVES, n=1, cutoff=0.3)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PointError(f"Intervention half={self.half!r}: {hint}expected one of {', '.join(map(repr, HALVES))}")
        if not callable(self.fn):
            raise PointError(f"Intervention fn: expected a function (tensor, context) -> tensor, got "
                             f"{type(self.fn).__name__}")

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.point)


def _check_return(out, ref: torch.Tensor, ctx: Context) -> torch.Tensor:
    where = ctx.name if ctx.step is None else f"{ctx.name} (step {ctx.step})"
    if not isinstance(out, torch.Tensor):
        raise CogvizError(f"intervention at {where} returned {type(out).__name__}, expected a tensor")
    if out.shape != ref.shape or out.dtype != ref.dtype or out.device != ref.device:
        raise CogvizError(f"intervention at {where} returned shape {tuple(out.shape)}, {out.dtype} on {out.device}; "
                          f"expected shape {tuple(ref.shape)}, {ref.dtype} on {ref.device}")
    return out


def intervene(interventions, name: str, x: torch.Tensor, step=None, t=None, cfg_batch: bool = False,
              sources: tuple = ()) -> torch.Tensor:
    """``x`` after every intervention whose point matches ``name``, in order (halves: negative prompt first)."""
    for iv in interventions:
        if not iv.matches(name):
            continue
        ctx = Context(name, step, None if t is None else int(t), iv.half, tuple(sources))
        if iv.half == "both" or not cfg_batch:
            x = _check_return(iv.fn(x, ctx), x, ctx)
            continue
        uncond, cond = x.chunk(2)
        if iv.half == "cond":
            cond = _check_return(iv.fn(cond, ctx), cond, ctx)
        else:
            uncond = _check_return(iv.fn(uncond, ctx), uncond, ctx)
        x = torch.cat([uncond, cond])
    return x


def _step_of(name: str) -> int:
    m = re.match(r"step/(\d+)/", name)
    return int(m.group(1)) if m else -1


#: the roles a batch row of one variant can have, in the order the sampler lays them out
ROW_ROLES = ("unconditional", "conditional", "image_free")


def row_roles(cfg: bool, image_free: bool) -> tuple[str, ...]:
    """One variant's rows in the transformer's batch, by role: under classifier-free guidance the
    negative prompt's row first, then the prompt's; the image-free row of image guidance last.
    The one home of that layout: readers ask :meth:`Trace.row` for a role, never for a position."""
    return (("unconditional", "conditional") if cfg else ("conditional",)) + (("image_free",) if image_free else ())


@dataclass
class Trace:
    """Named tensors recorded during one generation (CPU copies), plus JSON-able metadata.

    ``record`` patterns use shell-style wildcards: ``"step/*/input"`` records every step's input.
    ``trace["z_img"]`` is one tensor; ``trace.at("input", 3)`` step 3's input; ``trace.stack("z_t")``
    every recorded step of a point in one tensor ``(steps, ...)``.
    """

    patterns: tuple[str, ...] = DEFAULT_RECORD
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def wants(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)

    def add(self, name: str, value) -> None:
        if self.wants(name):
            t = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.array(value))
            self.tensors[name] = t.detach().to("cpu", copy=True)

    def put(self, name: str, value: torch.Tensor) -> None:
        """Record ``name`` whatever the patterns: a point the call asked for by another option (the
        attention shares of ``attention_layers=``)."""
        self.tensors[name] = value.detach().to("cpu", copy=True)

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.tensors:
            close = difflib.get_close_matches(name, list(self.tensors), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise NotRecordedError(f"{name!r} is not in this trace{hint} It recorded {len(self.tensors)} tensors "
                             f"matching {list(self.patterns)}; record it with generate(..., record=[..., {name!r}])")
        return self.tensors[name]

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def names(self) -> list[str]:
        return list(self.tensors)

    def steps(self, point: str) -> list[int]:
        """The steps at which ``point`` (``"z_t"``, ``"input"``, ``"pred"``, ``"block/3/hidden"``) was recorded."""
        return sorted(_step_of(n) for n in self.tensors if n.startswith("step/") and n.split("/", 2)[2] == point)

    def rows(self) -> tuple[str, ...]:
        """The roles of the batch rows of the per-step points that carry every row (``step/*/input``,
        ``step/*/block/*/hidden``, ``step/*/block/*/attention``), in order."""
        if "rows" in self.meta:
            return tuple(self.meta["rows"])
        cfg = float(self.meta.get("guidance", 1.0)) > 1.0  # a trace saved before rows were recorded
        return row_roles(cfg, any(a.get("kind") == "image_guidance" for a in self.meta.get("ablations", [])))

    def row(self, name: str, role: str = "conditional") -> torch.Tensor:
        """One row of a batched point by its role: ``trace.row("step/3/input")`` is the conditional
        row whatever the guidance (CFG, image guidance, both or neither)."""
        roles = self.rows()
        if role not in roles:
            close = difflib.get_close_matches(role, ROW_ROLES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close and close[0] in roles else ""
            raise PointError(f"row role {role!r}: this call's rows are {list(roles)}{hint}")
        x = self[name]
        if x.shape[0] != len(roles):
            raise PointError(f"{name!r} has {x.shape[0]} row(s), not one per role {list(roles)}: only "
                             "step/*/input and the block points carry every row; index it directly")
        return x[roles.index(role)]

    def at(self, point: str, step: int) -> torch.Tensor:
        """One point at one step: ``trace.at("input", 3)`` is ``trace["step/3/input"]``."""
        return self[f"step/{step}/{point}"]

    def stack(self, point: str) -> torch.Tensor:
        """Every recorded step of ``point`` in step order, stacked: ``(steps, *shape)``."""
        steps = self.steps(point)
        if not steps:
            shapes = sorted({n.split("/", 2)[2] for n in self.tensors if n.startswith("step/")})
            close = difflib.get_close_matches(point, shapes, n=2, cutoff=0.5)
            hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise PointError(f"no step of {point!r} is in this trace; {hint}per-step points recorded: "
                             f"{shapes or 'none'} (record them with record=['step/*/{point}'])")
        return torch.stack([self.tensors[f"step/{i}/{point}"] for i in steps])

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def __repr__(self) -> str:
        groups: dict[str, list] = {}
        for n, t in self.tensors.items():
            groups.setdefault(_generic(n), []).append(tuple(t.shape))
        parts = [f"{g} x{len(s)} {s[0]}" if len(s) > 1 else f"{g} {s[0]}" for g, s in groups.items()]
        return f"Trace({len(self.tensors)} tensors, {self.nbytes() / 1e6:.1f} MB: {'; '.join(parts)})"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td><code>{html.escape(n)}</code></td><td>{tuple(t.shape)}</td><td>{t.dtype}</td></tr>"
                       for n, t in self.tensors.items())
        return (f"<details><summary>Trace: {len(self.tensors)} tensors, {self.nbytes() / 1e6:.1f} MB</summary>"
                f"<table><tr><th>name</th><th>shape</th><th>dtype</th></tr>{rows}</table></details>")

    def save(self, path: str | Path) -> Path:
        """safetensors file (tensors) with the metadata as JSON in its header; never pickle."""
        from safetensors.torch import save_file

        path = Path(path)
        meta = {"cogviz.meta": json.dumps(self.meta), "cogviz.patterns": json.dumps(list(self.patterns))}
        save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(path), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        return cls(tuple(json.loads(header.get("cogviz.patterns", "[]"))), tensors,
                   json.loads(header.get("cogviz.meta", "{}")))

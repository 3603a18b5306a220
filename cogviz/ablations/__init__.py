"""Step 5 of the flow: ablations — a change of the image conditioning, as data.

Each ablation is a frozen dataclass: it checks its parameters when it is built (before any
compute), serializes to a JSON-able dict (``to_dict`` / :func:`from_dict`, a registry keyed by
``kind``; never pickle) and, for one :func:`cogviz.generate` call, turns into sampler
interventions at the named points (``image.pixels``, ``z_img``, ``step/{i}/input``) — or, for
:class:`ImageGuidance`, into a third classifier-free-guidance branch. A list is applied in order.
Nothing stays attached to the pipeline; the list is recorded in ``trace.meta["ablations"]``.

Each kind is a preset of *where x what* (:mod:`cogviz.ablations.where`): a :class:`Where` (point,
step window, blocks, frames, latent cells, CFG half) and an operation (zero, scale, noise, shift,
flip, blur, replace, patch from a source, an attention factor). The kinds' dicts, labels and sweep
run ids are those they always had; a question no kind covers is one more pair, passed to
``generate(..., interventions=[act(Where(...), op)])``.

The package: :mod:`.base` (the base class, image references, shared field checks), :mod:`.where`,
:mod:`.image_kinds`, :mod:`.step_kinds`, :mod:`.inside_kinds`; this module reads and compiles them.

A controlled comparison shares everything else: every ablation keeps the initial noise and the
posterior draw of ``z_img`` (pixel-space changes act *before* the VAE encodes, on the same
generator state; random ablations draw from their own ``seed``).

What "in distribution" means here: CogVideoX I2V was trained with the image latent on latent frame
0 only, dropped (zeroed) 5% of the time, and with small pixel noise on the image,
``sigma ~ exp(N(-3, 0.5))`` in [-1, 1] pixel units. An ablation that stays inside that asks the
model a question it was trained on; one outside it probes how the model extrapolates.

>>> a = NoiseImage(0.05, space="pixel")
>>> from_dict(a.to_dict()) == a
True
>>> a.to_dict()
{'kind': 'noise_image', 'sigma': 0.05, 'space': 'pixel', 'seed': 0}
"""

from __future__ import annotations

import difflib
from dataclasses import fields, replace

from ..errors import AblationError
from ..plan import CallPlan, Setup
from ..sampler import Conditioning
from .base import KINDS, Ablation, ImageRef
from .image_kinds import (
    Baseline,
    EndImage,
    FlipImage,
    MaskImage,
    NoiseImage,
    ReplaceFrame,
    ScaleImage,
    ShiftImage,
    SwapImage,
    ZeroImage,
)
from .inside_kinds import AttentionKnockout, PatchActivations, ScaleAttention
from .step_kinds import FillFrames, ImageGuidance, LowPassImage, StepWindow
from .where import Where, act

__all__ = ["Ablation", "Setup", "CallPlan", "ImageRef", "KINDS", "from_dict", "resolve", "compile_ablations", "label",
           "Where", "act", "Baseline", "ZeroImage", "SwapImage", "EndImage", "ReplaceFrame", "ScaleImage",
           "NoiseImage", "MaskImage", "ShiftImage", "FlipImage", "StepWindow", "FillFrames", "LowPassImage",
           "ImageGuidance", "AttentionKnockout", "ScaleAttention", "PatchActivations"]


def from_dict(d: dict) -> Ablation:
    """The ablation a ``to_dict()`` (or hand-written JSON) describes.

    >>> from_dict({"kind": "step_window", "start": 0.0, "end": 0.5})
    StepWindow(start=0.0, end=0.5)
    """
    if not isinstance(d, dict):
        raise AblationError(f"an ablation is a dict like {{'kind': 'zero_image'}}; got {type(d).__name__}")
    kind = d.get("kind")
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise AblationError(f"kind={kind!r}: unknown ablation; {hint}expected one of {', '.join(KINDS)}")
    cls = KINDS[kind]
    names = {f.name for f in fields(cls)}
    extra = sorted(set(d) - names - {"kind"})
    if extra:
        raise AblationError(f"{kind}: unknown field(s) {', '.join(extra)}; "
                            f"{kind} takes {', '.join(sorted(names)) or 'no parameters'}")
    return cls(**{k: v for k, v in d.items() if k != "kind"})


def resolve(ablations=(), *, image_strength=None, image_noise=None, image_window=None,
            image_guidance=None) -> tuple[Ablation, ...]:
    """The ablations of one call: the list (ablations or their dicts) in order, then the everyday knobs
    (``image_noise`` -> pixel :class:`NoiseImage`, ``image_strength`` -> :class:`ScaleImage`,
    ``image_window=(start, end)`` -> :class:`StepWindow`, ``image_guidance`` -> :class:`ImageGuidance`)."""
    if isinstance(ablations, (Ablation, dict)):
        ablations = [ablations]
    out = []
    for a in ablations:
        if isinstance(a, dict):
            a = from_dict(a)
        if not isinstance(a, Ablation):
            raise AblationError(f"ablations: expected Ablation objects or dicts, got {type(a).__name__}")
        out.append(a)
    if image_noise is not None:
        out.append(NoiseImage(image_noise, space="pixel"))
    if image_strength is not None:
        out.append(ScaleImage(image_strength))
    if image_window is not None:
        if not isinstance(image_window, (tuple, list)) or len(image_window) != 2:
            raise AblationError(f"image_window={image_window!r}: expected (start, end), fractions of the steps")
        out.append(StepWindow(*image_window))
    if image_guidance is not None:
        out.append(ImageGuidance(image_guidance))
    if sum(isinstance(a, ImageGuidance) for a in out) > 1:
        raise AblationError("image_guidance given more than once: one call has one image guidance scale")
    return tuple(out)


def compile_ablations(ablations, setup: Setup) -> Conditioning:
    """Ablations (objects or dicts, in order) -> what the sampler accepts for one call: each is checked
    against the call's size and steps, then turned into interventions and an image-guidance scale."""
    ablations = resolve(ablations)
    for a in ablations:
        a.check(setup)
    scales = [s for a in ablations if (s := a.image_guidance()) is not None]
    scale = scales[0] if scales else None
    # a source runs with the owner's guidance, so its rows have the owner's roles, row for row
    sources = tuple(replace(s, image_guidance=scale) for a in ablations for s in a.sources(setup))
    if len(sources) > 1:
        raise AblationError("patch_activations given more than once: one call patches from one source image")
    return Conditioning(tuple(iv for a in ablations for iv in a.interventions(setup)), scale,
                        tuple(a.to_dict() for a in ablations), tuple(e for a in ablations for e in a.attention_edits()),
                        sources)


def label(ablations) -> str:
    """A legend label for a list of ablations: ``"baseline"`` when empty."""
    ablations = resolve(ablations)
    return " + ".join(a.label() for a in ablations) or "baseline"

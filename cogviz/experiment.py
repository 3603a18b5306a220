"""The public doors of steps 4-5: :func:`generate` (one video) and :func:`generate_variants` (several
controlled variants of one image, prompt and seed, batched).

Each takes the call's settings as keywords (or one :class:`~cogviz.sampler.Settings`), resolves the
ablations (objects, dicts or the everyday knobs), compiles them into what the sampler accepts
(:class:`~cogviz.sampler.Conditioning`), checks everything — settings, record patterns,
intervention points and halves, ablation parameters against the call's size and steps — and only
then runs :func:`cogviz.sampler.sample`.
"""
from __future__ import annotations

from dataclasses import fields, replace

import torch

from .ablations import compile_ablations, resolve
from .errors import CogvizError, OutOfMemoryError
from .sampler import DEFAULT_RECORD, Generation, Settings, prepare, sample

__all__ = ["generate", "generate_variants"]

_SETTINGS = {f.name for f in fields(Settings)}
_OOM_FIX = ("load the pipeline with load_pipeline(model, memory='model_offload') (or 'sequential_offload', the "
            "slowest and smallest; add 'vae_tiling' and 'vae_slicing' for the decode), record fewer tensors "
            "(record=DEFAULT_RECORD), or generate fewer frames")


def _settings(settings: Settings | None, kwargs: dict) -> Settings:
    """The call's settings: the keywords, or ``settings`` when given (then no keyword may differ from
    its default, so nothing given is silently ignored)."""
    built = Settings(**kwargs)
    if settings is None:
        return built
    if not isinstance(settings, Settings):
        raise CogvizError(f"settings: expected a cogviz.Settings, got {type(settings).__name__}")
    default = Settings()
    both = [f"{f}={getattr(built, f)!r}" for f in _SETTINGS if getattr(built, f) != getattr(default, f)]
    if both:
        raise CogvizError(f"settings= was given together with {', '.join(sorted(both))}: give one or the other "
                          "(settings.replace(...) changes a field)")
    return settings


def _oom(e: Exception, extra: str = "") -> OutOfMemoryError:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return OutOfMemoryError(f"out of accelerator memory ({str(e).splitlines()[0][:200]}): {extra}{_OOM_FIX}")


def generate(pipe, image, prompt: str, *, negative_prompt: str = "", num_frames: int | None = None,
             steps: int = 50, guidance: float = 6.0, dynamic_cfg: bool = False, seed: int = 0,
             fit: str = "crop", size: tuple[int, int] | None = None, record=DEFAULT_RECORD, interventions=(),
             progress: bool = True, callback=None, decode_video: bool = True, attention_layers=None,
             ablations=(), image_strength: float | None = None, image_noise: float | None = None,
             image_window: tuple[float, float] | None = None, image_guidance: float | None = None,
             max_record_bytes: int | None = None, settings: Settings | None = None) -> Generation:
    """Generate a video conditioned on ``image``, with every stage named (:mod:`cogviz.points`).

    Memory of recording: ``step/*/input`` costs 2 x F x 32 x h x w floats a step under CFG (for
    5b-I2V at 49 frames: 2 x 13 x 32 x 60 x 90 x 4 B = 18 MB a step, 0.9 GB for 50 steps); copies go
    to the CPU, never stay on the GPU. The call's recordings are estimated from its shapes before any
    compute and refused above ``max_record_bytes`` (default: half the memory available), with an
    error naming the bytes, the pattern that costs most and the fix (:mod:`cogviz.budget`).

    ``ablations``: :mod:`cogviz.ablations` objects (or their dicts), applied in order for this call
    and recorded in ``trace.meta["ablations"]``; the everyday knobs map onto the same objects:
    ``image_noise=sigma`` (pixel noise before encoding), ``image_strength=alpha`` (``z_img`` times
    alpha), ``image_window=(start, end)`` (image channels only in that fraction of the steps),
    ``image_guidance=scale`` (image-only guidance, a third branch; 1 is the usual CFG).

    ``interventions``: :class:`~cogviz.points.Intervention` objects acting on ``image.pixels``,
    ``z_img``, ``step/{i}/z_t``, ``step/{i}/input`` or ``step/{i}/pred`` (after the ablations'); a
    point that matches nothing, or a ``half`` that means nothing there, raises
    :class:`~cogviz.errors.PointError` before any compute. So does a ``record`` pattern that matches
    nothing. Patterns are shell wildcards over every name: ``"step/1/*"`` also records each block's
    hidden states at step 1 (``step/1/block/{l}/hidden``, one video-sized tensor a block). ``callback(info)`` runs after each step with a :class:`~cogviz.sampler.StepInfo`.
    ``decode_video=False`` stops at ``latents.final`` (``frames`` is then None).
    ``attention_layers`` (a list of block indices, or ``"all"``) records, per step, where those
    blocks' attention goes (``step/{i}/block/{l}/attention``); it materialises attention weights in chunks,
    so keep it to small models or a few layers. ``size`` (height, width) defaults to the model's
    sample size, or to a fitted image's size on models that accept other sizes (1.5). ``settings``:
    all of the above in one :class:`~cogviz.sampler.Settings` (then give none of those keywords). Running
    out of accelerator memory raises :class:`~cogviz.errors.OutOfMemoryError`.
    """
    s = _settings(settings, dict(negative_prompt=negative_prompt, num_frames=num_frames, steps=steps,
                                 guidance=guidance, dynamic_cfg=dynamic_cfg, seed=seed, fit=fit, size=size,
                                 record=record, decode_video=decode_video, attention_layers=attention_layers,
                                 max_record_bytes=max_record_bytes))
    ablations = resolve(ablations, image_strength=image_strength, image_noise=image_noise,
                        image_window=image_window, image_guidance=image_guidance)
    setup = prepare(pipe, image, prompt, s)
    compiled = compile_ablations(ablations, setup)
    cond = replace(compiled, interventions=compiled.interventions + tuple(interventions))
    try:
        return sample(pipe, image, prompt, s, [cond], setup=setup, progress=progress, callback=callback,
                      batch=1)[0]
    except torch.cuda.OutOfMemoryError as e:
        raise _oom(e) from None


def generate_variants(pipe, image, prompt: str, variants, *, negative_prompt: str = "",
                      num_frames: int | None = None, steps: int = 50, guidance: float = 6.0,
                      dynamic_cfg: bool = False, seed: int = 0, fit: str = "crop",
                      size: tuple[int, int] | None = None, record=DEFAULT_RECORD, progress: bool = True,
                      decode_video: bool = True, batch="auto", text_cache: dict | None = None,
                      callback=None, max_record_bytes: int | None = None,
                      settings: Settings | None = None, on_video=None) -> list[Generation]:
    """Several variants of one (image, prompt, seed), batched through the transformer: one
    :class:`~cogviz.sampler.Generation` per variant, each what ``generate(..., ablations=variant)`` returns.

    ``variants``: a list whose items are each an ablation, its dict, a list of them, or None (the
    baseline). **Controlled**: every variant shares the initial noise and the posterior draw of
    ``z_img`` (variants whose pixels an ablation changes are encoded with the generator in the same
    state), and the scheduler's own draws (DPM) repeat per variant as in separate calls. **Cheap**:
    the prompt is encoded once, the unablated image once, and the transformer reads the rows of
    several variants in one forward: ``batch`` variants at a time (an int), or ``"auto"``: as many
    as fit in half the device's free memory (:func:`~cogviz.sampler.variants_per_forward`); the
    decode is batched the same way. Batched rows equal separate calls up to float rounding (the
    kernels sum in a different order for other batch sizes): on the toy, latents within 1e-4,
    frames within 2/255. ``text_cache``: a dict kept across calls (a sweep keeps one) in which each
    prompt's encoding is stored and reused. ``callback(info)`` runs after each step once per
    variant, in variant order; ``on_video(i, generation)`` as the ``i``-th variant's video is
    decoded, before the later variants' (with ``decode_video=False``, never).
    """
    s = _settings(settings, dict(negative_prompt=negative_prompt, num_frames=num_frames, steps=steps,
                                 guidance=guidance, dynamic_cfg=dynamic_cfg, seed=seed, fit=fit, size=size,
                                 record=record, decode_video=decode_video, max_record_bytes=max_record_bytes))
    items = [resolve(() if v is None else v if isinstance(v, (list, tuple)) else (v,)) for v in variants]
    if not items:
        raise CogvizError("variants is empty: give at least one (None is the baseline)")
    if batch != "auto" and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise CogvizError(f"batch={batch!r}: use a whole number of variants per forward (>= 1) or 'auto'")
    setup = prepare(pipe, image, prompt, s)
    conds = [compile_ablations(a, setup) for a in items]
    try:
        return sample(pipe, image, prompt, s, conds, setup=setup, progress=progress, callback=callback,
                      batch=batch, text_cache=text_cache, on_video=on_video)
    except torch.cuda.OutOfMemoryError as e:
        raise _oom(e, "pass a smaller batch= (variants per forward), or ") from None

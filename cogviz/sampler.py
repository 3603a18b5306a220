"""Step 4 of the flow: cogviz's own, unrolled denoising loop over a pipeline's components.

It reproduces ``CogVideoXImageToVideoPipeline.__call__`` (same random-number order: the image
latent's posterior sample first, then the initial noise), but every stage has a name
(:mod:`cogviz.points`) and can be recorded into a :class:`~cogviz.points.Trace` or changed by an
:class:`~cogviz.points.Intervention`.

The sampler is a leaf of the core: it knows points, interventions, the trace, the model-family
rules (:mod:`cogviz.family`) and the guidance schemes (:mod:`cogviz.guidance`); it knows nothing
of ablations. An experiment hands it one :class:`Conditioning` per variant — the interventions
and the image-guidance scale that :func:`cogviz.ablations.compile_ablations` makes of ablations —
and :func:`sample` runs them together. :func:`cogviz.generate` and :func:`cogviz.generate_variants`
(:mod:`cogviz.experiment`) are the public doors.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from . import guidance as G
from . import hooks
from .condition import concat_condition
from .encode import decode_latents, encode_pixels, image_to_tensor
from .fit import FittedImage, fit_image
from .inside import check_blocks, edit_hook
from .plan import CallPlan, Settings, Setup, prepare, resolve_size, validate
from .points import DEFAULT_RECORD, NAMES, Context, Intervention, Trace, check_interventions, intervene
from .readmaps import reader_hook

__all__ = ["NAMES", "DEFAULT_RECORD", "Trace", "Intervention", "Context", "Settings", "CallPlan", "Setup",
           "Conditioning",
           "StepInfo", "Generation", "validate", "resolve_size", "prepare", "sample", "variants_per_forward"]


@dataclass(frozen=True)
class Conditioning:
    """What one variant changes, in the terms the sampler knows: interventions at named points (block
    points included), image guidance (a third branch; None: off) and attention edits
    (:class:`~cogviz.inside.AttentionEdit`). ``meta`` is recorded as ``trace.meta["ablations"]``."""

    interventions: tuple = ()
    image_guidance: float | tuple[float, float] | None = None  # one scale, or a ramp over latent frames
    meta: tuple = ()
    attention: tuple = ()
    #: companion variants (each a Conditioning) run in the same forwards with the same prompt, seed and
    #: noise; the owner's block interventions see their values as ``context.sources``. Not returned.
    sources: tuple = ()


@dataclass(frozen=True)
class StepInfo:
    """What the per-step ``callback`` receives, after step ``step`` of ``steps``.

    ``z_t`` is the latent the step produced; ``x0`` the clean latent the model predicts from this
    step's (guided) prediction, the cheap thing to preview: frame 0 of it, through an
    :class:`~cogviz.preview.RGBMap`, costs no VAE decode.
    """

    step: int
    steps: int
    timestep: int
    z_t: torch.Tensor
    x0: torch.Tensor


@dataclass
class Generation:
    """One generated video and everything recorded on the way (``trace``)."""

    frames: np.ndarray | None   # (F, H, W, 3) uint8; None with decode_video=False
    fitted: FittedImage
    z_img: torch.Tensor         # (1, F, 16, h, w)
    prompt_embeds: torch.Tensor
    trace: Trace

    def __repr__(self) -> str:
        frames = "not decoded" if self.frames is None else f"{self.frames.shape[0]} frames of " \
            f"{self.frames.shape[2]}x{self.frames.shape[1]}"
        abl = [a.get("kind") for a in self.trace.meta.get("ablations", [])] or ["baseline"]
        return (f"Generation({frames}, z_img {tuple(self.z_img.shape)}, ablations {'+'.join(abl)}, "
                f"steps {self.trace.meta.get('steps')}, seed {self.trace.meta.get('seed')}; {self.trace!r})")

    def _repr_html_(self) -> str:
        import base64
        import html
        import io

        from PIL import Image

        strip = ""
        if self.frames is not None:
            idx = sorted({0, len(self.frames) // 2, len(self.frames) - 1})
            buf = io.BytesIO()
            Image.fromarray(np.concatenate([self.frames[i] for i in idx], axis=1)).save(buf, format="PNG")
            strip = (f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}' "
                     f"title='frames {idx}' style='image-rendering:pixelated;height:96px'/><br/>")
        return f"{strip}<code>{html.escape(repr(self))}</code>"


def variants_per_forward(pipe, height: int, width: int, num_latent_frames: int, rows_per_variant: int,
                         *, free_bytes: int | None = None) -> int:
    """How many variants one transformer forward takes within half the device's free memory.

    The estimate per row: the activations a CogVideoX block keeps alive at its peak, about 12
    hidden-state-sized tensors (norms, q/k/v, attention output, the 4x feed-forward), in the
    transformer's dtype; attention itself is taken as memory-efficient (SDPA's flash or
    memory-efficient kernels never hold the token x token matrix). ``free_bytes`` defaults to
    ``torch.cuda.mem_get_info`` on a GPU and the available RAM on the CPU."""
    from .family import token_frames, token_grid

    cfg = pipe.transformer.config
    rows, cols = token_grid(pipe, height, width)
    tokens = token_frames(pipe, num_latent_frames) * rows * cols + int(cfg.max_text_seq_length)
    inner = cfg.num_attention_heads * cfg.attention_head_dim
    per_row = 12 * tokens * inner * pipe.transformer.dtype.itemsize
    if free_bytes is None:
        device = torch.device(pipe._execution_device)
        if device.type == "cuda":
            free_bytes = torch.cuda.mem_get_info(device)[0]
        else:
            import psutil

            free_bytes = psutil.virtual_memory().available
    return max(1, int(free_bytes // 2 // (per_row * rows_per_variant)))


def _generator_at(device, state) -> torch.Generator:
    g = torch.Generator(device=device)
    g.set_state(state)
    return g


@dataclass
class _Variant:
    """One variant's state through the loop."""

    cond: Conditioning
    trace: Trace
    z_img: torch.Tensor | None = None
    image_in: torch.Tensor | None = None
    embeds_in: torch.Tensor | None = None
    z_t: torch.Tensor | None = None
    generator: torch.Generator | None = None
    extra: dict | None = None
    old_pred_original: torch.Tensor | None = None
    rows: tuple[int, int] = (0, 0)
    companions: list = field(default_factory=list)  # source rows that ride along (activation patching)
    companion: bool = False

    @property
    def interventions(self) -> tuple:
        return self.cond.interventions


@dataclass
class _Inputs:
    """What every forward of a call passes the transformer beside the rows: the rotary table, 1.5's
    ``ofs`` and the image channels' indices (for the image-free row)."""

    rotary: Any
    ofs: Any
    image_channels: torch.Tensor


@dataclass
class _Run:
    """What every stage of one :func:`sample` call shares; the call's facts are in ``plan``."""

    plan: CallPlan
    variants: list
    device: Any = None
    dtype: Any = None
    timesteps: Any = None
    cache: str | None = None
    chunks: list = field(default_factory=list)  # (start, end) variant ranges, one transformer forward each
    inputs: _Inputs | None = None
    forward: hooks.Forward | None = None
    hooks: list = field(default_factory=list)
    per_forward: int = 1

    @property
    def pipe(self):
        return self.plan.pipe

    @property
    def settings(self) -> Settings:
        return self.plan.settings


@torch.no_grad()
def sample(pipe, image, prompt: str, settings: Settings, conditionings, *, setup: CallPlan | None = None,
           progress: bool = True, callback=None, batch="auto", text_cache: dict | None = None,
           on_video=None) -> list[Generation]:
    """Generate one video per :class:`Conditioning`, their rows batched through the transformer
    (``batch`` variants per forward, or ``"auto"``), all sharing the initial noise and the
    posterior draw of ``z_img``. Everything is checked before any compute. ``on_video(i, generation)``
    runs as the ``i``-th video is decoded, before the later ones (a sweep writes it meanwhile)."""
    plan = setup or prepare(pipe, image, prompt, settings)
    if plan.settings is None or plan.settings != settings:
        plan = replace(plan, settings=settings)
    run = _Run(plan, [_Variant(c, _trace(plan, prompt, c)) for c in conditionings])
    run.cache = _cache_of(pipe)
    _batching(run, batch)  # the forwards' variants, companions included, before any check or encode
    _check(run)
    fitted = image if isinstance(image, FittedImage) else fit_image(image, (plan.height, plan.width), plan.fit)
    for v in run.variants:
        v.trace.add("image.fitted", fitted.to_array())
    run.device = pipe._execution_device
    generator = torch.Generator(device=run.device).manual_seed(settings.seed)
    prompt_embeds = _encode_text(run, prompt, text_cache)
    run.dtype = prompt_embeds.dtype
    pipe.scheduler.set_timesteps(settings.steps, device=run.device)
    run.timesteps = pipe.scheduler.timesteps
    _encode_image(run, fitted, prompt_embeds, generator)
    _initial_noise(run, generator)
    _denoise(run, progress, callback)
    for v in run.variants:
        v.z_t = intervene(v.interventions, "latents.final", v.z_t)
        v.trace.add("latents.final", v.z_t)
    if not settings.decode_video:
        return [Generation(None, fitted, v.z_img, prompt_embeds, v.trace) for v in run.variants if not v.companion]
    gens = []
    for v, frames in _decode(run):
        gens.append(Generation(frames, fitted, v.z_img, prompt_embeds, v.trace))
        if on_video is not None:
            on_video(len(gens) - 1, gens[-1])
    return gens


def _cache_of(pipe) -> str | None:
    from .speed import cache_preset

    return cache_preset(pipe)


def _source_key(source: Conditioning):
    """Companions with the same content share one row: keyed by what they change (their meta) and
    the guidance they run with (which sets their rows)."""
    if not source.meta:
        return id(source)
    return json.dumps([source.meta, source.image_guidance], sort_keys=True, default=str)


def _trace(plan: CallPlan, prompt: str, cond: Conditioning) -> Trace:
    s = plan.settings
    trace = Trace(s.record)
    trace.meta.update(prompt=prompt, negative_prompt=s.negative_prompt, steps=s.steps, guidance=s.guidance,
                      dynamic_cfg=s.dynamic_cfg, seed=s.seed, num_frames=plan.num_frames, height=plan.height,
                      width=plan.width, ablations=list(cond.meta), rows=list(plan.rows(cond.image_guidance is not None)),
                      plan=plan.to_meta())
    return trace


def _check(run: _Run) -> None:
    """Interventions, the hooks inside the transformer and the speed presets, before any compute."""
    from .errors import SpeedPresetError
    from .speed import check_hooks, check_recordable, speed_of

    pipe, plan = run.pipe, run.plan
    for v in run.variants:
        check_interventions(v.interventions, plan.steps, cfg=plan.do_cfg, blocks=plan.blocks)
        for e in v.cond.attention:
            check_blocks(pipe, e.layers, "attention edit layers")
    run.forward = hooks.Forward.of(plan)
    run.hooks = _hooks(run)
    hooks.check(run.hooks)
    check_hooks(pipe, run.hooks)
    check_recordable(pipe, names=[iv.point for v in run.variants for iv in v.interventions], steps=plan.steps)
    if run.cache and any(v.cond.image_guidance is not None for v in run.variants):
        raise SpeedPresetError(f"image_guidance adds an image-free branch to each forward, which "
                               f"speed={run.cache!r} would cache as if it were part of the CFG batch; load the "
                               "pipeline without a cache preset to use it")
    _check_budget(run)
    for v in run.variants:
        v.trace.meta["speed"] = list(speed_of(pipe))


def _hooks(run: _Run) -> list:
    """The call's hooks inside the transformer (:mod:`cogviz.hooks`), each declaring what it reads,
    writes and records: attention edits, attention-share records, block points, and the attention
    counter a cache preset needs."""
    plan, made = run.plan, []
    edited = sorted({layer for v in run.variants for e in v.cond.attention
                     for layer in (e.layers if e.layers is not None else range(plan.blocks))})
    if edited:
        made.append(edit_hook(edited, run.forward))
    reads = _reads(run)
    if reads:
        made.append(reader_hook(reads, plan.tokens_per_frame, plan.token_grid,
                                on_record=lambda layer, what, x: _record_read(run, layer, what, x)))
    written, recorded = _hooked_blocks(run)
    if written or recorded:
        made.append(hooks.Hook("block points (step/{i}/block/{l}/hidden: records, interventions, "
                               "patch_activations)", "block", tuple(sorted(set(written) | set(recorded))),
                               lambda layer: (lambda h, temb: _block_point(run, layer, h)), reads="block output",
                               writes=bool(written), records=bool(recorded)))
    lensed = [layer for layer in range(plan.blocks) if any(v.trace.wants(f"step/{i}/block/{layer}/lens")
                                                           for v in run.variants for i in range(plan.steps))]
    if lensed:
        from .lens import lens_hook

        made.append(lens_hook(run.pipe, plan, lensed, lambda layer, x: _record_read(run, layer, "lens", x)))
    if run.cache:
        from .speed import attention_counter

        run.forward.attention_calls = [0]
        made.append(attention_counter(run.pipe, run.forward.attention_calls))
    return made


def _reads(run: _Run) -> dict[int, tuple[str, ...]]:
    """What each block's attention reader records: shares where ``attention_layers=`` asks, read maps
    and read positions where a variant records ``step/{i}/block/{l}/readmap`` / ``readpos``."""
    plan, reads = run.plan, {}
    for layer in range(plan.blocks):
        wanted = tuple(what for what in ("readmap", "readtokens", "readpos", "words", "concepts")
                       if any(v.trace.wants(f"step/{i}/block/{layer}/{what}")
                              for v in run.variants for i in range(plan.steps)))
        wanted = (("attention",) if layer in plan.attention_layers else ()) + wanted
        if wanted:
            reads[layer] = wanted
    return reads


def _record_read(run: _Run, layer: int, what: str, x: torch.Tensor) -> None:
    """A forward's reading inside the transformer (attention shares, read maps, block lenses), each
    variant's own rows into its own trace (companions record none): shares always
    (``attention_layers=`` asked for them), the others where the trace wants them."""
    fw = run.forward
    name = f"step/{fw.step}/block/{layer}/{what}"
    for (r0, r1), _, v in fw.rows:
        if v.companion:
            continue
        if what == "attention":
            v.trace.put(name, x[r0:r1])
        else:
            v.trace.add(name, x[r0:r1])


def _check_budget(run: _Run) -> None:
    """The bytes the variants' recordings will copy to the CPU, against ``max_record_bytes``."""
    from .budget import check_record_budget, record_costs

    plan = run.plan
    costs = [record_costs(run.pipe, v.trace.patterns, height=plan.height, width=plan.width,
                          num_frames=plan.num_frames, steps=plan.steps, cfg=plan.do_cfg,
                          image_free=v.cond.image_guidance is not None, attention_layers=plan.attention_layers)
             for v in run.variants if not v.companion]
    check_record_budget(costs, run.settings.max_record_bytes)


def _encode_text(run: _Run, prompt: str, text_cache) -> torch.Tensor:
    """(B, L, D) text embeddings, negative prompt first under classifier-free guidance; once per prompt."""
    do_cfg, neg = run.plan.do_cfg, run.settings.negative_prompt
    key = (prompt, neg, do_cfg)
    if text_cache is not None and key in text_cache:
        return text_cache[key]
    pos, negative = run.pipe.encode_prompt(prompt, neg, do_classifier_free_guidance=do_cfg,
                                           max_sequence_length=int(run.pipe.transformer.config.max_text_seq_length),
                                           device=run.device)
    prompt_embeds = torch.cat([negative, pos]) if do_cfg else pos
    if text_cache is not None:
        text_cache[key] = prompt_embeds
    return prompt_embeds


def _encode_image(run: _Run, fitted, prompt_embeds, generator) -> None:
    """Each variant's z_img, drawn before the initial noise. The unchanged image is encoded once; a
    variant whose interventions change the pixels is encoded with the generator back in the same
    state, so every variant gets the same posterior draw."""
    pipe, plan, device = run.pipe, run.plan, run.device
    start_state = generator.get_state()
    pixels = image_to_tensor(pipe, fitted.image, plan.height, plan.width, device, prompt_embeds.dtype)
    encoded = {}
    for v in run.variants:
        v.trace.add("prompt_embeds", prompt_embeds)
        # image guidance: one more branch, the first one's text with the image zeroed
        v.embeds_in = (prompt_embeds if v.cond.image_guidance is None
                       else torch.cat([prompt_embeds, prompt_embeds[:1]]))
        px = intervene(v.interventions, "image.pixels", pixels)
        v.trace.add("image.pixels", px)
        key = "plain" if px is pixels else ("source", id(v.cond)) if v.companion else len(encoded)
        if key not in encoded:  # a shared source (one Conditioning in every forward) is encoded once
            g = generator if not encoded else _generator_at(device, start_state)  # each encode draws alike
            encoded[key] = encode_pixels(pipe, px, plan.n_latent, generator=g, dtype=prompt_embeds.dtype)
        z_img = encoded[key]
        image_in = torch.cat([z_img] * 2) if plan.do_cfg else z_img  # the same z_img in both CFG halves
        v.image_in = intervene(v.interventions, "z_img", image_in, cfg_batch=plan.do_cfg)
        v.z_img = v.image_in.chunk(2)[1] if plan.do_cfg else v.image_in  # the conditional half is "the" z_img
        v.trace.add("z_img", v.z_img)


def _initial_noise(run: _Run, generator) -> None:
    from diffusers.utils.torch_utils import randn_tensor

    pipe, plan = run.pipe, run.plan
    shape = (1, plan.n_latent, plan.channels, *plan.latent_size)
    noise = randn_tensor(shape, generator=generator, device=run.device, dtype=run.dtype)
    noise = noise * pipe.scheduler.init_noise_sigma
    noise_state = generator.get_state()
    single = len(run.variants) == 1
    for v in run.variants:  # the scheduler's own draws (DPM) repeat per variant, as in separate calls
        v.z_t = noise if single else noise.clone()
        v.generator = generator if single else _generator_at(run.device, noise_state)
        v.extra = pipe.prepare_extra_step_kwargs(v.generator, 0.0)
    cfg = pipe.transformer.config
    run.inputs = _Inputs(
        rotary=(pipe._prepare_rotary_positional_embeddings(plan.height, plan.width, plan.n_latent, run.device)
                if cfg.use_rotary_positional_embeddings else None),
        ofs=None if cfg.ofs_embed_dim is None else noise.new_full((1,), fill_value=plan.family.ofs),
        image_channels=torch.arange(plan.channels, 2 * plan.channels, device=run.device))


def _batching(run: _Run, batch) -> None:
    plan = run.plan
    rows = len(plan.rows(any(v.cond.image_guidance is not None for v in run.variants)))
    run.per_forward = (variants_per_forward(run.pipe, plan.height, plan.width, plan.n_latent, rows)
                       if batch == "auto" else batch)
    if run.cache:  # a cache keeps state per call: one variant per forward, each in its own cache context
        run.per_forward = 1
    # per_forward variants a forward, followed by the companions they read: one per distinct source in
    # that forward (variants patching from the same image share its row and its encode)
    owners, shared = [v for v in run.variants if not v.companion], {}
    run.variants, run.chunks = [], []
    for k in range(0, len(owners), run.per_forward):
        start, made = len(run.variants), {}
        for v in owners[k:k + run.per_forward]:
            run.variants.append(v)
            v.companions = []
            for src in v.cond.sources:
                key = _source_key(src)
                if key not in made:
                    made[key] = _Variant(shared.setdefault(key, src), Trace(()), companion=True)
                v.companions.append(made[key])
        run.variants += list(made.values())
        run.chunks.append((start, len(run.variants)))


def _denoise(run: _Run, progress: bool, callback) -> None:
    """The loop: per step, each variant's input, the batched forwards, guidance and the scheduler step."""
    from tqdm.auto import tqdm

    pipe = run.pipe
    if run.cache:
        pipe.transformer._reset_stateful_cache()
    with hooks.installed(pipe, run.hooks):
        for i, t in enumerate(tqdm(run.timesteps, disable=not progress, desc="cogviz.generate")):
            pipe._current_timestep = t  # what diffusers' cache hooks read, as in the pipeline's own loop
            run.forward.step, run.forward.t = i, t
            xs = [_step_input(run, v, i, t) for v in run.variants]
            pred_all = _forward(run, xs, i, t)
            for v in run.variants:
                _step_output(run, v, pred_all[v.rows[0]:v.rows[1]], i, t, callback)
    pipe._current_timestep = None
    if run.cache:
        pipe.transformer._reset_stateful_cache()
    else:
        for v in run.variants:
            v.trace.meta["step_status"] = ["computed"] * len(run.timesteps)


def _hooked_blocks(run: _Run) -> tuple[list[int], list[int]]:
    """The blocks whose hidden states some variant changes, and those some variant records."""
    written, recorded = [], []
    for layer in range(run.plan.blocks):
        names = [f"step/{i}/block/{layer}/hidden" for i in range(run.plan.steps)]
        if any(iv.matches(n) for v in run.variants for iv in v.interventions for n in names):
            written.append(layer)
        if any(v.trace.wants(n) for v in run.variants for n in names):
            recorded.append(layer)
    return written, recorded


def _block_point(run: _Run, layer: int, hidden: torch.Tensor) -> torch.Tensor:
    """``step/{i}/block/{l}/hidden`` for each variant's rows of this forward: recorded, and changed by
    the variant's interventions. (rows, F' h' w', D) <-> (rows, F', h', w', D)."""
    from einops import rearrange

    fw = run.forward
    i, t = fw.step, fw.t
    name = f"step/{i}/block/{layer}/hidden"
    (hh, ww), f = run.plan.token_grid, run.plan.token_frames
    out = hidden
    views = {id(v): rearrange(hidden[r0:r1], "b (f h w) c -> b f h w c", f=f, h=hh, w=ww)
             for (r0, r1), _, v in fw.rows}
    for (r0, r1), _, v in fw.rows:
        h5 = views[id(v)]
        new = intervene(v.interventions, name, h5, i, t, sources=[views[id(c)] for c in v.companions])
        v.trace.add(name, new)
        if new is not h5:
            out = out.clone() if out is hidden else out
            out[r0:r1] = rearrange(new, "b f h w c -> b (f h w) c")
    return out


def _step_input(run: _Run, v: _Variant, i: int, t) -> torch.Tensor:
    """One variant's rows of step i, by role (:meth:`CallPlan.rows`): (2B[+1] or B[+1], F, 32, h, w),
    16 noise + 16 image channels."""
    do_cfg = run.plan.do_cfg
    v.z_t = intervene(v.interventions, f"step/{i}/z_t", v.z_t, i, t)
    v.trace.add(f"step/{i}/z_t", v.z_t)
    model_in = torch.cat([v.z_t] * 2) if do_cfg else v.z_t
    model_in = run.pipe.scheduler.scale_model_input(model_in, t)
    x = concat_condition(model_in, v.image_in)
    x = intervene(v.interventions, f"step/{i}/input", x, i, t, do_cfg)
    if v.cond.image_guidance is not None:  # the image-free branch last
        x = torch.cat([x, x[:1].clone().index_fill_(2, run.inputs.image_channels, 0)])
    v.trace.add(f"step/{i}/input", x)
    return x


def _forward(run: _Run, xs: list, i: int, t) -> torch.Tensor:
    """Every variant's rows through the transformer, ``per_forward`` variants at a time."""
    pipe, variants, inputs = run.pipe, run.variants, run.inputs
    n = 0
    for v, x in zip(variants, xs):
        v.rows = (n, n + x.shape[0])
        n += x.shape[0]
    counter = getattr(run.forward, "attention_calls", None)
    preds = []
    for k, k_end in run.chunks:
        x = xs[k] if k_end - k == 1 else torch.cat(xs[k:k_end])
        e = variants[k].embeds_in if k_end - k == 1 else torch.cat([v.embeds_in for v in variants[k:k_end]])
        context = (pipe.transformer.cache_context(f"cogviz/{k}", step_index=i, num_inference_steps=run.plan.steps,
                                                  timestep=t) if run.cache else contextlib.nullcontext())
        calls_before = counter[0] if counter else 0
        r0 = variants[k].rows[0]
        run.forward.rows = [((v.rows[0] - r0, v.rows[1] - r0), v.cond.attention, v) for v in variants[k:k_end]]
        with context:
            preds.append(pipe.transformer(hidden_states=x, encoder_hidden_states=e, timestep=t.expand(x.shape[0]),
                                          ofs=inputs.ofs, image_rotary_emb=inputs.rotary, return_dict=False)[0].float())
        if counter:  # counted, not predicted: the blocks whose attention actually ran (one variant here)
            ran = counter[0] - calls_before
            variants[k].trace.meta.setdefault("step_status", []).append(
                "computed" if ran >= run.plan.blocks else "reused" if ran == 0 else "partial")
    return preds[0] if len(preds) == 1 else torch.cat(preds)


def _step_output(run: _Run, v: _Variant, pred: torch.Tensor, i: int, t, callback) -> None:
    """Guidance, the pred point, and the scheduler's step for one variant."""
    from diffusers import CogVideoXDPMScheduler

    pipe, s = run.pipe, run.settings
    w = G.text_scale(s.guidance, dynamic=s.dynamic_cfg, t=t.item(), steps=s.steps)
    pred = G.combine(pred, cfg=run.plan.do_cfg, scale=w, image_scale=v.cond.image_guidance)
    pred = intervene(v.interventions, f"step/{i}/pred", pred, i, t)
    v.trace.add(f"step/{i}/pred", pred)
    if isinstance(pipe.scheduler, CogVideoXDPMScheduler):
        prev = run.timesteps[i - 1] if i > 0 else None
        v.z_t, x0 = pipe.scheduler.step(pred, v.old_pred_original, t, prev, v.z_t, **v.extra, return_dict=False)
        v.old_pred_original = x0
    else:
        v.z_t, x0 = pipe.scheduler.step(pred, t, v.z_t, **v.extra, return_dict=False)
    v.z_t = v.z_t.to(run.dtype)
    v.trace.add(f"step/{i}/x0", x0)  # the scheduler's own pred_original_sample
    if callback is not None and not v.companion:
        callback(StepInfo(i, len(run.timesteps), int(t), v.z_t, x0.float()))


def _decode(run: _Run):
    """(variant, uint8 frames) pairs. On the CPU videos are decoded in pairs: for one small video
    PyTorch takes its slow reference conv3d, for two or more oneDNN, and larger batches lose cache
    locality (toy, 2 cores: 0.49 s a video alone, 0.12 in pairs, 0.24 in eights). On a GPU one at a
    time: the VAE's decode is the pipeline's memory peak."""
    per_decode = min(run.per_forward, 2) if torch.device(run.device).type == "cpu" else 1
    variants = [v for v in run.variants if not v.companion]
    for k in range(0, len(variants), per_decode):
        z = torch.cat([v.z_t for v in variants[k:k + per_decode]])
        for v, video in zip(variants[k:k + per_decode], decode_latents(run.pipe, z, drop=run.plan.pad)):
            frames = (video.float().cpu().numpy() * 255).round().astype(np.uint8)  # (F', H, W, 3)
            v.trace.add("frames", frames)
            yield v, frames

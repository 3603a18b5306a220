"""Step 4 of the flow: cogviz's own, unrolled denoising loop over a pipeline's components.

It reproduces ``CogVideoXImageToVideoPipeline.__call__`` (same random-number order: the image
latent's posterior sample first, then the initial noise), but every stage has a name and can be
recorded into a :class:`Trace`:

=================  =====================================================================
``image.fitted``   (H, W, 3) uint8, the fitted conditioning image
``image.pixels``   (1, 3, H, W) the image in [-1, 1] as the VAE receives it (pixel-space ablations act here)
``z_img``          (B, F, 16, h, w) the image latent: frame 0 the image, zeros after
``prompt_embeds``  (2B or B, L, D) text embeddings (negative prompt first under CFG)
``step/{i}/z_t``   (B, F, 16, h, w) the noisy latent entering step i
``step/{i}/input`` (2B or B, F, 32, h, w) the transformer's input: concat(z_t, z_img) on channels;
                   with image guidance one more row last: the first row with its image channels zeroed
``step/{i}/pred``  (B, F, 16, h, w) the guided v-prediction of step i
``step/{i}/attention/{l}``  (2B or B, F', 1 + F') opt-in (``attention_layers=``): for the queries
                   of each latent frame, the share of layer l's attention on the text and on each frame
``latents.final``  (B, F, 16, h, w) the denoised latent (1.5 padding frames included)
``frames``         (F', H, W, 3) uint8, the decoded video
=================  =====================================================================
"""
from __future__ import annotations

import contextlib
import fnmatch
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .ablations import ImageGuidance, Setup
from .ablations import resolve as resolve_ablations
from .analysis import record_attention
from .condition import concat_condition
from .errors import CogvizError, OutOfMemoryError
from .encode import decode_latents, encode_pixels, image_to_tensor, latent_frames
from .fit import FittedImage, fit_image

__all__ = ["NAMES", "DEFAULT_RECORD", "Trace", "Intervention", "Context", "StepInfo", "Generation", "validate",
           "generate", "generate_variants", "variants_per_forward", "resolve_size"]

NAMES = ("image.fitted", "image.pixels", "z_img", "prompt_embeds", "step/{i}/z_t", "step/{i}/input", "step/{i}/pred",
         "step/{i}/attention/{l}", "latents.final", "frames")
#: Recorded by default: everything but the per-step tensors (cheap at any model size).
DEFAULT_RECORD = ("image.fitted", "z_img", "prompt_embeds", "latents.final", "frames")


@dataclass
class Trace:
    """Named tensors recorded during one generation (CPU copies), plus JSON-able metadata.

    ``record`` patterns use shell-style wildcards: ``"step/*/input"`` records every step's input.
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

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def names(self) -> list[str]:
        return list(self.tensors)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def save(self, path: str | Path) -> Path:
        """safetensors file (tensors) with the metadata as JSON in its header; never pickle."""
        from safetensors.torch import save_file

        path = Path(path)
        meta = {"cogviz.meta": json.dumps(self.meta), "cogviz.patterns": json.dumps(list(self.patterns))}
        save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(path), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Trace":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        return cls(tuple(json.loads(header.get("cogviz.patterns", "[]"))), tensors,
                   json.loads(header.get("cogviz.meta", "{}")))


@dataclass(frozen=True)
class Context:
    """What an intervention is told: the point's name, the step (None for z_img), timestep, CFG half."""

    name: str
    step: int | None
    timestep: int | None
    half: str  # "both", "cond" or "uncond"


@dataclass(frozen=True)
class Intervention:
    """Replace the tensor at ``point`` (a name or wildcard pattern, e.g. ``"z_img"``,
    ``"step/*/input"``, ``"step/3/pred"``) with ``fn(tensor, context)``.

    ``half`` picks one half of a CFG batch (``"cond"`` or ``"uncond"``) for ``z_img`` and
    ``step/{i}/input``; ``fn`` then receives and returns that half only. Interventions live for one
    call of :func:`generate`: nothing is attached to the pipeline.
    """

    point: str
    fn: object
    half: str = "both"


def _check_return(out, ref: torch.Tensor, ctx: Context) -> torch.Tensor:
    where = ctx.name if ctx.step is None else f"{ctx.name} (step {ctx.step})"
    if not isinstance(out, torch.Tensor):
        raise CogvizError(f"intervention at {where} returned {type(out).__name__}, expected a tensor")
    if out.shape != ref.shape or out.dtype != ref.dtype or out.device != ref.device:
        raise CogvizError(f"intervention at {where} returned shape {tuple(out.shape)}, {out.dtype} on {out.device}; "
                          f"expected shape {tuple(ref.shape)}, {ref.dtype} on {ref.device}")
    return out


def _intervene(interventions, name, x, step, t, cfg_batch: bool):
    for iv in interventions:
        if not fnmatch.fnmatchcase(name, iv.point):
            continue
        ctx = Context(name, step, None if t is None else int(t), iv.half)
        if iv.half == "both" or not cfg_batch:
            x = _check_return(iv.fn(x, ctx), x, ctx)
        else:
            uncond, cond = x.chunk(2)  # the negative prompt comes first
            if iv.half == "cond":
                cond = _check_return(iv.fn(cond, ctx), cond, ctx)
            else:
                uncond = _check_return(iv.fn(uncond, ctx), uncond, ctx)
            x = torch.cat([uncond, cond])
    return x


def validate(pipe, *, num_frames: int, steps: int, guidance: float, prompt: str, height: int, width: int) -> None:
    """Check a generation's settings before any compute; each error names the rule and the fix."""
    cfg = pipe.transformer.config
    is15 = cfg.patch_size_t is not None
    k = 16 if is15 else 8
    if not isinstance(num_frames, int) or num_frames < 1 or (num_frames - 1) % k:
        lo = max(1, (int(num_frames) - 1) // k * k + 1) if isinstance(num_frames, int) and num_frames > 0 else 1
        raise CogvizError(f"num_frames={num_frames!r}: CogVideoX {'1.5' if is15 else '1.0'} models need "
                          f"{k}k+1 frames (other counts decode to a different length); nearest valid: "
                          f"{lo} or {lo + k}")
    if not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise CogvizError(f"steps={steps!r}: use an integer from 1 to 1000 (50 is the usual choice)")
    if not 0.0 <= float(guidance) <= 50.0:
        raise CogvizError(f"guidance={guidance!r}: use a value in [0, 50] (1 disables CFG; 6 is the default)")
    if height % 16 or width % 16:
        raise CogvizError(f"size {height}x{width}: height and width must be multiples of 16")
    if cfg.use_learned_positional_embeddings and (height, width) != (cfg.sample_height * 8, cfg.sample_width * 8):
        raise CogvizError(f"size {height}x{width}: this model's learned positional embeddings fix it at "
                          f"{cfg.sample_height * 8}x{cfg.sample_width * 8}; fit the image with fit_image first")
    if cfg.patch_size_t is not None and (height > cfg.sample_height * 8 or width > cfg.sample_width * 8):
        raise CogvizError(f"size {height}x{width}: this model's rotary position table covers at most "
                          f"{cfg.sample_height * 8}x{cfg.sample_width * 8}; fit the image to a size within it")
    if not isinstance(prompt, str) or not prompt.strip():
        raise CogvizError("prompt is empty: describe the motion, e.g. 'a red circle moves left'")
    n = len(pipe.tokenizer(prompt, add_special_tokens=True).input_ids)
    limit = int(cfg.max_text_seq_length)
    if n > limit:
        raise CogvizError(f"prompt has {n} tokens; this model reads {limit} (the first {limit - 1} and the end "
                          "token would be kept): shorten it")


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


def resolve_size(pipe, image=None, size=None) -> tuple[int, int]:
    """The (height, width) a generation runs at: ``size``, else a fitted image's size where the model
    accepts any size (no learned positional embeddings: CogVideoX 1.5), else the model's sample size."""
    cfg = pipe.transformer.config
    s = pipe.vae_scale_factor_spatial
    if size is not None:
        return int(size[0]), int(size[1])
    if isinstance(image, FittedImage) and not cfg.use_learned_positional_embeddings:
        return image.size
    return cfg.sample_height * s, cfg.sample_width * s


def _x0(scheduler, z_t, pred, t) -> torch.Tensor:
    """The predicted clean latent of a v-prediction (or epsilon) model at timestep t."""
    a = scheduler.alphas_cumprod.to(z_t.device)[int(t)].to(torch.float32)
    z = z_t.float()
    if scheduler.config.prediction_type == "v_prediction":
        return a.sqrt() * z - (1 - a).sqrt() * pred
    return (z - (1 - a).sqrt() * pred) / a.sqrt()


_OOM_FIX = ("load the pipeline with load_pipeline(model, memory='model_offload') (or 'sequential_offload', the "
            "slowest and smallest; add 'vae_tiling' and 'vae_slicing' for the decode), record fewer tensors "
            "(record=DEFAULT_RECORD), or generate fewer frames")


@dataclass
class Generation:
    frames: np.ndarray | None   # (F, H, W, 3) uint8; None with decode_video=False
    fitted: FittedImage
    z_img: torch.Tensor         # (1, F, 16, h, w)
    prompt_embeds: torch.Tensor
    trace: Trace


def generate(pipe, image, prompt: str, *, negative_prompt: str = "", num_frames: int | None = None,
             steps: int = 50, guidance: float = 6.0, dynamic_cfg: bool = False, seed: int = 0,
             fit: str = "crop", size: tuple[int, int] | None = None, record=DEFAULT_RECORD, interventions=(),
             progress: bool = True, callback=None, decode_video: bool = True, attention_layers=None,
             ablations=(), image_strength: float | None = None, image_noise: float | None = None,
             image_window: tuple[float, float] | None = None, image_guidance: float | None = None) -> Generation:
    """Generate a video conditioned on ``image``, with every stage named (see the module doc).

    Memory of recording: ``step/*/input`` costs 2 x F x 32 x h x w floats a step under CFG (for
    5b-I2V at 49 frames: 2 x 13 x 32 x 60 x 90 x 4 B = 18 MB a step, 0.9 GB for 50 steps); copies go
    to the CPU, never stay on the GPU.

    ``ablations``: :mod:`cogviz.ablations` objects (or their dicts), applied in order for this call
    and recorded in ``trace.meta["ablations"]``; the everyday knobs map onto the same objects:
    ``image_noise=sigma`` (pixel noise before encoding), ``image_strength=alpha`` (``z_img`` times
    alpha), ``image_window=(start, end)`` (image channels only in that fraction of the steps),
    ``image_guidance=scale`` (image-only guidance, a third branch; 1 is the usual CFG).

    ``interventions``: :class:`Intervention` objects acting on ``image.pixels``, ``z_img``,
    ``step/{i}/z_t``, ``step/{i}/input`` or ``step/{i}/pred`` (after the ablations'). ``callback(info)`` runs after each step with a
    :class:`StepInfo` (live previews). ``decode_video=False`` stops at ``latents.final`` (no VAE
    decode; ``frames`` is then None), for latent-only studies and benchmarks.
    ``attention_layers`` (a list of block indices, or ``"all"``) records, per step, where those
    layers' attention goes (``step/{i}/attention/{l}``); it materialises attention weights in
    chunks, so keep it to small models or a few layers. The processors are swapped in for this
    call only. ``size`` (height, width) defaults to the model's sample size,
    or to a fitted image's size on models that accept other sizes (1.5). Settings are checked by
    :func:`validate` before any compute. Running out of accelerator memory raises
    :class:`~cogviz.errors.OutOfMemoryError`, which names the memory options.
    """
    try:
        return _generate(pipe, image, prompt, negative_prompt=negative_prompt, num_frames=num_frames, steps=steps,
                         guidance=guidance, dynamic_cfg=dynamic_cfg, seed=seed, fit=fit, size=size, record=record,
                         interventions=interventions, progress=progress, callback=callback,
                         decode_video=decode_video, attention_layers=attention_layers,
                         ablations=resolve_ablations(ablations, image_strength=image_strength,
                                                     image_noise=image_noise, image_window=image_window,
                                                     image_guidance=image_guidance))
    except torch.cuda.OutOfMemoryError as e:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise OutOfMemoryError(f"out of accelerator memory ({str(e).splitlines()[0][:200]}): {_OOM_FIX}") from None


def generate_variants(pipe, image, prompt: str, variants, *, negative_prompt: str = "",
                      num_frames: int | None = None, steps: int = 50, guidance: float = 6.0,
                      dynamic_cfg: bool = False, seed: int = 0, fit: str = "crop",
                      size: tuple[int, int] | None = None, record=DEFAULT_RECORD, progress: bool = True,
                      decode_video: bool = True, batch="auto", text_cache: dict | None = None,
                      callback=None) -> list[Generation]:
    """Several variants of one (image, prompt, seed), batched through the transformer: one
    :class:`Generation` per variant, each what ``generate(..., ablations=variant)`` returns.

    ``variants``: a list whose items are each an ablation, its dict, a list of them, or None (the
    baseline). **Controlled**: every variant shares the initial noise and the posterior draw of
    ``z_img`` (variants whose pixels an ablation changes are encoded with the generator in the same
    state), and the scheduler's own draws (DPM) repeat per variant as in separate calls. **Cheap**:
    the prompt is encoded once, the unablated image once, and the transformer reads the rows of
    several variants in one forward: ``batch`` variants at a time (an int), or ``"auto"``: as many
    as fit in half the device's free memory (:func:`variants_per_forward`); the decode is batched
    the same way. Batched rows equal separate calls up to float rounding (the kernels sum in a
    different order for other batch sizes): on the toy, latents within 1e-4, frames within 2/255.
    ``text_cache``: a dict kept across calls (a sweep keeps one) in which each prompt's encoding is
    stored and reused. ``callback(info)`` runs after each step once per variant, in variant order.
    """
    from .ablations import resolve as _resolve

    items = []
    for v in variants:
        if v is None:
            v = ()
        elif not isinstance(v, (list, tuple)):
            v = (v,)
        items.append((tuple(_resolve(v)), ()))
    if not items:
        raise CogvizError("variants is empty: give at least one (None is the baseline)")
    if batch != "auto" and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise CogvizError(f"batch={batch!r}: use a whole number of variants per forward (>= 1) or 'auto'")
    try:
        return _generate_many(pipe, image, prompt, items, negative_prompt=negative_prompt, num_frames=num_frames,
                              steps=steps, guidance=guidance, dynamic_cfg=dynamic_cfg, seed=seed, fit=fit,
                              size=size, record=record, progress=progress, callback=callback,
                              decode_video=decode_video, attention_layers=None, batch=batch,
                              text_cache=text_cache)
    except torch.cuda.OutOfMemoryError as e:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise OutOfMemoryError(f"out of accelerator memory ({str(e).splitlines()[0][:200]}): pass a smaller "
                               f"batch= (variants per forward), or {_OOM_FIX}") from None


def variants_per_forward(pipe, height: int, width: int, num_latent_frames: int, rows_per_variant: int,
                         *, free_bytes: int | None = None) -> int:
    """How many variants one transformer forward takes within half the device's free memory.

    The estimate per row: the activations a CogVideoX block keeps alive at its peak, about 12
    hidden-state-sized tensors (norms, q/k/v, attention output, the 4x feed-forward), in the
    transformer's dtype; attention itself is taken as memory-efficient (SDPA's flash or
    memory-efficient kernels never hold the token x token matrix). ``free_bytes`` defaults to
    ``torch.cuda.mem_get_info`` on a GPU and the available RAM on the CPU."""
    cfg = pipe.transformer.config
    p, pt = cfg.patch_size, cfg.patch_size_t or 1
    tokens = (num_latent_frames // pt) * (height // pipe.vae_scale_factor_spatial // p) * \
        (width // pipe.vae_scale_factor_spatial // p) + int(cfg.max_text_seq_length)
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


@torch.no_grad()
def _generate(pipe, image, prompt, *, ablations, interventions, **kwargs) -> Generation:
    return _generate_many(pipe, image, prompt, [(tuple(ablations), tuple(interventions))], batch=1, **kwargs)[0]


def _generator_at(device, state) -> torch.Generator:
    g = torch.Generator(device=device)
    g.set_state(state)
    return g


@dataclass
class _Variant:
    """One variant's state through the loop."""

    ablations: tuple
    interventions: tuple
    trace: Trace
    image_scale: float | None = None
    z_img: torch.Tensor | None = None
    image_in: torch.Tensor | None = None
    embeds_in: torch.Tensor | None = None
    z_t: torch.Tensor | None = None
    generator: torch.Generator | None = None
    extra: dict | None = None
    old_pred_original: torch.Tensor | None = None
    rows: tuple[int, int] = (0, 0)


@torch.no_grad()
def _generate_many(pipe, image, prompt, items, *, negative_prompt, num_frames, steps, guidance, dynamic_cfg, seed,
                   fit, size, record, progress, callback, decode_video, attention_layers, batch,
                   text_cache=None) -> list[Generation]:
    from diffusers import CogVideoXDPMScheduler
    from diffusers.utils.torch_utils import randn_tensor
    from tqdm.auto import tqdm

    tr_cfg = pipe.transformer.config
    device = pipe._execution_device
    height, width = resolve_size(pipe, image, size)
    num_frames = num_frames or tr_cfg.sample_frames
    patterns = tuple([record] if isinstance(record, str) else record)
    validate(pipe, num_frames=num_frames, steps=steps, guidance=guidance, prompt=prompt, height=height, width=width)
    if isinstance(image, FittedImage) and image.size != (height, width):
        raise CogvizError(f"the fitted image is {image.size[0]}x{image.size[1]} but this model needs "
                          f"{height}x{width}: fit_image(image, ({height}, {width}))")
    do_cfg = guidance > 1.0
    setup = Setup(pipe, height, width, steps, fit, do_cfg)
    variants = []
    for ablations, extra_ivs in items:
        for a in ablations:
            a.check(setup)
        trace = Trace(patterns)
        trace.meta.update(prompt=prompt, negative_prompt=negative_prompt, steps=steps, guidance=guidance,
                          dynamic_cfg=dynamic_cfg, seed=seed, num_frames=num_frames, height=height, width=width,
                          ablations=[a.to_dict() for a in ablations])
        variants.append(_Variant(ablations, tuple(iv for a in ablations for iv in a.interventions(setup)) + extra_ivs,
                                 trace, next((a.scale for a in ablations if isinstance(a, ImageGuidance)), None)))
    from .speed import cache_preset, check_recordable, count_attention, speed_of

    check_recordable(pipe, names=[iv.point for v in variants for iv in v.interventions],
                     attention=bool(attention_layers))
    cache = cache_preset(pipe)
    if cache and any(v.image_scale is not None for v in variants):
        from .errors import SpeedPresetError

        raise SpeedPresetError(f"image_guidance adds an image-free branch to each forward, which speed={cache!r} "
                               "would cache as if it were part of the CFG batch; load the pipeline without a "
                               "cache preset to use it")
    for v in variants:
        v.trace.meta["speed"] = list(speed_of(pipe))
    fitted = image if isinstance(image, FittedImage) else fit_image(image, (height, width), fit)
    for v in variants:
        v.trace.add("image.fitted", fitted.to_array())
    generator = torch.Generator(device=device).manual_seed(seed)
    start_state = generator.get_state()

    # text, once: (B, L, D), negative prompt first under classifier-free guidance
    key = (prompt, negative_prompt, do_cfg)
    if text_cache is None or key not in text_cache:
        pos, neg = pipe.encode_prompt(prompt, negative_prompt, do_classifier_free_guidance=do_cfg,
                                      max_sequence_length=int(tr_cfg.max_text_seq_length), device=device)
        prompt_embeds = torch.cat([neg, pos]) if do_cfg else pos
        if text_cache is not None:
            text_cache[key] = prompt_embeds
    prompt_embeds = text_cache[key] if text_cache is not None else prompt_embeds
    pipe.scheduler.set_timesteps(steps, device=device)
    timesteps = pipe.scheduler.timesteps
    n_latent, pad = latent_frames(pipe, num_frames)

    # the image latent first (it draws from the generator), then the initial noise. The unablated
    # image is encoded once; an ablation that changes the pixels is encoded with the generator
    # back in the same state, so every variant gets the same posterior draw.
    pixels = image_to_tensor(pipe, fitted.image, height, width, device, prompt_embeds.dtype)
    encoded = {}
    for v in variants:
        v.trace.add("prompt_embeds", prompt_embeds)
        # image guidance: one more branch, the first one's text with the image zeroed
        v.embeds_in = prompt_embeds if v.image_scale is None else torch.cat([prompt_embeds, prompt_embeds[:1]])
        px = _intervene(v.interventions, "image.pixels", pixels, None, None, False)
        v.trace.add("image.pixels", px)
        if px is not pixels or "plain" not in encoded:
            g = generator if not encoded else _generator_at(device, start_state)  # each encode draws alike
            z_img = encode_pixels(pipe, px, n_latent, generator=g, dtype=prompt_embeds.dtype)
            encoded["plain" if px is pixels else len(encoded)] = z_img
        z_img = encoded["plain"] if px is pixels else z_img
        image_in = torch.cat([z_img] * 2) if do_cfg else z_img  # the same z_img in both CFG halves
        v.image_in = _intervene(v.interventions, "z_img", image_in, None, None, do_cfg)
        v.z_img = v.image_in.chunk(2)[1] if do_cfg else v.image_in  # the conditional half is "the" z_img
        v.trace.add("z_img", v.z_img)
    shape = (1, n_latent, tr_cfg.in_channels // 2, height // pipe.vae_scale_factor_spatial,
             width // pipe.vae_scale_factor_spatial)
    noise = randn_tensor(shape, generator=generator, device=device, dtype=prompt_embeds.dtype)
    noise = noise * pipe.scheduler.init_noise_sigma
    noise_state = generator.get_state()
    for v in variants:  # the scheduler's own draws (DPM) repeat per variant, as in separate calls
        v.z_t = noise.clone() if len(variants) > 1 else noise
        v.generator = generator if len(variants) == 1 else _generator_at(device, noise_state)
        v.extra = pipe.prepare_extra_step_kwargs(v.generator, 0.0)

    image_channels = torch.arange(shape[2], 2 * shape[2], device=device)
    rotary = (pipe._prepare_rotary_positional_embeddings(height, width, n_latent, device)
              if tr_cfg.use_rotary_positional_embeddings else None)
    ofs = None if tr_cfg.ofs_embed_dim is None else noise.new_full((1,), fill_value=2.0)
    is_dpm = isinstance(pipe.scheduler, CogVideoXDPMScheduler)
    rows_per_variant = (2 if do_cfg else 1) + any(v.image_scale is not None for v in variants)
    per_forward = (variants_per_forward(pipe, height, width, n_latent, rows_per_variant) if batch == "auto"
                   else batch)
    if cache:  # a cache keeps state per call: one variant per forward, each in its own cache context
        per_forward = 1

    p = pipe.transformer.config.patch_size
    tokens_per_frame = (shape[3] // p) * (shape[4] // p)
    recorder = (record_attention(pipe, attention_layers, tokens_per_frame) if attention_layers
                else contextlib.nullcontext({}))
    counting = count_attention(pipe) if cache else contextlib.nullcontext(None)
    n_blocks = len(pipe.transformer.transformer_blocks)
    if cache:
        pipe.transformer._reset_stateful_cache()
    with recorder as attention, counting as attention_calls:
        for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="cogviz.generate")):
            pipe._current_timestep = t  # what diffusers' cache hooks read, as in the pipeline's own loop
            xs, embeds, n = [], [], 0
            for v in variants:
                v.z_t = _intervene(v.interventions, f"step/{i}/z_t", v.z_t, i, t, False)
                v.trace.add(f"step/{i}/z_t", v.z_t)
                model_in = torch.cat([v.z_t] * 2) if do_cfg else v.z_t
                model_in = pipe.scheduler.scale_model_input(model_in, t)
                x = concat_condition(model_in, v.image_in)  # (2B, F, 32, h, w): 16 noise + 16 image channels
                x = _intervene(v.interventions, f"step/{i}/input", x, i, t, do_cfg)
                if v.image_scale is not None:  # (2B + 1 or B + 1, F, 32, h, w): the image-free branch last
                    x = torch.cat([x, x[:1].clone().index_fill_(2, image_channels, 0)])
                v.trace.add(f"step/{i}/input", x)
                xs.append(x)
                embeds.append(v.embeds_in)
                v.rows = (n, n + x.shape[0])
                n += x.shape[0]
            preds = []
            for k in range(0, len(variants), per_forward):  # several variants' rows per forward
                x = xs[k] if per_forward == 1 else torch.cat(xs[k:k + per_forward])
                e = embeds[k] if per_forward == 1 else torch.cat(embeds[k:k + per_forward])
                context = (pipe.transformer.cache_context(f"cogviz/{k}", step_index=i, num_inference_steps=steps,
                                                          timestep=t) if cache else contextlib.nullcontext())
                calls_before = attention_calls[0] if cache else 0
                with context:
                    preds.append(pipe.transformer(hidden_states=x, encoder_hidden_states=e,
                                                  timestep=t.expand(x.shape[0]), ofs=ofs, image_rotary_emb=rotary,
                                                  return_dict=False)[0].float())
                if cache:  # counted, not predicted: the blocks whose attention actually ran (one variant here)
                    ran = attention_calls[0] - calls_before
                    variants[k].trace.meta.setdefault("step_status", []).append(
                        "computed" if ran >= n_blocks else "reused" if ran == 0 else "partial")
            pred_all = preds[0] if len(preds) == 1 else torch.cat(preds)
            w = guidance
            if dynamic_cfg:
                w = 1 + guidance * ((1 - math.cos(math.pi * ((steps - t.item()) / steps) ** 5.0)) / 2)
            for v in variants:
                for layer, proc in attention.items():
                    v.trace.tensors[f"step/{i}/attention/{layer}"] = proc.last
                pred = pred_all[v.rows[0]:v.rows[1]]
                if v.image_scale is not None:
                    pred, free = pred[:-1], pred[-1:]
                image_branch = pred[:1]  # e(neg, img) under CFG, else e(txt, img)
                if do_cfg:
                    uncond, cond = pred.chunk(2)
                    pred = uncond + w * (cond - uncond)
                if v.image_scale is not None:  # e(., ∅) + s_img (e(., img) - e(., ∅)) + [text guidance]
                    pred = pred + (v.image_scale - 1.0) * (image_branch - free)
                pred = _intervene(v.interventions, f"step/{i}/pred", pred, i, t, False)
                v.trace.add(f"step/{i}/pred", pred)
                z_in = v.z_t
                if is_dpm:
                    v.z_t, v.old_pred_original = pipe.scheduler.step(pred, v.old_pred_original, t,
                                                                     timesteps[i - 1] if i > 0 else None, v.z_t,
                                                                     **v.extra, return_dict=False)
                else:
                    v.z_t = pipe.scheduler.step(pred, t, v.z_t, **v.extra, return_dict=False)[0]
                v.z_t = v.z_t.to(prompt_embeds.dtype)
                if callback is not None:
                    callback(StepInfo(i, len(timesteps), int(t), v.z_t, _x0(pipe.scheduler, z_in, pred, t)))

    pipe._current_timestep = None
    if cache:
        pipe.transformer._reset_stateful_cache()
    out = []
    for v in variants:
        v.trace.add("latents.final", v.z_t)
        if not cache:
            v.trace.meta["step_status"] = ["computed"] * len(timesteps)
    if not decode_video:
        return [Generation(None, fitted, v.z_img, prompt_embeds, v.trace) for v in variants]
    # On the CPU videos are decoded in pairs: for one small video PyTorch takes its slow reference
    # conv3d, for two or more oneDNN, and larger batches lose cache locality (toy, 2 cores: 0.49 s
    # a video alone, 0.12 in pairs, 0.24 in eights). On a GPU one at a time: the VAE's decode is
    # the pipeline's memory peak.
    per_decode = min(per_forward, 2) if torch.device(device).type == "cpu" else 1
    videos = []
    for k in range(0, len(variants), per_decode):
        z = torch.cat([v.z_t for v in variants[k:k + per_decode]])
        videos.extend(decode_latents(pipe, z, drop=pad))  # (F', H, W, 3) in [0, 1] each
    for v, video in zip(variants, videos):
        frames = (video.float().cpu().numpy() * 255).round().astype(np.uint8)
        v.trace.add("frames", frames)
        out.append(Generation(frames, fitted, v.z_img, prompt_embeds, v.trace))
    return out

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
           "generate", "resolve_size"]

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


@torch.no_grad()
def _generate(pipe, image, prompt, *, negative_prompt, num_frames, steps, guidance, dynamic_cfg, seed, fit, size,
              record, interventions, progress, callback, decode_video, attention_layers, ablations) -> Generation:
    from diffusers import CogVideoXDPMScheduler
    from diffusers.utils.torch_utils import randn_tensor
    from tqdm.auto import tqdm

    tr_cfg = pipe.transformer.config
    device = pipe._execution_device
    dtype = pipe.transformer.dtype
    height, width = resolve_size(pipe, image, size)
    num_frames = num_frames or tr_cfg.sample_frames
    trace = Trace(tuple([record] if isinstance(record, str) else record))
    trace.meta.update(prompt=prompt, negative_prompt=negative_prompt, steps=steps, guidance=guidance,
                      dynamic_cfg=dynamic_cfg, seed=seed, num_frames=num_frames, height=height, width=width)

    validate(pipe, num_frames=num_frames, steps=steps, guidance=guidance, prompt=prompt, height=height, width=width)
    if isinstance(image, FittedImage) and image.size != (height, width):
        raise CogvizError(f"the fitted image is {image.size[0]}x{image.size[1]} but this model needs "
                          f"{height}x{width}: fit_image(image, ({height}, {width}))")
    do_cfg = guidance > 1.0
    setup = Setup(pipe, height, width, steps, fit, do_cfg)
    for a in ablations:
        a.check(setup)
    image_scale = next((a.scale for a in ablations if isinstance(a, ImageGuidance)), None)
    interventions = tuple(iv for a in ablations for iv in a.interventions(setup)) + tuple(interventions)
    trace.meta["ablations"] = [a.to_dict() for a in ablations]
    fitted = image if isinstance(image, FittedImage) else fit_image(image, (height, width), fit)
    trace.add("image.fitted", fitted.to_array())
    generator = torch.Generator(device=device).manual_seed(seed)

    # text: (B, L, D), negative prompt first under classifier-free guidance
    pos, neg = pipe.encode_prompt(prompt, negative_prompt, do_classifier_free_guidance=do_cfg,
                                  max_sequence_length=int(tr_cfg.max_text_seq_length), device=device)
    prompt_embeds = torch.cat([neg, pos]) if do_cfg else pos
    trace.add("prompt_embeds", prompt_embeds)
    # image guidance: one more branch, the first one's text with the image zeroed
    embeds_in = prompt_embeds if image_scale is None else torch.cat([prompt_embeds, prompt_embeds[:1]])

    pipe.scheduler.set_timesteps(steps, device=device)
    timesteps = pipe.scheduler.timesteps
    n_latent, pad = latent_frames(pipe, num_frames)

    # the image latent first (it draws from the generator), then the initial noise
    pixels = image_to_tensor(pipe, fitted.image, height, width, device, prompt_embeds.dtype)
    pixels = _intervene(interventions, "image.pixels", pixels, None, None, False)
    trace.add("image.pixels", pixels)
    z_img = encode_pixels(pipe, pixels, n_latent, generator=generator, dtype=prompt_embeds.dtype)
    image_in = torch.cat([z_img] * 2) if do_cfg else z_img  # the same z_img in both CFG halves
    image_in = _intervene(interventions, "z_img", image_in, None, None, do_cfg)
    z_img = image_in.chunk(2)[1] if do_cfg else image_in  # the conditional half is "the" z_img
    trace.add("z_img", z_img)
    shape = (1, n_latent, tr_cfg.in_channels // 2, height // pipe.vae_scale_factor_spatial,
             width // pipe.vae_scale_factor_spatial)
    z_t = randn_tensor(shape, generator=generator, device=device, dtype=prompt_embeds.dtype)
    z_t = z_t * pipe.scheduler.init_noise_sigma

    image_channels = torch.arange(z_t.shape[2], 2 * z_t.shape[2], device=device)
    rotary = (pipe._prepare_rotary_positional_embeddings(height, width, n_latent, device)
              if tr_cfg.use_rotary_positional_embeddings else None)
    ofs = None if tr_cfg.ofs_embed_dim is None else z_t.new_full((1,), fill_value=2.0)
    extra = pipe.prepare_extra_step_kwargs(generator, 0.0)
    old_pred_original = None
    is_dpm = isinstance(pipe.scheduler, CogVideoXDPMScheduler)

    p = pipe.transformer.config.patch_size
    tokens_per_frame = (shape[3] // p) * (shape[4] // p)
    recorder = (record_attention(pipe, attention_layers, tokens_per_frame) if attention_layers
                else contextlib.nullcontext({}))
    with recorder as attention:
        for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="cogviz.generate")):
            z_t = _intervene(interventions, f"step/{i}/z_t", z_t, i, t, False)
            trace.add(f"step/{i}/z_t", z_t)
            model_in = torch.cat([z_t] * 2) if do_cfg else z_t
            model_in = pipe.scheduler.scale_model_input(model_in, t)
            x = concat_condition(model_in, image_in)  # (2B, F, 32, h, w): 16 noise + 16 image channels
            x = _intervene(interventions, f"step/{i}/input", x, i, t, do_cfg)
            if image_scale is not None:  # (2B + 1 or B + 1, F, 32, h, w): the image-free branch last
                x = torch.cat([x, x[:1].clone().index_fill_(2, image_channels, 0)])
            trace.add(f"step/{i}/input", x)
            pred = pipe.transformer(hidden_states=x, encoder_hidden_states=embeds_in,
                                    timestep=t.expand(x.shape[0]), ofs=ofs, image_rotary_emb=rotary,
                                    return_dict=False)[0].float()
            for layer, proc in attention.items():
                trace.tensors[f"step/{i}/attention/{layer}"] = proc.last
            w = guidance
            if dynamic_cfg:
                w = 1 + guidance * ((1 - math.cos(math.pi * ((steps - t.item()) / steps) ** 5.0)) / 2)
            if image_scale is not None:
                pred, free = pred[:-1], pred[-1:]
            image_branch = pred[:1]  # e(neg, img) under CFG, else e(txt, img)
            if do_cfg:
                uncond, cond = pred.chunk(2)
                pred = uncond + w * (cond - uncond)
            if image_scale is not None:  # e(., ∅) + s_img (e(., img) - e(., ∅)) + [text guidance]
                pred = pred + (image_scale - 1.0) * (image_branch - free)
            pred = _intervene(interventions, f"step/{i}/pred", pred, i, t, False)
            trace.add(f"step/{i}/pred", pred)
            z_in = z_t
            if is_dpm:
                z_t, old_pred_original = pipe.scheduler.step(pred, old_pred_original, t,
                                                             timesteps[i - 1] if i > 0 else None, z_t,
                                                             **extra, return_dict=False)
            else:
                z_t = pipe.scheduler.step(pred, t, z_t, **extra, return_dict=False)[0]
            z_t = z_t.to(prompt_embeds.dtype)
            if callback is not None:
                callback(StepInfo(i, len(timesteps), int(t), z_t, _x0(pipe.scheduler, z_in, pred, t)))

    trace.add("latents.final", z_t)
    if not decode_video:
        return Generation(None, fitted, z_img, prompt_embeds, trace)
    video = decode_latents(pipe, z_t, drop=pad)[0]  # (F', H, W, 3) in [0, 1]
    frames = (video.float().cpu().numpy() * 255).round().astype(np.uint8)
    trace.add("frames", frames)
    return Generation(frames, fitted, z_img, prompt_embeds, trace)

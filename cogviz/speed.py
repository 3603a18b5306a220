"""Speed presets: diffusers' and PyTorch's own mechanisms, wired onto a loaded pipeline.

``load_pipeline(..., speed=...)`` takes one name or a list. Each preset is a mechanism that
diffusers or PyTorch already provides; cogviz only chooses settings, checks that they fit
together, and keeps what it records honest about them::

    | preset | mechanism | quality cost |
    |---|---|---|
    | ``compile`` | ``torch.compile`` of each repeated transformer block (regional compilation: diffusers' ``compile_repeated_blocks`` where the model declares its blocks, else each ``CogVideoXBlock.compile()``) | none beyond kernel rounding; the first call pays the compile time |
    | ``fused`` | ``transformer.fuse_qkv_projections()`` (one matmul for q, k, v) | none beyond rounding |
    | ``cache_fbc`` | diffusers ``FirstBlockCacheConfig(threshold=0.05)``: when the first block's output barely changes, every later block reuses its last residual | steps are skipped adaptively; small drift |
    | ``cache_pab`` | diffusers ``PyramidAttentionBroadcastConfig``: self-attention outputs reused every other step for timesteps 100-800 | attention reused; small drift |
    | ``cache_faster`` | diffusers ``FasterCacheConfig``: attention reuse plus an approximated unconditional branch | the most drift of the caches; CFG's unconditional half is estimated on some steps |
    | ``cache_taylorseer`` | diffusers ``TaylorSeerCacheConfig``: each block's attention and feed-forward outputs extrapolated (first-order Taylor) between full steps every 5 | extrapolated steps; drift grows with the interval |
    | ``int8`` / ``fp8`` | torchao ``quantize_`` with int8 / float8 weight-only configs (fp8 needs a GPU of compute capability >= 8.9) | weight rounding; measured as frame PSNR against the bf16 run |

diffusers 0.42 also has MagCache, which needs magnitude ratios calibrated for a model and a step
count (it ships none for CogVideoX), so it is not offered as a preset.

**Recording stays honest.** With a cache preset some steps reuse earlier work: the trace's
``meta["step_status"]`` says, per step, whether the transformer's attention ran in every block
(``"computed"``), in none (``"reused"``) or in some (``"partial"``; e.g. a First Block Cache hit
runs the first block and reuses the rest) — counted from the attention processors that actually
ran, not predicted from the settings. Interventions or ablations that
change what the transformer reads or computes (``z_img``, ``step/{i}/input``, ``step/{i}/z_t``,
``image.pixels``, ``step/{i}/block/{l}/hidden``: ``patch_activations`` among them; attention
edits such as ``attention_knockout``) raise :class:`~cogviz.errors.SpeedPresetError` under a
cache preset (a reused step would ignore them), as does recording block outputs (a reused block
records nothing); patterns are matched against the call's point names, wildcards included. The
attention recorder refuses any cache preset and ``fused`` (it reads attention that they bypass or
replace).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from .errors import SpeedPresetError, names_in

__all__ = ["SPEED_OPTIONS", "CACHE_PRESETS", "apply_speed", "speed_of", "cache_preset",
           "check_recordable", "check_hooks", "attention_counter"]

SPEED_OPTIONS = ("compile", "fused", "cache_fbc", "cache_pab", "cache_faster", "cache_taylorseer", "int8", "fp8")
CACHE_PRESETS = ("cache_fbc", "cache_pab", "cache_faster", "cache_taylorseer")
#: Points whose change the transformer reads: an intervention on any of them is refused under a cache
#: preset (a reused step would ignore it). Hooks inside the transformer are refused from their own
#: declarations (:func:`check_hooks`).
INPUT_POINTS = ("image.pixels", "z_img", "step/{i}/z_t", "step/{i}/input")


def _speed_list(speed) -> list[str]:
    items = names_in(speed, SPEED_OPTIONS, "speed", SpeedPresetError)
    caches = [s for s in items if s in CACHE_PRESETS]
    if len(caches) > 1:
        raise SpeedPresetError(f"speed={speed!r}: choose one cache preset, not {caches} (diffusers applies one "
                               "cache to a model)")
    if "int8" in items and "fp8" in items:
        raise SpeedPresetError("speed: choose one of 'int8' and 'fp8', not both")
    return items


def speed_of(pipe) -> tuple[str, ...]:
    """The speed presets applied to ``pipe`` (empty when none)."""
    return tuple(getattr(pipe, "cogviz_speed", ()))


def cache_preset(pipe) -> str | None:
    """The cache preset active on ``pipe``, or None."""
    return next((s for s in speed_of(pipe) if s in CACHE_PRESETS), None)


def _cache_config(pipe, name: str):
    import diffusers

    timestep = lambda: pipe.current_timestep  # noqa: E731  (cogviz's loop sets it each step, as diffusers' does)
    if name == "cache_fbc":
        return diffusers.FirstBlockCacheConfig(threshold=0.05)
    if name == "cache_pab":
        return diffusers.PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(100, 800),
            current_timestep_callback=timestep)
    if name == "cache_faster":
        return diffusers.FasterCacheConfig(
            spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(-1, 681),
            low_frequency_weight_update_timestep_range=(99, 641),
            high_frequency_weight_update_timestep_range=(-1, 301), spatial_attention_block_identifiers=["transformer_blocks"],
            attention_weight_callback=lambda _: 0.3, tensor_format="BFCHW", is_guidance_distilled=False,
            current_timestep_callback=timestep)
    # diffusers' default patterns ("^transformer_blocks.*attn", matched whole) miss CogVideoX's "attn1":
    # name its attention and feed-forward modules explicitly.
    return diffusers.TaylorSeerCacheConfig(cache_interval=5, disable_cache_before_step=3, max_order=1,
                                           cache_identifiers=[r"transformer_blocks\.\d+\.attn1",
                                                              r"transformer_blocks\.\d+\.ff"])


def _quantize(pipe, name: str) -> None:
    try:
        from torchao.quantization import quantize_
    except ImportError:
        raise SpeedPresetError(f"speed={name!r} quantizes the transformer with torchao, which is not installed: "
                               "pip install 'cogviz[speed]' (torchao, a build matching your torch)") from None
    device = next(pipe.transformer.parameters()).device
    if name == "fp8":
        if device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 9):
            raise SpeedPresetError("speed='fp8' needs a CUDA GPU of compute capability >= 8.9 (Ada, Hopper or "
                                   "newer); use 'int8' elsewhere")
        from torchao.quantization import Float8WeightOnlyConfig as Config
    else:
        from torchao.quantization import Int8WeightOnlyConfig as Config
    quantize_(pipe.transformer, Config())


def _compile(pipe, compile_kwargs: dict) -> None:
    tr = pipe.transformer
    if getattr(tr, "_repeated_blocks", None):
        tr.compile_repeated_blocks(**compile_kwargs)
    else:  # the same regional compilation, for models that do not declare their repeated blocks
        for block in tr.transformer_blocks:
            block.compile(**compile_kwargs)


def apply_speed(pipe, speed: str | Iterable[str] | None, *, compile_kwargs: dict | None = None) -> tuple[str, ...]:
    """Apply speed presets to a loaded pipeline, in a fixed order (quantize, fuse, cache, compile).

    ``compile_kwargs`` go to ``torch.compile`` (default: ``fullgraph=False``, inductor). Returns the
    presets now active (also ``pipe.cogviz_speed``).
    """
    items = _speed_list(speed)
    if not items:
        return speed_of(pipe)
    if speed_of(pipe):
        raise SpeedPresetError(f"this pipeline already has speed presets {speed_of(pipe)}; load it again to change them")
    for q in ("int8", "fp8"):
        if q in items:
            _quantize(pipe, q)
    if "fused" in items:
        pipe.transformer.fuse_qkv_projections()
    cache = next((s for s in items if s in CACHE_PRESETS), None)
    if cache is not None:
        pipe.transformer.enable_cache(_cache_config(pipe, cache))
    if "compile" in items:
        _compile(pipe, dict(compile_kwargs or {}))
    pipe.cogviz_speed = tuple(s for s in SPEED_OPTIONS if s in items)
    return pipe.cogviz_speed


def _matching(patterns: Iterable[str], templates: tuple[str, ...], steps: int, blocks: int) -> list[str]:
    """The point names of ``templates`` (for ``steps`` and ``blocks``) that some pattern matches:
    patterns are matched as the sampler matches them (wildcards included), never by substring."""
    import fnmatch

    from .points import _expand

    names = [n for t in templates for n in _expand(t, steps, blocks, [])]
    patterns = list(patterns)
    return sorted({n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)})


def check_recordable(pipe, *, names: Iterable[str] = (), steps: int = 1) -> None:
    """Raise :class:`SpeedPresetError` when interventions on the transformer's inputs (``names``:
    intervention points, patterns too) would be ignored under the pipeline's cache preset. What
    happens inside the transformer is checked from the hooks' declarations (:func:`check_hooks`)."""
    cache = cache_preset(pipe)
    if cache:
        touched = _matching(names, INPUT_POINTS, steps, len(pipe.transformer.transformer_blocks))
        if touched:
            shown = touched[:3] + (["..."] if len(touched) > 3 else [])
            raise SpeedPresetError(f"interventions or ablations on {shown} change what the transformer reads, but "
                                   f"speed={cache!r} reuses work from earlier steps, which would ignore them; load "
                                   "the pipeline without a cache preset (interventions on step/{i}/pred still work)")


def check_hooks(pipe, hooks) -> None:
    """The speed policy for hooks inside the transformer (:mod:`cogviz.hooks`), from what each declares:
    under a cache preset a hook that writes would be skipped on reused steps and one that records
    would miss them; a hook that reads the attention weights cannot see through ``fused``'s kernel."""
    cache = cache_preset(pipe)
    for h in hooks:
        if cache and (h.writes or h.records):
            what = "change" if h.writes else "record"
            raise SpeedPresetError(f"{h.name} would {what} what blocks {_blocks(h.layers)} compute, but "
                                   f"speed={cache!r} reuses that work from earlier steps (a reused step would "
                                   f"{'ignore the change' if h.writes else 'record nothing'}); load the pipeline "
                                   "without a cache preset")
        if h.reads == "attention" and h.records and "fused" in speed_of(pipe):
            raise SpeedPresetError(f"{h.name} reads each block's attention, which speed='fused' replaces with a "
                                   "fused kernel; load the pipeline without it to record attention")


def _blocks(layers) -> str:
    layers = list(layers)
    return str(layers) if len(layers) <= 4 else f"[{layers[0]}, ..., {layers[-1]}]"


class _CountingProcessor:
    """Delegates to an attention processor and counts its calls (the attention that actually ran)."""

    def __init__(self, inner, counter: list):
        self.inner, self.counter = inner, counter

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        self.counter[0] += 1
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask=attention_mask,
                          image_rotary_emb=image_rotary_emb)


def attention_counter(pipe, counter: list):
    """A hook (:mod:`cogviz.hooks`) that counts, in ``counter[0]``, the transformer's attention calls:
    how a call under a cache preset tells computed steps from reused ones."""
    from .hooks import Hook

    return Hook("the attention counter", "attention", tuple(range(len(pipe.transformer.transformer_blocks))),
                lambda layer, inner: _CountingProcessor(inner, counter), wraps=True)

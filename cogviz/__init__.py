"""cogviz: see, run and test the image conditioning of CogVideoX image-to-video.

The public names, in the order of the data flow (each step is one module)::

    1 prepare      load_image -> fit_image (FittedImage, FitReport)           image, fit, presets
    2 encode       load_pipeline, encode_image -> z_img, decode                models, encode, family
    3 concatenate  concat_condition(z_t, z_img): 16 + 16 channels              condition
    4 generate     generate / generate_variants -> Generation (frames, Trace)  experiment, sampler, points
                   Settings, Intervention at named points (NAMES)
    5 ablate       ablations as data: ZeroImage, SwapImage, ... from_dict      ablations
    6 measure      anchor_metrics, summarize, half_life                        metrics
    7 sweep        sweep -> SweepResult (durable, local or Ray)                sweep
    8 inside       block_map, map_picture; word_map, concept_map, head_table, argmax_flow; belief_*   anchor_map, readmaps, belief
    views          viz (pictures), video (show/save), widgets (ImageFitter, GenerateUI, LatentExplorer, AblationLab)
    teaching       lessons (exercise checks), samples (load_sample, sample_path, SAMPLES), the small random
                   models (tiny_random_pipeline, full_size_random_pipeline); the toy's scenes: cogviz.toy

The lessons import only these names (and :mod:`cogviz.toy`); ``tests/test_teaching.py`` holds them to it.

``import cogviz`` stays light: torch, diffusers and the rest load when a name that needs them is
first used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    AblationError,
    CogvizError,
    FetchError,
    FitError,
    ImageLoadError,
    ImageTooLargeError,
    ModelLoadError,
    PointError,
    PresetError,
)
from .fit import FitReport, FitSource, FittedImage, fit_image
from .image import load_image
from .presets import PRESETS, Preset, best_size, get_preset

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time these load on first use
    from . import ablations, lessons, sweep, video, viz, widgets
    from .ablations import from_dict
    from .analysis import PCABasis, channel_stats, contribution_maps, patch_embed_split
    from .anchor_map import block_map, map_picture
    from .belief import belief_curve, belief_frames, belief_strip, belief_table, decided_at
    from .condition import concat_condition
    from .effects import paired_effects, seeds_needed
    from .encode import decode, decode_latents, encode_image, latent_frames
    from .experiment import generate, generate_variants
    from .family import FAMILIES, Family, family_of
    from .flow import global_motion
    from .lens import x0_of
    from .metrics import anchor_metrics, half_life, psnr, summarize
    from .models import load_pipeline
    from .points import NAMES, Intervention, Trace
    from .preview import rgb_map_for
    from .readmaps import argmax_flow, concept_map, head_table, word_map
    from .sampler import Generation, Settings
    from .samples import SAMPLES, load_sample, sample_path
    from .sweep import SweepResult
    from .testing import full_size_random_pipeline, tiny_random_pipeline

__version__ = "0.1.0"


def _quiet_torchao_import_notes() -> None:
    """torchao (the ``int8``/``fp8`` speed presets), when installed, is imported by diffusers with
    any model class, and on a CPU-only torch it logs that its CUDA kernels cannot load, plus torch
    deprecation notes it triggers. None of that is about cogviz's work: these exact notes are
    filtered from those loggers; everything else they log still shows."""
    import logging

    notes = ("Failed to load", "register_constant() on Enum subclasses", "Unable to import `torchao` Tensor")

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            msg = record.getMessage()
            return not any(n in msg for n in notes)

    for name in ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer"):
        logging.getLogger(name).addFilter(_Filter())


_quiet_torchao_import_notes()
__all__ = [
    # 1 prepare
    "load_image", "fit_image", "FitSource", "FittedImage", "FitReport", "Preset", "PRESETS", "get_preset", "best_size",
    # 2 encode
    "load_pipeline", "encode_image", "decode", "Family", "FAMILIES", "family_of",
    # 3 concatenate
    "concat_condition",
    # 4 generate
    "generate", "generate_variants", "Settings", "Generation", "Trace", "Intervention", "NAMES",
    # 5 ablate
    "ablations", "from_dict",
    # 6 measure
    "anchor_metrics", "summarize", "half_life", "psnr", "global_motion", "paired_effects", "seeds_needed",
    # 7 sweep (cogviz.sweep.sweep runs one)
    "sweep", "SweepResult",
    # 8 inside
    "block_map", "map_picture", "word_map", "concept_map", "head_table", "argmax_flow", "x0_of",
    "belief_curve", "belief_frames", "belief_strip", "belief_table", "decided_at",
    # views
    "viz", "video", "widgets", "latent_frames", "decode_latents", "PCABasis", "channel_stats",
    "contribution_maps", "patch_embed_split", "rgb_map_for",
    # teaching
    "lessons", "SAMPLES", "load_sample", "sample_path", "tiny_random_pipeline", "full_size_random_pipeline",
    # errors
    "CogvizError", "ImageLoadError", "FetchError", "ImageTooLargeError", "FitError", "PresetError",
    "ModelLoadError", "AblationError", "PointError",
]

#: where each lazily loaded public name lives (torch and diffusers load only when one is used)
_LAZY = {
    "load_pipeline": "models", "encode_image": "encode", "decode": "encode",
    "Family": "family", "FAMILIES": "family", "family_of": "family", "concat_condition": "condition",
    "generate": "experiment", "generate_variants": "experiment", "Settings": "sampler", "Generation": "sampler",
    "Trace": "points", "Intervention": "points", "NAMES": "points", "from_dict": "ablations",
    "anchor_metrics": "metrics", "summarize": "metrics", "half_life": "metrics",
    "SweepResult": "sweep",
    "psnr": "metrics", "global_motion": "flow", "paired_effects": "effects", "seeds_needed": "effects",
    "block_map": "anchor_map", "map_picture": "anchor_map", "word_map": "readmaps", "concept_map": "readmaps",
    "head_table": "readmaps", "argmax_flow": "readmaps", "x0_of": "lens",
    **{name: "belief" for name in ("belief_curve", "belief_frames", "belief_strip", "belief_table", "decided_at")},
    "latent_frames": "encode", "decode_latents": "encode", "PCABasis": "analysis", "channel_stats": "analysis",
    "contribution_maps": "analysis", "patch_embed_split": "analysis", "rgb_map_for": "preview",
    "SAMPLES": "samples", "load_sample": "samples", "sample_path": "samples",
    "tiny_random_pipeline": "testing", "full_size_random_pipeline": "testing",
}
_MODULES = ("ablations", "sweep", "viz", "video", "widgets", "lessons")


def __getattr__(name):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'cogviz' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

"""Loading pipelines: the embedded toy model, a local folder, or a hub checkpoint, one code path.

Every model is a plain diffusers ``CogVideoXImageToVideoPipeline``; cogviz adds device and dtype
choices and maps ``memory=`` onto diffusers' own memory mechanisms (it reimplements none of them).
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

import torch

from .errors import ModelLoadError, names_in
from .presets import MEMORY_OPTIONS, PRESETS, Preset

__all__ = ["TOY_DIR", "MEMORY_OPTIONS", "load_pipeline", "apply_memory", "auto_device", "max_sequence_length", "preset_for", "fps_of"]

TOY_DIR = Path(__file__).parent / "toy" / "weights"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")  # "owner/name"; anything else is a path
_OFFLOADS = tuple(m for m in MEMORY_OPTIONS if m.endswith("_offload"))  # one of them at a time


def auto_device() -> torch.device:
    """cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def max_sequence_length(pipe) -> int:
    """The text length the transformer was built for (226 for the real models, 16 for the toy)."""
    return int(pipe.transformer.config.max_text_seq_length)


def preset_for(pipe) -> Preset:
    """The preset whose rules apply to ``pipe`` (by architecture: toy, 1.0 at 480x720, or 1.5)."""
    from .family import family_of

    cfg = pipe.transformer.config
    if family_of(pipe).name == "1.5":
        return PRESETS["CogVideoX1.5-5B-I2V"]
    if cfg.sample_height * 8 == PRESETS["cogviz-toy"].height and cfg.sample_width * 8 == PRESETS["cogviz-toy"].width:
        return PRESETS["cogviz-toy"]
    return PRESETS["CogVideoX-5b-I2V"]


def fps_of(pipe) -> int:
    """The frame rate the model's family was trained at (8 for CogVideoX 1.0 and the toy, 16 for 1.5):
    what videos are saved and motion is measured at."""
    return int(preset_for(pipe).fps)


def _memory_list(memory) -> list[str]:
    items = names_in(memory, MEMORY_OPTIONS, "memory", ModelLoadError)
    offloads = [m for m in items if m in _OFFLOADS]
    if len(offloads) > 1:
        raise ModelLoadError(f"memory: choose one of {_OFFLOADS}, not {offloads}")
    return items


@contextlib.contextmanager
def _quiet_loading(keep_warnings: bool = False):
    """No per-component loading bars or hub warnings (diffusers', transformers'), restored afterwards;
    with ``keep_warnings`` diffusers' warnings (e.g. "Defaulting to unsafe serialization") stay."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    was = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    level = dlog.get_verbosity()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    if not keep_warnings:
        dlog.set_verbosity_error()  # "couldn't connect to the Hub": cogviz's own error says it better
    try:
        yield
    finally:
        dlog.set_verbosity(level)
        if was[0]:
            dlog.enable_progress_bar()
        if was[1]:
            tlog.enable_progress_bar()


def load_pipeline(
    model: str | os.PathLike = "toy",
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    memory: str | Iterable[str] | None = None,
    speed: str | Iterable[str] | None = None,
    compile_kwargs: dict | None = None,
    revision: str | None = None,
    use_safetensors: bool = True,
):
    """Load a CogVideoX image-to-video pipeline.

    Args:
        model: ``"toy"`` (the embedded model shipped in the package), a local pipeline folder, or a
            hub id such as ``"THUDM/CogVideoX-5b-I2V"`` / ``"THUDM/CogVideoX1.5-5B-I2V"``. A name
            that starts with ``./``, ``../``, ``/`` or ``~``, or whose first part is a folder here,
            is a path: when it is missing that is an error, never a hub request for a repository
            of that name.
        device: default: cuda, then mps, then cpu.
        dtype: default: bfloat16 for the 5B models on a GPU, float32 otherwise (and for the toy).
        memory: any of ``"model_offload"`` (``enable_model_cpu_offload``), ``"sequential_offload"``
            (``enable_sequential_cpu_offload``), ``"group_offload"`` (the transformer's
            ``enable_group_offload``, one block per group, transfers on a CUDA stream overlapped with
            compute; the other components stay on the GPU), ``"vae_tiling"``, ``"vae_slicing"``:
            diffusers' own mechanisms, wired as they are. Offloading needs a GPU.
        speed: speed presets (:mod:`cogviz.speed`): ``"compile"``, ``"fused"``, one cache preset
            (``"cache_fbc"``, ``"cache_pab"``, ``"cache_faster"``, ``"cache_taylorseer"``),
            ``"int8"`` or ``"fp8"``; each is diffusers' or PyTorch's own mechanism.
        compile_kwargs: passed to ``torch.compile`` by the ``"compile"`` preset.
        revision: the hub revision (a commit hash pins exactly the weights you checked).
        use_safetensors: True (default): only safetensors weights load, never a pickled ``.bin``
            file (whose loading can run code). False lets diffusers fall back to ``.bin`` files, with
            its warning.

    Raises:
        ModelLoadError: missing weights (offline, never downloaded, wrong folder), with how to fix it.
    """
    from .speed import _speed_list, apply_speed

    memory_items = _memory_list(memory)
    _speed_list(speed)  # bad names fail before any loading
    device = torch.device(device) if device is not None else auto_device()
    is_toy = str(model) == "toy"
    if dtype is None:
        dtype = torch.bfloat16 if (device.type == "cuda" and not is_toy) else torch.float32
    if is_toy:
        if not (TOY_DIR / "model_index.json").exists():
            raise ModelLoadError(f"the embedded toy model is missing from {TOY_DIR}; reinstall cogviz, or "
                                 "train it with `python -m cogviz.trainer`")
        source = TOY_DIR
    else:
        source = _source(model)
    # None is diffusers' own default: safetensors where present, else a pickled .bin file
    kwargs = {"use_safetensors": True if use_safetensors else None, **({"revision": revision} if revision else {})}
    try:
        with _quiet_loading(keep_warnings=not use_safetensors):
            from diffusers import CogVideoXImageToVideoPipeline

            pipe = CogVideoXImageToVideoPipeline.from_pretrained(source, dtype=dtype, **kwargs)
    except Exception as e:  # diffusers/hub raise many types; one clear cogviz error instead
        raise _load_error(source, e, use_safetensors) from None
    apply_memory(pipe, memory_items, device)
    if not any(m in _OFFLOADS for m in memory_items):
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    pipe.cogviz_model = "toy" if is_toy else str(model)  # a stable name for results (sweeps), not a path
    # what another process loads (a Ray actor in another working directory): a folder's absolute path
    pipe.cogviz_source = "toy" if is_toy else str(source.resolve() if isinstance(source, Path) else source)
    apply_speed(pipe, speed, compile_kwargs=compile_kwargs)
    return pipe


def _source(model) -> Path | str:
    """A local pipeline folder (a Path) or a hub id (a str), told apart before any hub request."""
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise ModelLoadError(f"{text!r} is a folder but holds no model_index.json: not a diffusers "
                                 "pipeline folder (save one with pipe.save_pretrained(folder))")
        return path
    explicit_path = isinstance(model, os.PathLike) or text.startswith(("/", "~", "."))  # ./x, ../x, /x, ~/x
    first = Path(text.split("/", 1)[0]).expanduser()
    if explicit_path or not _HUB_ID.fullmatch(text) or first.is_dir():
        raise ModelLoadError(f"no pipeline folder at {text!r} (resolved: {str(path.resolve())!r}); "
                             "a hub id looks like 'THUDM/CogVideoX-5b-I2V', a local folder must exist")
    return text


def _load_error(source, e: Exception, use_safetensors: bool) -> ModelLoadError:
    first = (str(e).strip().splitlines() or [""])[0][:300]
    no_st = use_safetensors and "safetensors" in str(e).lower()
    hint = (" It has no safetensors weights: convert them, or pass use_safetensors=False to allow pickled "
            ".bin weights from a source you trust." if no_st else "")
    if isinstance(source, Path):
        return ModelLoadError(f"could not load the pipeline folder {str(source)!r}: {type(e).__name__}: {first}.{hint}")
    return ModelLoadError(
        f"could not load {source!r} ({type(e).__name__}).{hint} Without a hub connection the weights must already "
        f"be on disk: download them once elsewhere, e.g. `huggingface-cli download {source} --local-dir DIR`, "
        "copy DIR here and call load_pipeline(DIR); or set HF_HOME to a cache that holds them. "
        'load_pipeline("toy") runs the embedded model offline.')


def apply_memory(pipe, memory, device) -> None:
    """Wire ``memory`` options (see :func:`load_pipeline`) onto a pipeline built elsewhere."""
    device = torch.device(device)
    for item in _memory_list(memory):
        if item in _OFFLOADS:
            if device.type == "cpu":
                raise ModelLoadError(f"memory={item!r} moves modules between the CPU and a GPU; there is no GPU "
                                     "here (use vae_tiling / vae_slicing, or no memory option)")
            if item == "group_offload":
                for name in ("text_encoder", "vae"):
                    getattr(pipe, name).to(device)
                pipe.transformer.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                                      offload_type="block_level", num_blocks_per_group=1,
                                                      use_stream=True)
                continue
            getattr(pipe, "enable_model_cpu_offload" if item == "model_offload" else "enable_sequential_cpu_offload")(
                device=device)
        elif item == "vae_tiling":
            pipe.vae.enable_tiling()
        elif item == "vae_slicing":
            pipe.vae.enable_slicing()

"""A sweep's identities and plan: content hashes of the model, the image and each run's config
(``run_id``), and the list of runs a sweep makes, checked before any compute."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ablations import Ablation, Baseline, from_dict, label
from ..errors import SweepError

#: results-directory format version, written into the manifest and hashed into every run_id.
#: 2: the model fingerprint hashes the model's name ("toy", a hub id, a folder's name), not the
#: absolute path of its weights, so ids agree between checkouts and cluster nodes. A format-1
#: directory still opens (SweepResult.load reads both) and a sweep into it adds format-2 runs
#: beside its format-1 runs, told apart by their ids.
FORMAT = 2


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def _model_name(pipe) -> str:
    """The model's name as results record it: the name ``load_pipeline`` was given ("toy", a hub id), else
    the weights folder's name. Never an absolute path, so ids agree between checkouts and cluster
    nodes (format 1 hashed the path: see FORMAT)."""
    name = getattr(pipe, "cogviz_model", None)
    if name and not Path(str(name)).is_absolute():
        return str(name)
    return Path(str(getattr(pipe, "name_or_path", "") or pipe.config.get("_name_or_path", "") or name or "")).name


def model_fingerprint(pipe) -> str:
    """The model's id and a fingerprint of its weights: names, shapes, dtypes and a strided sample of
    up to 512 values of every parameter of the transformer, VAE and text encoder. Cheap at any
    size, and changes when any component is retrained or swapped."""
    import torch

    h = hashlib.sha256()
    h.update(_model_name(pipe).encode())
    for name in ("transformer", "vae", "text_encoder"):
        module = getattr(pipe, name, None)
        if module is None:
            continue
        h.update(name.encode())
        for pname, p in module.named_parameters():
            flat = p.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 512)][:512].to("cpu", torch.float32).numpy()
            h.update(f"{pname}{tuple(p.shape)}{p.dtype}".encode())
            h.update(sample.tobytes())
    h.update(type(pipe.scheduler).__name__.encode() + _canonical(dict(pipe.scheduler.config)))
    return h.hexdigest()[:16]


def image_fingerprint(image) -> str:
    """SHA-256 (16 hex digits) of an image's RGB pixels and size: the same picture from a path, a
    URL, bytes or an array gets the same key."""
    img = image.convert("RGB")
    return _sha(f"{img.size}".encode() + img.tobytes())[:16]


def run_id(config: dict) -> str:
    """The content hash that names a run: 20 hex digits of SHA-256 over its canonical JSON config."""
    return _sha(_canonical(config))[:20]


def _variant(v) -> tuple[Ablation, ...]:
    if v is None:
        return ()
    if isinstance(v, (Ablation, dict)):
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise SweepError(f"ablations: each variant is an ablation, its dict, a list of them, or None; "
                         f"got {type(v).__name__}")
    out = tuple(from_dict(a) if isinstance(a, dict) else a for a in v)
    for a in out:
        if not isinstance(a, Ablation):
            raise SweepError(f"ablations: expected Ablation objects or dicts, got {type(a).__name__}")
    return tuple(a for a in out if not isinstance(a, Baseline))


@dataclass(frozen=True)
class Run:
    """One planned run: what it is, and the config its id hashes."""

    run_id: str
    image_index: int
    image_name: str
    prompt: str
    seed: int
    ablations: tuple
    config: dict = field(repr=False)

    @property
    def label(self) -> str:
        return label(self.ablations)


def _image_name(source, index: int) -> str:
    if isinstance(source, (str, os.PathLike)):
        s = str(source)
        if s.lower().startswith(("http://", "https://")):
            from ..image import _safe_url

            return _safe_url(s)  # no query string or user:pass@ in run.json and the runs table
        return Path(s).name
    return f"image{index}"


def plan(pipe, images, prompts, ablations, seeds, *, steps: int = 50, guidance: float = 6.0,
         num_frames: int | None = None, fit: str = "crop", negative_prompt: str = "",
         include_baseline: bool = True, model_id: str | None = None, dynamic_cfg: bool = False,
         size: tuple[int, int] | None = None):
    """Load and fit every image (each once; an item may be a ``(name, image)`` pair, the name recorded), check every setting and ablation, and list the runs —
    before any model compute. Returns ``(runs, fitted_images, settings)``. Raises a
    :class:`CogvizError` on a missing image or a bad ablation. ``settings`` (hashed into every run
    id) names ``dynamic_cfg`` only when it is on, so the ids of sweeps without it stay as they were."""
    from ..family import default_frames
    from ..fit import fit_image
    from ..image import load_image
    from ..sampler import Settings, prepare, resolve_size

    if isinstance(images, (str, os.PathLike)) or not isinstance(images, (list, tuple)):
        images = [images]
    if isinstance(prompts, str):
        prompts = [prompts]
    if isinstance(seeds, int):
        seeds = [seeds]
    for what, items in (("images", images), ("prompts", prompts), ("seeds", seeds)):
        if not items:
            raise SweepError(f"{what} is empty: a sweep needs at least one")
    bad = [s for s in seeds if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0]
    if bad:
        raise SweepError(f"seeds: {bad[0]!r} is not a whole number >= 0")
    variants = [_variant(v) for v in (ablations if isinstance(ablations, (list, tuple)) else [ablations])]
    if include_baseline and () not in variants:
        variants.insert(0, ())
    keys = [json.dumps([a.to_dict() for a in v], sort_keys=True) for v in variants]
    variants = [v for i, v in enumerate(variants) if keys.index(keys[i]) == i]  # drop repeats, keep order

    num_frames = num_frames or default_frames(pipe)
    fitted, names = [], []
    for i, src in enumerate(images):
        if isinstance(src, tuple):  # (name, source): a source loaded already, under the name it came by
            if len(src) != 2 or not isinstance(src[0], str) or not src[0]:
                raise SweepError(f"images[{i}]: a tuple must be (name, image) with a non-empty name; got {src!r:.80}")
            name, src = src
        else:
            name = _image_name(src, i)
        names.append(name)
        img = load_image(src)
        fitted.append(fit_image(img, resolve_size(pipe, None, size), fit))
    height, width = fitted[0].size
    call = Settings(negative_prompt=negative_prompt, num_frames=num_frames, steps=steps, guidance=guidance, fit=fit,
                    dynamic_cfg=bool(dynamic_cfg), size=None if size is None else tuple(size), record=())
    for prompt in prompts:
        setup = prepare(pipe, fitted[0], prompt, call)
    for v in variants:
        for a in v:
            a.check(setup)

    settings = dict(steps=steps, guidance=float(guidance), num_frames=num_frames, fit=fit,
                    negative_prompt=negative_prompt, height=height, width=width)
    if dynamic_cfg:
        settings["dynamic_cfg"] = True
    model = {"id": model_id or _model_name(pipe) or "pipeline", "fingerprint": model_fingerprint(pipe)}
    image_keys = [image_fingerprint(f.image) for f in fitted]
    runs = []
    for i, name in enumerate(names):
        for prompt in prompts:
            for seed in seeds:
                for v in variants:
                    config = {"format": FORMAT, "model": model, "image": image_keys[i], "prompt": prompt,
                              "seed": int(seed), "settings": settings, "ablations": [a.to_dict() for a in v]}
                    runs.append(Run(run_id(config), i, name, prompt, int(seed), v, config))
    return runs, fitted, settings

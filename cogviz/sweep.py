"""Step 6 of the flow: sweeps — many controlled runs, batched, persisted as they finish, resumable.

A sweep is the product ``images x prompts x seeds x variants`` (a variant is one ablation, a
list of ablations applied in order, or none: the baseline). The variants of one (image, prompt,
seed) are one :func:`cogviz.sampler.generate_variants` call; each run gets
:func:`cogviz.metrics.anchor_metrics`.

**Controlled.** Every variant of one (image, prompt, seed) shares the initial noise and the
posterior draw of ``z_img`` (pixel-space ablations are encoded with the generator in the same
state; random ablations use their own seed). Differences between variants are the ablations' doing.

**Cheap.** Each prompt is encoded once per sweep, each image once per (image, seed), and the
variants' rows go through the transformer together, as many per forward as fit the device's
memory (``batch="auto"``; an int sets it). Batched rows equal separate runs up to float rounding
(toy: latents within 1e-4, frames within 2/255, per-frame metrics within the tolerances
``tests/test_sweep.py`` states).

**Durable.** ``out_dir`` holds ``manifest.json`` (the sweep's settings) and ``runs/<run_id>/``
per finished run: ``frames.parquet`` (per-frame metrics, pyarrow), ``video.mp4``, optionally
``latents.safetensors``, and ``run.json`` (its configuration, summary and the SHA-256 of each
file). A run is built in a temporary folder and renamed into place when complete, so a SIGKILL
loses at most the runs in flight (the variants of one batched generation); a file whose hash no
longer matches is detected and the run redone. ``run_id`` is a content hash of the model (id +
weights fingerprint), the image's pixels, the prompt, the seed, the settings and the ablations:
a re-run skips what is done, and a changed configuration gets new ids — old rows are kept and
told apart, never overwritten. Nothing is pickled.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ablations import Ablation, Baseline, from_dict, label
from .errors import CogvizError

__all__ = ["sweep", "SweepResult", "plan", "load_config", "model_fingerprint", "image_fingerprint", "run_id",
           "SweepError"]

FORMAT = 1  #: results-directory format version, written into the manifest


class SweepError(CogvizError):
    """A bad sweep configuration or results directory."""


# -- identities -------------------------------------------------------------------------------
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def model_fingerprint(pipe) -> str:
    """The model's id and a fingerprint of its weights: names, shapes, dtypes and a strided sample of
    up to 512 values of every parameter of the transformer, VAE and text encoder. Cheap at any
    size, and changes when any component is retrained or swapped."""
    import torch

    h = hashlib.sha256()
    h.update(str(getattr(pipe, "name_or_path", "") or pipe.config.get("_name_or_path", "")).encode())
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


# -- the plan ---------------------------------------------------------------------------------
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
        return s if s.startswith(("http://", "https://")) else Path(s).name
    return f"image{index}"


def plan(pipe, images, prompts, ablations, seeds, *, steps: int = 50, guidance: float = 6.0,
         num_frames: int | None = None, fit: str = "crop", negative_prompt: str = "",
         include_baseline: bool = True, model_id: str | None = None):
    """Load and fit every image, check every setting and ablation, and list the runs — before any
    model compute. Returns ``(runs, fitted_images, settings)``. Raises a :class:`CogvizError` on a
    missing image or a bad ablation."""
    from .fit import fit_image
    from .image import load_image
    from .sampler import Settings, prepare, resolve_size

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

    num_frames = num_frames or pipe.transformer.config.sample_frames
    fitted, names = [], []
    for i, src in enumerate(images):
        names.append(_image_name(src, i))
        img = load_image(src)
        fitted.append(fit_image(img, resolve_size(pipe, None, None), fit))
    height, width = fitted[0].size
    call = Settings(negative_prompt=negative_prompt, num_frames=num_frames, steps=steps, guidance=guidance, fit=fit,
                    record=())
    for prompt in prompts:
        setup = prepare(pipe, fitted[0], prompt, call)
    for v in variants:
        for a in v:
            a.check(setup)

    settings = dict(steps=steps, guidance=float(guidance), num_frames=num_frames, fit=fit,
                    negative_prompt=negative_prompt, height=height, width=width)
    model = {"id": model_id or getattr(pipe, "cogviz_model", None) or Path(str(getattr(pipe, "name_or_path", "")
                                                                                   or "pipeline")).name,
             "fingerprint": model_fingerprint(pipe)}
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


# -- writing one run atomically ---------------------------------------------------------------
def _file_entry(path: Path) -> dict:
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": _sha(path.read_bytes())}


def _valid(run_dir: Path) -> dict | None:
    """The run's record when every file it lists is present and unchanged, else None."""
    try:
        record = json.loads((run_dir / "run.json").read_text())
        for f in record["files"]:
            p = run_dir / f["name"]
            if p.stat().st_size != f["bytes"] or _sha(p.read_bytes()) != f["sha256"]:
                return None
        return record
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_run(out_dir: Path, run: Run, g, *, metrics: bool, save_latents: bool, fps: float) -> dict:
    from . import video
    from .metrics import anchor_metrics, summarize

    runs_dir = out_dir / "runs"
    tmp = runs_dir / f".{run.run_id}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir(parents=True)
    files = []
    summary = {}
    if metrics:
        df = anchor_metrics(g.frames, g.fitted)
        summary = {k: (bool(v) if k == "dynamic" else float(v)) for k, v in summarize(df, fps=fps).items()}
        df.insert(0, "run_id", run.run_id)
        df.to_parquet(tmp / "frames.parquet", index=False)
        files.append(tmp / "frames.parquet")
    video.save(g.frames, tmp / "video.mp4", fps=fps)
    files.append(tmp / "video.mp4")
    if save_latents:
        from safetensors.torch import save_file

        save_file({"z_img": g.z_img.contiguous().cpu(), "latents.final": g.trace["latents.final"].contiguous()},
                  str(tmp / "latents.safetensors"))
        files.append(tmp / "latents.safetensors")
    record = {"run_id": run.run_id, "config": run.config, "image_name": run.image_name, "label": run.label,
              "summary": summary, "frames": int(len(g.frames)), "finished": time.time(),
              "files": [_file_entry(p) for p in files]}
    (tmp / "run.json").write_text(json.dumps(record, indent=1))
    final = runs_dir / run.run_id
    if final.exists():  # a corrupt earlier copy: replace it
        shutil.rmtree(final)
    os.replace(tmp, final)  # atomic: the run appears whole or not at all
    return record


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "manifest.json"
    sweeps = []
    if path.exists():
        try:
            sweeps = json.loads(path.read_text()).get("sweeps", [])
        except ValueError:
            sweeps = []
    if manifest not in sweeps:
        sweeps.append(manifest)
    tmp = path.with_name(f".manifest.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "sweeps": sweeps}, indent=1))
    os.replace(tmp, path)


# -- the sweep --------------------------------------------------------------------------------
def sweep(pipe, images, prompts, ablations, seeds, *, out_dir, steps: int = 50, guidance: float = 6.0,
          num_frames: int | None = None, fit: str = "crop", negative_prompt: str = "", metrics: bool = True,
          save_latents: bool = False, include_baseline: bool = True, backend: str = "local",
          progress: bool = True, model_id: str | None = None, fps: float = 8.0, batch="auto",
          callback=None, ray_options: dict | None = None) -> SweepResult:
    """Run ``images x prompts x seeds x ablations`` (plus the baseline), writing each run into
    ``out_dir`` as it finishes; runs already there (same content hash, files intact) are skipped.

    ``ablations``: a list of variants — an :class:`~cogviz.ablations.Ablation`, its dict, a list of
    them (applied in order) or None. Everything is checked (images loaded and fitted, prompts,
    settings, ablations against the size and steps) before any model compute or any write.
    Returns a :class:`SweepResult` over *this* sweep's runs (``SweepResult.load(out_dir)`` reads
    every run in the folder).

    ``callback(done, total)``: called after each run is written (and once at the start, with the
    runs already there), e.g. to drive a widget's progress bar.

    ``batch``: variants per transformer forward, ``"auto"`` (as many as fit half the device's free
    memory, :func:`cogviz.sampler.variants_per_forward`) or an int (1: one variant at a time).

    ``backend="ray"`` fans the missing runs out to Ray actors, one pipeline each (loaded by the
    name ``load_pipeline`` was given; its weights fingerprint must match the driver's), each
    writing its runs atomically into ``out_dir`` — shared storage on a cluster. ``ray_options``:
    ``address`` (passed to ``ray.init`` when Ray is not yet initialised; None starts a local
    Ray), ``num_actors`` (default: as many as the cluster's GPUs allow, else 2), ``num_gpus`` per
    actor (fractions allowed; default 1 on a cluster with GPUs, else 0), ``num_cpus`` per actor
    (default 1), ``max_retries`` per run (default 3), ``memory`` (the actors' ``load_pipeline`` memory
    options). An actor that dies is replaced and its unwritten runs redone.
    """
    from tqdm.auto import tqdm

    if backend not in ("local", "ray"):
        raise SweepError(f"backend={backend!r}: expected 'local' (this process) or 'ray' (Ray actors)")
    if backend == "ray" and not getattr(pipe, "cogviz_model", None):
        raise SweepError("backend='ray': actors load the model by name, so pass a pipeline from "
                         "cogviz.load_pipeline(name or folder)")
    runs, fitted, settings = plan(pipe, images, prompts, ablations, seeds, steps=steps, guidance=guidance,
                                  num_frames=num_frames, fit=fit, negative_prompt=negative_prompt,
                                  include_baseline=include_baseline, model_id=model_id)
    out_dir = Path(out_dir)
    _write_manifest(out_dir, {"settings": settings, "model": runs[0].config["model"],
                              "run_ids": [r.run_id for r in runs]})
    for stale in (out_dir / "runs").glob(".*.tmp"):  # runs in flight when an earlier sweep died
        shutil.rmtree(stale, ignore_errors=True)
    todo = [r for r in runs if _valid(out_dir / "runs" / r.run_id) is None]
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), disable=not progress, desc="cogviz.sweep",
               unit="run")
    job = dict(settings=settings, metrics=metrics, save_latents=save_latents, fps=fps, out_dir=str(out_dir),
               batch=batch)
    groups = _groups(todo)
    done = [len(runs) - len(todo)]

    def advance(n: int = 1) -> None:  # n more runs written: the bar and the caller's callback
        bar.update(n)
        done[0] += n
        if callback is not None:
            callback(done[0], len(runs))

    if callback is not None:
        callback(done[0], len(runs))
    with bar:
        if backend == "ray":
            _run_on_ray(pipe, groups, fitted, job, advance, **(ray_options or {}))
        else:
            text_cache = {}
            for group in groups:
                _run_group(pipe, [_as_dict(r) for r in group], fitted[group[0].image_index], job,
                           done=lambda _: advance(), text_cache=text_cache)
    return SweepResult.load(out_dir, run_ids=[r.run_id for r in runs])


def _groups(todo: list[Run]) -> list[list[Run]]:
    """The runs to do, grouped by (image, prompt, seed): one batched generation each."""
    groups: dict[tuple, list[Run]] = {}
    for r in todo:
        groups.setdefault((r.image_index, r.prompt, r.seed), []).append(r)
    return list(groups.values())


def _as_dict(r: Run) -> dict:
    return {"run_id": r.run_id, "image_name": r.image_name, "config": r.config}


def _run_group(pipe, run_dicts: list[dict], fitted, job: dict, *, done=None, text_cache=None) -> list[str]:
    """Generate the variants of one (image, prompt, seed) together and write each run: the local
    loop and the Ray actors both call this."""
    from .experiment import generate_variants
    from .sampler import Settings

    s = job["settings"]
    runs = [Run(d["run_id"], 0, d["image_name"], d["config"]["prompt"], d["config"]["seed"],
                tuple(from_dict(a) for a in d["config"]["ablations"]), d["config"]) for d in run_dicts]
    settings = Settings(negative_prompt=s["negative_prompt"], num_frames=s["num_frames"], steps=s["steps"],
                        guidance=s["guidance"], seed=runs[0].seed, fit=s["fit"],
                        record=("latents.final",) if job["save_latents"] else ())
    gens = generate_variants(pipe, fitted, runs[0].prompt, [list(r.ablations) for r in runs], settings=settings,
                             progress=False, batch=job["batch"], text_cache=text_cache)
    for run, g in zip(runs, gens):
        _write_run(Path(job["out_dir"]), run, g, metrics=job["metrics"], save_latents=job["save_latents"],
                   fps=job["fps"])
        if done is not None:
            done(run.run_id)
    return [r.run_id for r in runs]


# -- the Ray backend ---------------------------------------------------------------------------
class _SweepActor:
    """One pipeline per actor; groups of runs (one (image, prompt, seed) each) arrive one at a time."""

    def __init__(self, model: str, fingerprint: str, threads: int, memory=None):
        import torch

        from .models import load_pipeline

        torch.set_num_threads(max(1, threads))
        self.pipe = load_pipeline(model, memory=memory)
        self.text_cache = {}
        mine = model_fingerprint(self.pipe)
        if mine != fingerprint:
            raise SweepError(f"the actor's {model!r} has weights fingerprint {mine}, the driver's {fingerprint}: "
                             "give every node the same weights")

    def run(self, run_dicts: list[dict], fitted, job: dict) -> list[str]:
        return _run_group(self.pipe, run_dicts, fitted, job, text_cache=self.text_cache)


def _run_on_ray(pipe, groups, fitted, job, advance, *, address=None, num_actors=None, num_gpus=None, num_cpus=1,
                max_retries=3, memory=None):
    try:
        import ray
        from ray.exceptions import RayActorError
    except ImportError:
        raise SweepError("backend='ray' needs Ray: pip install 'cogviz[cluster]'") from None
    if not groups:
        return
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0)
    if num_gpus is None:
        num_gpus = 1 if gpus else 0
    if num_actors is None:
        num_actors = int(gpus // num_gpus) if num_gpus else 2
    # more groups than actors keeps every actor busy: split large groups when there are few
    while len(groups) < num_actors and max(len(g) for g in groups) > 1:
        big = max(groups, key=len)
        groups.remove(big)
        groups += [big[: len(big) // 2], big[len(big) // 2:]]
    num_actors = max(1, min(num_actors, len(groups)))
    model, fingerprint = pipe.cogviz_model, model_fingerprint(pipe)
    Actor = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(_SweepActor)

    def spawn():
        return Actor.remote(model, fingerprint, max(1, int(num_cpus)), memory)

    images = [ray.put(f) for f in fitted]
    pending = [(g, 0) for g in groups]
    actors = [spawn() for _ in range(num_actors)]
    in_flight = {}

    def submit(actor):
        group, tries = pending.pop(0)
        ref = actor.run.remote([_as_dict(r) for r in group], images[group[0].image_index], job)
        in_flight[ref] = (actor, group, tries)

    for actor in actors:
        if pending:
            submit(actor)
    try:
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            actor, group, tries = in_flight.pop(ready[0])
            try:
                ray.get(ready[0])
                advance(len(group))
            except RayActorError:  # the actor died (killed, node lost): replace it, redo what it lost
                if tries + 1 > max_retries:
                    raise SweepError(f"runs {', '.join(r.run_id for r in group)} lost their actor {tries + 1} "
                                     "times; giving up") from None
                actor = spawn()
                lost = [r for r in group if _valid(Path(job["out_dir"]) / "runs" / r.run_id) is None]
                advance(len(group) - len(lost))
                if lost:
                    pending.insert(0, (lost, tries + 1))
            if pending:
                submit(actor)
    finally:
        for ref in in_flight:
            ray.cancel(ref, force=True)


# -- configuration files ---------------------------------------------------------------------
CONFIG_KEYS = {"model": str, "images": list, "prompts": list, "seeds": list, "ablations": list, "steps": int,
               "guidance": (int, float), "num_frames": int, "fit": str, "negative_prompt": str, "metrics": bool,
               "save_latents": bool, "include_baseline": bool}
REQUIRED = ("images", "prompts")


def load_config(path) -> dict:
    """A sweep configuration from a JSON or YAML file: ``images`` (paths or URLs, relative paths taken
    from the file's folder), ``prompts``, ``seeds`` (default [0]), ``ablations`` (a list of variants:
    an ablation dict or a list of them), ``model`` (default "toy") and the settings ``steps``,
    ``guidance``, ``num_frames``, ``fit``, ``negative_prompt``, ``metrics``, ``save_latents``,
    ``include_baseline``. Every key and type is checked; the error names the key, the value and
    what is accepted."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SweepError(f"config {str(path)!r}: cannot read it ({e.strerror})") from None
    try:
        if path.suffix.lower() in (".yml", ".yaml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # yaml and json raise their own types
        raise SweepError(f"config {str(path)!r}: not valid {'YAML' if path.suffix.lower() in ('.yml', '.yaml') else 'JSON'} "
                         f"({str(e).splitlines()[0][:120]})") from None
    if not isinstance(data, dict):
        raise SweepError(f"config {str(path)!r}: expected a mapping of keys ({', '.join(CONFIG_KEYS)}), "
                         f"got {type(data).__name__}")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise SweepError(f"config key {unknown[0]!r}: unknown; accepted keys: {', '.join(CONFIG_KEYS)}")
    for key in REQUIRED:
        if key not in data:
            raise SweepError(f"config key {key!r}: missing; a sweep needs {' and '.join(REQUIRED)}")
    for key, value in data.items():
        want = CONFIG_KEYS[key]
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            names = {str: "text", list: "a list", int: "a whole number", bool: "true or false",
                     (int, float): "a number"}[want]
            raise SweepError(f"config key {key!r}: {value!r} is {type(value).__name__}; expected {names}")
    for v in data.get("ablations", []):
        _variant(v)  # a bad ablation fails here, before any model loads
    for i, p in enumerate(data["images"]):
        if not isinstance(p, str):
            raise SweepError(f"config key 'images'[{i}]: {p!r}; expected a path or an http(s) URL")
        if not p.startswith(("http://", "https://")) and not Path(p).is_absolute():
            data["images"][i] = str((path.parent / p).resolve())
    return data


# -- reading results --------------------------------------------------------------------------
def _flatten(ablations: list[dict]) -> dict:
    cols = {}
    for a in ablations:
        for k, v in a.items():
            if k != "kind":
                cols[f"{a['kind']}.{k}"] = json.dumps(v) if isinstance(v, (dict, list)) else v
    return cols


class SweepResult:
    """The runs of a results directory: ``.runs`` (one row per run) and ``.frames`` (one row per run x
    frame, with the per-frame metrics). Opens without a model."""

    def __init__(self, out_dir: Path, records: list[dict]):
        import pandas as pd

        self.out_dir = Path(out_dir)
        rows, frames = [], []
        for rec in records:
            c = rec["config"]
            run_dir = self.out_dir / "runs" / rec["run_id"]
            row = {"run_id": rec["run_id"], "image": rec["image_name"], "image_sha": c["image"],
                   "prompt": c["prompt"], "seed": c["seed"], "label": rec["label"],
                   "ablations": json.dumps(c["ablations"]), **_flatten(c["ablations"]), **rec["summary"],
                   "steps": c["settings"]["steps"], "guidance": c["settings"]["guidance"],
                   "model": c["model"]["id"], "model_fingerprint": c["model"]["fingerprint"],
                   "video": str(run_dir / "video.mp4")}
            names = {f["name"] for f in rec["files"]}
            row["metrics"] = str(run_dir / "frames.parquet") if "frames.parquet" in names else None
            row["latents"] = str(run_dir / "latents.safetensors") if "latents.safetensors" in names else None
            rows.append(row)
            if row["metrics"]:
                df = pd.read_parquet(row["metrics"])
                df["label"] = rec["label"]
                frames.append(df)
        self.runs = pd.DataFrame(rows)
        self.frames = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @classmethod
    def load(cls, out_dir, *, run_ids=None) -> SweepResult:
        """Every intact run in ``out_dir`` (or only ``run_ids``), finished or from a partial sweep."""
        out_dir = Path(out_dir)
        if not (out_dir / "manifest.json").exists():
            raise SweepError(f"{str(out_dir)!r} is not a sweep results directory (no manifest.json)")
        dirs = ([out_dir / "runs" / r for r in run_ids] if run_ids is not None
                else sorted(p for p in (out_dir / "runs").glob("*") if not p.name.startswith(".")))
        records = [rec for rec in (_valid(d) for d in dirs) if rec is not None]
        records.sort(key=lambda r: r["finished"])
        return cls(out_dir, records)

    def __len__(self) -> int:
        return len(self.runs)

    def __repr__(self) -> str:
        return f"<SweepResult {len(self)} runs in {str(self.out_dir)!r}>"

    def plot_decay(self, metric: str = "ssim", *, title: str | None = None):
        """The anchor-decay curves of every ablation (mean over images, prompts and seeds)."""
        from . import viz

        return viz.anchor_decay(self.frames, metric, by="label", title=title)

    def plot_tradeoff(self, *, title: str | None = None):
        """The fidelity-motion plane: each run a point, each ablation's mean ringed."""
        from . import viz

        return viz.fidelity_motion(self.runs, by="label", title=title)

    def video(self, run_id: str) -> np.ndarray:
        """The frames of one run, read back from its mp4 (uint8 (F, H, W, 3))."""
        from .video import load

        row = self.runs.set_index("run_id").loc[run_id]
        return load(row["video"])

    def grid(self, *, image: str | None = None, prompt: str | None = None, seed: int | None = None,
             labels=None) -> np.ndarray:
        """Baseline and variants of one (image, prompt, seed) side by side, as one titled video
        (``cogviz.video.show`` plays it); the first image / prompt / seed when not given."""
        from .video import grid

        df = self.runs
        first = df.iloc[0]
        df = df[(df["image"] == (image or first["image"])) & (df["prompt"] == (prompt or first["prompt"]))
                & (df["seed"] == (first["seed"] if seed is None else seed))]
        if labels is not None:
            df = df[df["label"].isin(labels)]
        if df.empty:
            raise SweepError(f"no runs for image={image!r}, prompt={prompt!r}, seed={seed!r}, labels={labels!r}")
        return grid({row.label: self.video(row.run_id) for row in df.itertuples()})

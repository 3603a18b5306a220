"""The sweep itself: plan, skip what is done, run the rest locally or on Ray, return the results."""
from __future__ import annotations

from pathlib import Path

from ..errors import SweepError
from .identity import plan
from .local import _groups, run_locally
from .on_ray import _run_on_ray
from .results import SweepResult
from .store import _valid, _write_manifest, check_run, clean_stale


def sweep(pipe, images, prompts, ablations, seeds, *, out_dir, steps: int = 50, guidance: float = 6.0,
          num_frames: int | None = None, fit: str = "crop", negative_prompt: str = "", metrics: bool = True,
          save_latents: bool = False, include_baseline: bool = True, backend: str = "local",
          progress: bool = True, model_id: str | None = None, fps: float | None = None, batch="auto",
          callback=None, ray_options: dict | None = None, max_record_bytes: int | None = None,
          dynamic_cfg: bool = False, size: tuple[int, int] | None = None) -> SweepResult:
    """Run ``images x prompts x seeds x ablations`` (plus the baseline), writing each run into
    ``out_dir`` as it finishes; runs already there (same content hash, files intact) are skipped.

    ``ablations``: a list of variants — an :class:`~cogviz.ablations.Ablation`, its dict, a list of
    them (applied in order) or None. Everything is checked (images loaded and fitted, prompts,
    settings, ablations against the size and steps) before any model compute or any write.
    Returns a :class:`SweepResult` over *this* sweep's runs (``SweepResult.load(out_dir)`` reads
    every run in the folder).

    ``max_record_bytes``: what each generation may record to CPU memory; ``dynamic_cfg`` and ``size``:
    as in :class:`~cogviz.Settings` (every field a sweep's runs can differ by is a keyword here).

    Each run's metrics and files are written by a background thread as soon as its video is decoded,
    while later videos decode and the next group computes (:class:`~cogviz.sweep.local.BackgroundWriter`:
    at most one earlier group waits; runs are placed whole, so a SIGKILL loses only the groups in flight).

    ``callback(done, total)``: called after each run is written (and once at the start, with the runs
    already there), e.g. to drive a widget's progress bar.

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

    _check_backend(pipe, backend, ray_options)
    runs, fitted, settings = plan(pipe, images, prompts, ablations, seeds, steps=steps, guidance=guidance,
                                  num_frames=num_frames, fit=fit, negative_prompt=negative_prompt,
                                  include_baseline=include_baseline, model_id=model_id, dynamic_cfg=dynamic_cfg,
                                  size=size)
    if backend == "ray":  # joined (or refused, in seconds) before anything is written
        from .on_ray import connect

        connect((ray_options or {}).get("address"))
    from ..models import fps_of

    fps = fps_of(pipe) if fps is None else fps  # the family's own rate (16 for 1.5): videos, motion threshold
    out_dir = Path(out_dir).expanduser().resolve()  # actors on other nodes (and other cwds) read the same path
    _write_manifest(out_dir, {"settings": settings, "model": runs[0].config["model"],
                              "run_ids": [r.run_id for r in runs]})
    clean_stale(out_dir)  # runs in flight when an earlier sweep died; a live writer's are kept
    records = _found(out_dir, runs)  # run_id -> its record: each run's files hashed once, found or written
    todo = [r for r in runs if r.run_id not in records]
    bar = tqdm(total=len(runs), initial=len(records), disable=not progress, desc="cogviz.sweep", unit="run")
    job = dict(settings=_call_settings(settings, size, max_record_bytes), metrics=metrics, save_latents=save_latents,
               fps=fps, out_dir=str(out_dir), batch=batch)
    done = [len(records)]

    def advance(n: int = 1) -> None:  # n more runs written: the bar and the caller's callback
        bar.update(n)
        done[0] += n
        if callback is not None:
            callback(done[0], len(runs))

    def landed(recs: list[dict]) -> None:
        records.update((rec["run_id"], rec) for rec in recs if rec.get("run_id"))
        advance(len(recs))

    if callback is not None:
        callback(done[0], len(runs))
    with bar:
        if backend == "ray":
            _run_on_ray(pipe, _groups(todo), fitted, job, advance, **(ray_options or {}))
        else:
            run_locally(pipe, _groups(todo), fitted, job, lambda g: _still_missing(out_dir, g, landed), landed)
    return _complete(out_dir, runs, records)


def _check_backend(pipe, backend: str, ray_options) -> None:
    if backend not in ("local", "ray"):
        raise SweepError(f"backend={backend!r}: expected 'local' (this process) or 'ray' (Ray actors)")
    if backend == "ray" and not getattr(pipe, "cogviz_model", None):
        raise SweepError("backend='ray': actors load the model by name, so pass a pipeline from "
                         "cogviz.load_pipeline(name or folder)")
    if backend == "ray":  # a wrong address fails in seconds, before any planning
        from .on_ray import check_address

        check_address((ray_options or {}).get("address"))


def _found(out_dir: Path, runs) -> dict:
    """The records of the runs already intact in ``out_dir`` (their files hashed, once)."""
    records = {}
    for r in runs:
        rec = _valid(out_dir / "runs" / r.run_id)
        if rec is not None:
            records[r.run_id] = rec
    return records


def _call_settings(settings: dict, size, max_record_bytes):
    """The sweep's :class:`~cogviz.Settings` (the seed set per group), built once from the plan."""
    from ..plan import Settings

    return Settings(negative_prompt=settings["negative_prompt"], num_frames=settings["num_frames"],
                    steps=settings["steps"], guidance=settings["guidance"], fit=settings["fit"],
                    dynamic_cfg=settings.get("dynamic_cfg", False), size=None if size is None else tuple(size),
                    record=(), max_record_bytes=max_record_bytes)


def _complete(out_dir: Path, runs, records: dict) -> SweepResult:
    """The sweep's runs, from the records found or written (runs an actor wrote are read here, once);
    one missing is an error naming it, never a short result."""
    for r in runs:  # a record whose folder is not where this machine looks is read again (not trusted)
        if r.run_id not in records or not (out_dir / "runs" / r.run_id / "run.json").is_file():
            records.pop(r.run_id, None)
            rec, why = check_run(out_dir / "runs" / r.run_id)
            if why:
                raise SweepError(f"{out_dir / 'runs' / r.run_id / 'run.json'} is not a cogviz run record ({why})")
            if rec is not None:
                records[r.run_id] = rec
    missing = [r.run_id for r in runs if r.run_id not in records]
    if missing:
        raise SweepError(f"{len(missing)} of {len(runs)} runs are not in {out_dir} after the sweep "
                         f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); were they written to "
                         "storage this machine does not see? Sweep again to redo them")
    return SweepResult(out_dir, sorted((records[r.run_id] for r in runs), key=lambda rec: rec["finished"]))


def _still_missing(out_dir: Path, group, landed) -> list:
    """The runs of ``group`` not yet in ``out_dir`` (a second writer may have finished some: their
    records are reported through ``landed``)."""
    todo, theirs = [], []
    for r in group:
        rec = _valid(out_dir / "runs" / r.run_id)
        (todo.append(r) if rec is None else theirs.append(rec))
    if theirs:
        landed(theirs)
    return todo

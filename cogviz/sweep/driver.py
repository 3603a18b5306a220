"""The sweep itself: plan, skip what is done, run the rest locally or on Ray, return the results."""
from __future__ import annotations

from pathlib import Path

from ..errors import SweepError
from .identity import plan
from .local import _as_dict, _groups, _run_group
from .on_ray import _run_on_ray
from .results import SweepResult
from .store import _valid, _write_manifest, clean_stale


def sweep(pipe, images, prompts, ablations, seeds, *, out_dir, steps: int = 50, guidance: float = 6.0,
          num_frames: int | None = None, fit: str = "crop", negative_prompt: str = "", metrics: bool = True,
          save_latents: bool = False, include_baseline: bool = True, backend: str = "local",
          progress: bool = True, model_id: str | None = None, fps: float | None = None, batch="auto",
          callback=None, ray_options: dict | None = None, max_record_bytes: int | None = None) -> SweepResult:
    """Run ``images x prompts x seeds x ablations`` (plus the baseline), writing each run into
    ``out_dir`` as it finishes; runs already there (same content hash, files intact) are skipped.

    ``ablations``: a list of variants — an :class:`~cogviz.ablations.Ablation`, its dict, a list of
    them (applied in order) or None. Everything is checked (images loaded and fitted, prompts,
    settings, ablations against the size and steps) before any model compute or any write.
    Returns a :class:`SweepResult` over *this* sweep's runs (``SweepResult.load(out_dir)`` reads
    every run in the folder).

    ``max_record_bytes``: what each generation may record to CPU memory (see :class:`~cogviz.Settings`).

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
    if backend == "ray":  # a wrong address fails in seconds, before any planning
        from .on_ray import check_address

        check_address((ray_options or {}).get("address"))
    runs, fitted, settings = plan(pipe, images, prompts, ablations, seeds, steps=steps, guidance=guidance,
                                  num_frames=num_frames, fit=fit, negative_prompt=negative_prompt,
                                  include_baseline=include_baseline, model_id=model_id)
    if backend == "ray":  # joined (or refused, in seconds) before anything is written
        from .on_ray import connect

        connect((ray_options or {}).get("address"))
    if fps is None:  # the family's own rate (16 for CogVideoX 1.5), for the videos and the motion threshold
        from ..models import fps_of

        fps = fps_of(pipe)
    out_dir = Path(out_dir).expanduser().resolve()  # actors on other nodes (and other cwds) read the same path
    _write_manifest(out_dir, {"settings": settings, "model": runs[0].config["model"],
                              "run_ids": [r.run_id for r in runs]})
    clean_stale(out_dir)  # runs in flight when an earlier sweep died; a live writer's are kept
    todo = [r for r in runs if _valid(out_dir / "runs" / r.run_id) is None]
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), disable=not progress, desc="cogviz.sweep",
               unit="run")
    job = dict(settings=settings, metrics=metrics, save_latents=save_latents, fps=fps, out_dir=str(out_dir),
               batch=batch, max_record_bytes=max_record_bytes)
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
            _run_locally(pipe, groups, fitted, job, advance)
    return _complete(out_dir, runs)


def _run_locally(pipe, groups, fitted, job: dict, advance) -> None:
    text_cache = {}
    for group in groups:
        group = _still_missing(Path(job["out_dir"]), group, advance)  # another writer may have done some since
        if group:
            _run_group(pipe, [_as_dict(r) for r in group], fitted[group[0].image_index], job,
                       done=lambda _: advance(), text_cache=text_cache)


def _complete(out_dir: Path, runs) -> SweepResult:
    """The sweep's runs read back; one missing is an error naming it, never a short result."""
    result = SweepResult.load(out_dir, run_ids=[r.run_id for r in runs])
    if len(result) < len(runs):
        got = set(result.runs["run_id"]) if len(result) else set()
        missing = [r.run_id for r in runs if r.run_id not in got]
        raise SweepError(f"{len(missing)} of {len(runs)} runs are not in {out_dir} after the sweep "
                         f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); were they written to "
                         "storage this machine does not see? Sweep again to redo them")
    return result


def _still_missing(out_dir: Path, group, advance) -> list:
    """The runs of ``group`` not yet in ``out_dir`` (a second writer may have finished some)."""
    todo = [r for r in group if _valid(out_dir / "runs" / r.run_id) is None]
    if len(todo) < len(group):
        advance(len(group) - len(todo))
    return todo

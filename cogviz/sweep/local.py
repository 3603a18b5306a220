"""The local executor: the variants of one (image, prompt, seed) generated together, each run written
as it finishes. The Ray actors call the same function."""
from __future__ import annotations

from pathlib import Path

from ..ablations import from_dict
from .identity import Run
from .store import _write_run


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
    from ..experiment import generate_variants
    from ..sampler import Settings

    s = job["settings"]
    runs = [Run(d["run_id"], 0, d["image_name"], d["config"]["prompt"], d["config"]["seed"],
                tuple(from_dict(a) for a in d["config"]["ablations"]), d["config"]) for d in run_dicts]
    settings = Settings(negative_prompt=s["negative_prompt"], num_frames=s["num_frames"], steps=s["steps"],
                        guidance=s["guidance"], seed=runs[0].seed, fit=s["fit"],
                        record=("latents.final",) if job["save_latents"] else (),
                        max_record_bytes=job.get("max_record_bytes"))
    gens = generate_variants(pipe, fitted, runs[0].prompt, [list(r.ablations) for r in runs], settings=settings,
                             progress=False, batch=job["batch"], text_cache=text_cache)
    for run, g in zip(runs, gens):
        _write_run(Path(job["out_dir"]), run, g, metrics=job["metrics"], save_latents=job["save_latents"],
                   fps=job["fps"])
        if done is not None:
            done(run.run_id)
    return [r.run_id for r in runs]

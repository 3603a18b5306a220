"""The Ray executor: actors that each load the pipeline by name and run groups of runs, replaced
when they die; results go to shared storage through the same atomic writes."""
from __future__ import annotations

from pathlib import Path

from ..errors import SweepError
from .identity import model_fingerprint
from .local import _as_dict, _run_group
from .store import _valid


class _SweepActor:
    """One pipeline per actor; groups of runs (one (image, prompt, seed) each) arrive one at a time."""

    def __init__(self, model: str, fingerprint: str, threads: int, memory=None):
        import torch

        from ..models import load_pipeline

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

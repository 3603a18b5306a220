"""The local executor: the variants of one (image, prompt, seed) generated together, each run written
as it finishes — by a bounded background writer, so that one group's metrics, video and files are
written while the next group computes. The Ray actors call the same compute and write functions.

**Exactly once, still.** The writer builds each run in a temporary folder and renames it into
place, as before; it holds at most :data:`WRITE_AHEAD` computed groups, so a SIGKILL loses at most
the group being computed and those waiting to be written, never a placed run. An error or an
interruption in the driver (Ctrl-C, a callback that raises) waits for the groups already computed
to be written, then propagates: computed work is not thrown away.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..ablations import from_dict
from .identity import Run
from .store import _write_run

#: computed groups that may wait for the background writer before the next compute waits for it
WRITE_AHEAD = 1


def _groups(todo: list[Run]) -> list[list[Run]]:
    """The runs to do, grouped by (image, prompt, seed): one batched generation each."""
    groups: dict[tuple, list[Run]] = {}
    for r in todo:
        groups.setdefault((r.image_index, r.prompt, r.seed), []).append(r)
    return list(groups.values())


def _as_dict(r: Run) -> dict:
    """A run as plain data, for the Ray boundary (the one place runs become dicts)."""
    return {"run_id": r.run_id, "image_name": r.image_name, "config": r.config}


def _from_dict(d: dict) -> Run:
    c = d["config"]
    return Run(d["run_id"], 0, d["image_name"], c["prompt"], c["seed"], tuple(from_dict(a) for a in c["ablations"]), c)


def _compute_group(pipe, runs: list[Run], fitted, job: dict, *, text_cache=None) -> list:
    """The variants of one (image, prompt, seed), generated together: one Generation per run."""
    from ..experiment import generate_variants

    settings = job["settings"].replace(seed=runs[0].seed, record=("latents.final",) if job["save_latents"] else ())
    return generate_variants(pipe, fitted, runs[0].prompt, [list(r.ablations) for r in runs], settings=settings,
                             progress=False, batch=job["batch"], text_cache=text_cache)


def _write_group(runs: list[Run], gens: list, job: dict) -> list[dict]:
    """Measure and write each run of a computed group; its records, in order."""
    return [_write_run(Path(job["out_dir"]), run, g, metrics=job["metrics"], save_latents=job["save_latents"],
                       fps=job["fps"]) for run, g in zip(runs, gens)]


def _run_group(pipe, run_dicts: list[dict], fitted, job: dict, *, text_cache=None) -> list[str]:
    """Compute and write one group (a Ray actor's task: its runs arrive as dicts)."""
    runs = [_from_dict(d) for d in run_dicts]
    return [rec["run_id"] for rec in _write_group(runs, _compute_group(pipe, runs, fitted, job, text_cache=text_cache),
                                                  job)]


class BackgroundWriter:
    """One thread that writes computed groups while the caller computes the next; at most
    ``ahead`` groups wait. ``done(records)`` runs in the caller's thread as each group lands, in
    order, so progress callbacks (and an exception they raise) stay in the caller's thread."""

    def __init__(self, job: dict, done, ahead: int = WRITE_AHEAD):
        self.job, self.done, self.ahead = job, done, ahead
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="cogviz-writer")
        self.pending: deque[Future] = deque()

    def submit(self, runs: list[Run], gens: list) -> None:
        while len(self.pending) >= self.ahead:
            self.done(self.pending.popleft().result())
        self.pending.append(self.pool.submit(_write_group, runs, gens, self.job))

    def drain(self) -> None:
        """Every waiting group written and reported; the first error raised."""
        while self.pending:
            self.done(self.pending.popleft().result())

    def close(self) -> None:
        """After an error in the caller: let the computed groups land (their errors are not the one
        being raised), then stop the thread."""
        for f in self.pending:
            f.exception()
        self.pending.clear()
        self.pool.shutdown(wait=True)


def run_locally(pipe, groups: list[list[Run]], fitted, job: dict, still_missing, done) -> None:
    """Compute each group and hand it to a :class:`BackgroundWriter`; ``still_missing(group)`` drops
    runs another writer finished meanwhile; ``done(records)`` reports each written group."""
    text_cache: dict = {}
    writer = BackgroundWriter(job, done)
    try:
        for group in groups:
            group = still_missing(group)
            if group:
                writer.submit(group, _compute_group(pipe, group, fitted[group[0].image_index], job,
                                                    text_cache=text_cache))
        writer.drain()
    finally:
        writer.close()

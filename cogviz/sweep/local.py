"""The local executor: the variants of one (image, prompt, seed) generated together, each run written
as soon as its video is decoded — by a bounded background writer, so that a run's metrics, video
and files are written while the group's later videos decode and the next group computes. The Ray
actors call the same compute and write functions.

**Exactly once, still.** The writer builds each run in a temporary folder and renames it into
place, as before; when a group starts computing, at most :data:`WRITE_AHEAD` earlier groups may
still be waiting to be written, so a SIGKILL loses at most the group being computed and those
waiting, never a placed run. An error or an interruption in the driver (Ctrl-C, a callback that
raises) waits for the runs already handed to the writer to be written, then propagates: computed
work is not thrown away.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
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


def _compute_group(pipe, runs: list[Run], fitted, job: dict, *, text_cache=None, on_video=None) -> list:
    """The variants of one (image, prompt, seed), generated together: one Generation per run;
    ``on_video(i, generation)`` as each run's video is decoded."""
    from ..experiment import generate_variants

    settings = job["settings"].replace(seed=runs[0].seed, record=("latents.final",) if job["save_latents"] else ())
    return generate_variants(pipe, fitted, runs[0].prompt, [list(r.ablations) for r in runs], settings=settings,
                             progress=False, batch=job["batch"], text_cache=text_cache, on_video=on_video)


def _write_one(run: Run, g, job: dict) -> dict:
    """Measure and write one computed run; its record."""
    return _write_run(Path(job["out_dir"]), run, g, metrics=job["metrics"], save_latents=job["save_latents"],
                      fps=job["fps"])


def _write_group(runs: list[Run], gens: list, job: dict) -> list[dict]:
    """Measure and write each run of a computed group; its records, in order."""
    return [_write_one(run, g, job) for run, g in zip(runs, gens)]


def _run_group(pipe, run_dicts: list[dict], fitted, job: dict, *, text_cache=None) -> list[str]:
    """Compute and write one group (a Ray actor's task: its runs arrive as dicts)."""
    runs = [_from_dict(d) for d in run_dicts]
    return [rec["run_id"] for rec in _write_group(runs, _compute_group(pipe, runs, fitted, job, text_cache=text_cache),
                                                  job)]


class BackgroundWriter:
    """One thread that writes each run as its video is decoded, while the caller decodes the group's
    other videos and computes the next group; when a group starts, at most ``ahead`` earlier groups
    wait. ``done(records)`` runs in the caller's thread as each group lands, in order, so progress
    callbacks (and an exception they raise) stay in the caller's thread."""

    def __init__(self, job: dict, done, ahead: int = WRITE_AHEAD):
        self.job, self.done, self.ahead = job, done, ahead
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="cogviz-writer")
        self.pending: deque[list] = deque()  # per group, its runs' futures (None: not handed over yet)

    def _land_oldest(self) -> None:
        self.done([f.result() for f in self.pending.popleft()])

    def start(self, runs: list[Run]):
        """Before ``runs`` compute: the groups beyond ``ahead`` landed; returns ``write(i, generation)``,
        which hands the ``i``-th run to the writer thread."""
        while len(self.pending) > self.ahead:
            self._land_oldest()
        futures: list = [None] * len(runs)
        self.pending.append(futures)

        def write(i: int, g) -> None:
            futures[i] = self.pool.submit(_write_one, runs[i], g, self.job)

        return write

    def finish(self, runs: list[Run], gens: list) -> None:
        """After ``runs`` computed: any run whose video was not handed over as it decoded, handed over."""
        futures = self.pending[-1]
        for i, g in enumerate(gens):
            if futures[i] is None:
                futures[i] = self.pool.submit(_write_one, runs[i], g, self.job)
        if None in futures:
            raise RuntimeError(f"{futures.count(None)} of a group's runs computed no generation")

    def drain(self) -> None:
        """Every waiting group written and reported; the first error raised."""
        while self.pending:
            self._land_oldest()

    def close(self) -> None:
        """After an error in the caller: let the runs already handed over land (their errors are not
        the one being raised), then stop the thread."""
        for futures in self.pending:
            for f in futures:
                if f is not None:
                    f.exception()
        self.pending.clear()
        self.pool.shutdown(wait=True)


def run_locally(pipe, groups: list[list[Run]], fitted, job: dict, still_missing, done) -> None:
    """Compute each group, its runs handed to a :class:`BackgroundWriter` as their videos decode;
    ``still_missing(group)`` drops runs another writer finished meanwhile; ``done(records)`` reports
    each written group."""
    text_cache: dict = {}
    writer = BackgroundWriter(job, done)
    try:
        for group in groups:
            group = still_missing(group)
            if group:
                write = writer.start(group)
                writer.finish(group, _compute_group(pipe, group, fitted[group[0].image_index], job,
                                                    text_cache=text_cache, on_video=write))
        writer.drain()
    finally:
        writer.close()

"""A results directory read back: one row per run and one per run x frame (pandas), with plots."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import SweepError
from .identity import run_id as _content_id
from .store import check_run

#: what a run is paired on: its whole configuration but the ablations (model, image, prompt, seed,
#: settings), so a variant meets the baseline of the same everything else
PAIR = "pair"


def _flatten(ablations: list[dict]) -> dict:
    cols = {}
    for a in ablations:
        for k, v in a.items():
            if k != "kind":
                cols[f"{a['kind']}.{k}"] = json.dumps(v) if isinstance(v, (dict, list)) else v
    return cols


def _frames(tables: list, labels: list[str]):
    """The runs' per-frame tables as one DataFrame, with each row's run label: the Arrow tables
    joined first and converted once (a run without a later metric's column gets nulls, NaN)."""
    import pandas as pd
    import pyarrow as pa

    if not tables:
        return pd.DataFrame()
    frames = pa.concat_tables(tables, promote_options="default").to_pandas()
    frames["label"] = labels
    return frames


class SweepResult:
    """The runs of a results directory: ``.runs`` (one row per run) and ``.frames`` (one row per run x
    frame, with the per-frame metrics). Opens without a model."""

    def __init__(self, out_dir: Path, records: list[dict]):
        import pandas as pd
        import pyarrow.parquet as pq

        self.out_dir = Path(out_dir)
        self.rounds: list[dict] = []  # sweep_until's rounds: seeds, runs and widest half-width of each
        rows, tables, labels = [], [], []
        for rec in records:
            c = rec["config"]
            run_dir = self.out_dir / "runs" / rec["run_id"]
            row = {"run_id": rec["run_id"], "image": rec["image_name"], "image_sha": c["image"],
                   "prompt": c["prompt"], "seed": c["seed"], "label": rec["label"],
                   "ablations": json.dumps(c["ablations"]), **_flatten(c["ablations"]), **rec["summary"],
                   "steps": c["settings"]["steps"], "guidance": c["settings"]["guidance"],
                   "model": c["model"]["id"], "model_fingerprint": c["model"]["fingerprint"],
                   PAIR: _content_id({k: v for k, v in c.items() if k != "ablations"}),
                   "video": str(run_dir / "video.mp4")}
            names = {f["name"] for f in rec["files"]}
            row["metrics"] = str(run_dir / "frames.parquet") if "frames.parquet" in names else None
            row["latents"] = str(run_dir / "latents.safetensors") if "latents.safetensors" in names else None
            rows.append(row)
            if row["metrics"]:
                tables.append(pq.read_table(row["metrics"]))
                labels += [rec["label"]] * tables[-1].num_rows
        self.runs = pd.DataFrame(rows)
        self.frames = _frames(tables, labels)

    @classmethod
    def load(cls, out_dir, *, run_ids=None) -> SweepResult:
        """Every intact run in ``out_dir`` (or only ``run_ids``), finished or from a partial sweep."""
        import re

        from .store import read_manifest

        out_dir = Path(out_dir)
        if not (out_dir / "manifest.json").is_file():
            raise SweepError(f"{str(out_dir)!r} is not a sweep results directory (no manifest.json)")
        read_manifest(out_dir)  # a corrupt manifest is reported, not read as an empty one
        bad = [r for r in (run_ids or []) if not (isinstance(r, str) and re.fullmatch(r"[0-9a-f]{8,64}", r))]
        if bad:
            raise SweepError(f"run_ids: {bad[0]!r} is not a run id (the hex names under {out_dir / 'runs'})")
        dirs = ([out_dir / "runs" / r for r in run_ids] if run_ids is not None
                else sorted(p for p in (out_dir / "runs").glob("*") if not p.name.startswith(".")))
        records = []
        for d in dirs:  # each run.json read and each file hashed once
            rec, why = check_run(d)
            if why:
                raise SweepError(f"{d / 'run.json'} is not a cogviz run record ({why}); a results folder from "
                                 "elsewhere may hold only what cogviz writes: remove that run to read the others")
            if rec is not None:
                records.append(rec)
        records.sort(key=lambda r: r["finished"])
        return cls(out_dir, records)

    def __len__(self) -> int:
        return len(self.runs)

    def __repr__(self) -> str:
        return f"<SweepResult {len(self)} runs in {str(self.out_dir)!r}>"

    def summary(self):
        """One row per ablation label: how many runs, and the mean of each summary figure."""
        if not len(self.runs):
            return self.runs
        cols = [c for c in ("frame0_psnr", "mean_ssim", "half_life", "motion") if c in self.runs.columns]
        table = self.runs.groupby("label", sort=False)[cols].mean()
        table.insert(0, "runs", self.runs.groupby("label", sort=False).size())
        return table

    def _repr_html_(self) -> str:
        import html

        head = (f"<b>SweepResult</b>: {len(self)} runs in <code>{html.escape(str(self.out_dir))}</code>"
                + (f", {self.runs['image'].nunique()} image(s), {self.runs['prompt'].nunique()} prompt(s), "
                   f"{self.runs['seed'].nunique()} seed(s)" if len(self) else ""))
        return head + (self.summary().round(3).to_html(border=0) if len(self) else "")

    def effects(self, metric: str = "mean_ssim", *, baseline: str = "baseline", by=(), frames=None,
                confidence: float = 0.95, n_resamples: int = 4000, seed: int = 0):
        """Each variant's paired effect on ``metric`` against ``baseline``, with its confidence interval
        (:func:`cogviz.effects.paired_effects`: pairs share the image, prompt, seed, model and settings;
        the bootstrap resamples within each image). A DataFrame, one row per (``by``..., label).

        ``metric``: a per-run figure (a column of :attr:`runs`: ``mean_ssim``, ``frame0_psnr``,
        ``motion``, ...) or a per-frame metric (``ssim``, ``psnr``, ``palette``, ...: one row per frame, a
        band per frame; a name that is both, like ``palette``, means the per-frame metric; ``frames=`` averages those frames per run first: a list, a ``range``, or ``"later"`` —
        every frame but frame 0). ``by``: columns of :attr:`runs` to split on (e.g. ``"prompt"``)."""
        from ..effects import paired_effects

        table, by = self._effect_table(metric, frames), (by,) if isinstance(by, str) else tuple(by)
        if metric in self._per_frame() and frames is None:
            by = (*by, "frame")
        return paired_effects(table, metric, baseline=baseline, pair=(PAIR,), strata="image", by=by,
                              confidence=confidence, n_resamples=n_resamples, seed=seed)

    def _per_frame(self) -> list[str]:
        from ..metrics import REGISTRY

        return [m for m in REGISTRY if m in self.frames.columns]

    def _effect_table(self, metric: str, frames):
        """The rows :meth:`effects` pairs: the runs table, or the per-frame table joined to it."""
        import difflib

        per_run = [c for c in self.runs.columns if c not in ("run_id", "image", "image_sha", "prompt", "seed", "label",
                                                                "ablations", "video", "metrics", "latents", PAIR)
                   and self.runs[c].dtype.kind in "fb"]
        if not len(self):
            raise SweepError("effects: this result holds no runs")
        if metric not in per_run and metric not in self._per_frame():
            close = difflib.get_close_matches(metric, [*per_run, *self._per_frame()], n=1)
            raise SweepError(f"metric {metric!r} is neither a per-run figure ({', '.join(per_run)}) nor a per-frame "
                             f"metric ({', '.join(self._per_frame())})" + (f"; did you mean {close[0]!r}?" if close else ""))
        if metric in per_run and metric not in self._per_frame():  # a per-frame name ("palette") means the frames
            if frames is not None:
                raise SweepError(f"frames={frames!r} applies to per-frame metrics; {metric!r} is one figure per run")
            return self.runs
        keys = self.runs[["run_id", "image", "prompt", "seed", PAIR]]
        long = self.frames[["run_id", "label", "frame", metric]].merge(keys, on="run_id")
        if frames is None:
            return long
        n = int(long["frame"].max()) + 1
        chosen = list(range(1, n)) if frames == "later" else list(frames) if not isinstance(frames, str) else None
        bad = None if chosen is None else [f for f in chosen if not (isinstance(f, (int, np.integer)) and 0 <= f < n)]
        if chosen is None or bad or not chosen:
            raise SweepError(f"frames={frames!r}: give 'later', a list or a range of frames 0-{n - 1}")
        picked = long[long["frame"].isin(chosen)]
        return picked.groupby(["run_id", "label", "image", "prompt", "seed", PAIR], as_index=False)[metric].mean()

    def plot_effects(self, metric: str = "mean_ssim", *, title: str | None = None, **kwargs):
        """A forest plot of :meth:`effects` (a per-frame metric: the per-frame curves with bands)."""
        from .. import viz

        table = self.effects(metric, **kwargs)
        return viz.effect_curves(table, title=title) if "frame" in table.columns else viz.forest(table, title=title)

    def report(self, path=None, **kwargs):
        """Write one self-contained HTML report (settings, effects with intervals, plots, video grids)
        and return its path: :func:`cogviz.sweep.report.report`, default ``out_dir/report.html``."""
        from .report import report

        return report(self, path, **kwargs)

    def plot_decay(self, metric: str = "ssim", *, title: str | None = None):
        """The anchor-decay curves of every ablation (mean over images, prompts and seeds)."""
        from .. import viz

        return viz.anchor_decay(self.frames, metric, by="label", title=title)

    def plot_tradeoff(self, *, title: str | None = None):
        """The fidelity-motion plane: each run a point, each ablation's mean ringed."""
        from .. import viz

        return viz.fidelity_motion(self.runs, by="label", title=title)

    def video(self, run_id: str) -> np.ndarray:
        """The frames of one run, read back from its mp4 (uint8 (F, H, W, 3))."""
        from ..video import load

        row = self.runs.set_index("run_id").loc[run_id]
        return load(row["video"])

    def grid(self, *, image: str | None = None, prompt: str | None = None, seed: int | None = None,
             labels=None) -> np.ndarray:
        """Baseline and variants of one (image, prompt, seed) side by side, as one titled video
        (``cogviz.video.show`` plays it); the first image / prompt / seed when not given."""
        from ..video import grid

        df = self.runs
        first = df.iloc[0]
        df = df[(df["image"] == (image or first["image"])) & (df["prompt"] == (prompt or first["prompt"]))
                & (df["seed"] == (first["seed"] if seed is None else seed))]
        if labels is not None:
            df = df[df["label"].isin(labels)]
        if df.empty:
            raise SweepError(f"no runs for image={image!r}, prompt={prompt!r}, seed={seed!r}, labels={labels!r}")
        return grid({row.label: self.video(row.run_id) for row in df.itertuples()})

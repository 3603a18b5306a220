"""Metric plots over runs: the anchor's decay per frame and the fidelity-motion plane (labels from
:mod:`cogviz.metrics`' registry)."""
from __future__ import annotations

from .picture import _pictured


def _runs(runs, by: str):
    """``{label: table or [tables]}`` or a long DataFrame with a ``by`` column -> [(label, [tables])]."""
    import pandas as pd

    if isinstance(runs, pd.DataFrame):
        if by not in runs.columns:
            raise ValueError(f"the table has no {by!r} column to tell runs apart; columns: {list(runs.columns)}")
        return [(str(k), [g]) for k, g in runs.groupby(by, sort=False)]
    if not isinstance(runs, dict) or not runs:
        raise ValueError("runs: expected {label: anchor_metrics table (or a list of them)} or a DataFrame with a "
                         f"{by!r} column, got {type(runs).__name__}")
    return [(str(k), list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in runs.items()]


def _colours(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


@_pictured
def anchor_decay(runs, metric: str = "ssim", *, by: str = "label", title: str | None = None):
    """How the anchor decays over the video: ``metric`` against frame, one line per ablation.

    ``runs``: ``{label: anchor_metrics table}`` (a list of tables per label — several seeds — draws
    their mean with a min-max band), or one long DataFrame with ``frame``, ``metric`` and ``by``
    columns (a sweep's results). A matplotlib Figure drawn into a :class:`Picture`.
    """
    import pandas as pd
    from matplotlib.figure import Figure

    from ..metrics import REGISTRY, label

    if metric not in REGISTRY:
        raise ValueError(f"metric={metric!r}: not a per-frame metric; expected one of {', '.join(REGISTRY)}")
    groups = _runs(runs, by)
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for (lab, tables), colour in zip(groups, _colours(len(groups))):
        long = pd.concat([pd.DataFrame({"frame": t["frame"], "v": t[metric]}) for t in tables])
        stats = long.groupby("frame")["v"].agg(["mean", "min", "max", "count"])
        n = int(stats["count"].max())
        ax.plot(stats.index, stats["mean"], marker="o", ms=3, lw=1.5, color=colour,
                label=lab if n == 1 else f"{lab} (n={n})")
        if n > 1:
            ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.15, lw=0)
    ax.set(xlabel="frame", ylabel=label(metric), title=title or f"anchor decay: {label(metric)} per frame")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=1 if len(groups) <= 6 else 2)
    return fig


@_pictured
def fidelity_motion(runs, *, by: str = "label", x: str = "motion", y: str = "mean_ssim",
                    title: str | None = None):
    """The fidelity-motion plane: each run a point (``x``: mean motion, ``y``: mean SSIM to the image),
    one colour per ablation, a ringed marker at each ablation's mean — the trade-off that image
    noise and strength tune.

    ``runs``: ``{label: anchor_metrics table, a summarize() Series, or a list of either}``, or a
    DataFrame of summaries (one row per run) with a ``by`` column.
    """
    import pandas as pd
    from matplotlib.figure import Figure

    from ..metrics import label, summarize

    def point(t):
        if isinstance(t, pd.DataFrame) and "frame" in t.columns:
            return summarize(t)
        return t

    groups = _runs(runs, by)
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for (lab, tables), colour in zip(groups, _colours(len(groups))):
        rows = []
        for t in tables:
            t = point(t)
            rows.append(t if isinstance(t, pd.DataFrame) else pd.DataFrame([t]))
        pts = pd.concat(rows)
        ax.scatter(pts[x], pts[y], s=22, color=colour, alpha=0.55, lw=0)
        ax.scatter([pts[x].mean()], [pts[y].mean()], s=90, color=colour, edgecolors="black", lw=1.0,
                   label=lab if len(pts) == 1 else f"{lab} (n={len(pts)})", zorder=3)
    ax.set(xlabel=label(x), ylabel=label(y),
           title=title or "fidelity against motion: up = anchored, right = moving")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=1 if len(groups) <= 6 else 2)
    return fig

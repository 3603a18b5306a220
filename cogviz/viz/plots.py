"""Metric plots over runs: the anchor's decay per frame and the fidelity-motion plane (labels from
:mod:`cogviz.metrics`' registry)."""
from __future__ import annotations

from ..errors import ViewError
from .picture import _pictured


def _runs(runs, by: str):
    """``{label: table or [tables]}`` or a long DataFrame with a ``by`` column -> [(label, [tables])]."""
    import pandas as pd

    if isinstance(runs, pd.DataFrame):
        if by not in runs.columns:
            raise ViewError(f"the table has no {by!r} column to tell runs apart; columns: {list(runs.columns)}")
        return [(str(k), [g]) for k, g in runs.groupby(by, sort=False)]
    if not isinstance(runs, dict) or not runs:
        raise ViewError("runs: expected {label: anchor_metrics table (or a list of them)} or a DataFrame with a "
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
        raise ViewError(f"metric={metric!r}: not a per-frame metric; expected one of {', '.join(REGISTRY)}")
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


def _effect_axis(effects) -> str:
    from ..metrics import label

    value = effects.attrs.get("value", "value")
    conf = effects.attrs.get("confidence", 0.95)
    return f"change in {label(value)} vs {effects.attrs.get('baseline', 'baseline')} ({conf:.0%} CI)"


@_pictured
def forest(effects, *, title: str | None = None):
    """A forest plot of :func:`cogviz.effects.paired_effects`: one row per variant (and group), its
    effect as a dot and its interval as a bar, a line at 0; a filled dot where the interval excludes
    0, a hollow one where it holds 0. Rows read top to bottom in the table's order."""
    from matplotlib.figure import Figure

    from ..errors import CogvizError

    need = {"effect", "low", "high", "excludes_zero", "label"}
    if not need <= set(effects.columns):
        raise CogvizError(f"forest: expected the table of cogviz.effects.paired_effects (columns {sorted(need)}); "
                          f"got {list(effects.columns)}")
    groups = [c for c in effects.columns if c not in {"label", "n", "method", "baseline_mean", "variant_mean",
                                                        "effect", "low", "high", "excludes_zero"}]
    names = [" · ".join([*(f"{g}={r[g]}" for g in groups), f"{r['label']} (n={r['n']})"]) for _, r in effects.iterrows()]
    # wide enough for the longest row name beside the plot (a long title wraps onto a second line)
    fig = Figure(figsize=(max(7.2, 4.2 + 0.075 * max(map(len, names), default=0)), 0.42 * len(effects) + 1.5),
                 layout="constrained")
    ax = fig.subplots()
    y = list(range(len(effects)))[::-1]
    excl = effects["excludes_zero"].to_numpy(bool)
    ax.hlines(y, effects["low"], effects["high"], color="#3465a4", lw=2.2)
    ax.scatter(effects["effect"], y, s=46, zorder=3, color=["#3465a4" if e else "white" for e in excl],
               edgecolors="#3465a4", lw=1.5)
    ax.axvline(0.0, color="black", lw=0.9, ls="--")
    import textwrap

    ax.set(yticks=y, yticklabels=names, xlabel=_effect_axis(effects))
    fig.suptitle("\n".join(textwrap.wrap(title or "paired effects: filled = interval excludes 0", 70)))
    ax.grid(axis="x", alpha=0.3)
    return fig


@_pictured
def effect_curves(effects, *, title: str | None = None):
    """Per-frame paired effects (:func:`cogviz.effects.paired_effects` with ``by=("frame",)``): one line
    per variant, its interval as a band, a line at 0 — the anchor's decay against the baseline."""
    from matplotlib.figure import Figure

    from ..errors import CogvizError

    if "frame" not in effects.columns:
        raise CogvizError("effect_curves: the effects have no 'frame' column; ask for them per frame "
                          "(SweepResult.effects('ssim') with a per-frame metric)")
    groups = list(effects.groupby("label", sort=False))
    fig = Figure(figsize=(6.8, 3.8), layout="constrained")
    ax = fig.subplots()
    for (lab, g), colour in zip(groups, _colours(len(groups))):
        g = g.sort_values("frame")
        ax.plot(g["frame"], g["effect"], marker="o", ms=3, lw=1.5, color=colour, label=f"{lab} (n={g['n'].max()})")
        ax.fill_between(g["frame"], g["low"], g["high"], color=colour, alpha=0.2, lw=0)
    ax.axhline(0.0, color="black", lw=0.9, ls="--")
    ax.set(xlabel="frame", ylabel=_effect_axis(effects), title=title or "the anchor against the baseline, per frame")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=1 if len(groups) <= 6 else 2)
    return fig

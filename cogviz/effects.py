"""Paired effects with confidence intervals: cogviz's one home for how an ablation's effect and its
uncertainty are computed.

The runs of a sweep are *paired* by construction: a variant and its baseline share the image, the
prompt, the seed, the initial noise and the posterior draw of ``z_img``. The effect of a variant is
therefore the mean over pairs of ``variant - baseline``; its interval comes from a **paired,
stratified bootstrap** of those differences (Agarwal et al., "Deep RL at the Edge of the
Statistical Precipice", NeurIPS 2021, the ``rliable`` practice): the differences are resampled
within each image (the stratum: images are the fixed set the experiment chose, seeds the random
draw), and the interval is scipy's bias-corrected and accelerated one (``scipy.stats.bootstrap``,
``method="BCa"``; each stratum is one of scipy's independent samples, so scipy's resampling is the
stratified one), each stratum's deviations from its mean inflated by ``sqrt(n_k / (n_k - 1))`` so
that the resampled variance is unbiased at small n (without it the intervals run short at a few
seeds per image; ``tests/test_effects.py`` measures the coverage). Where BCa does not apply — a
stratum of one pair, differences all equal, a degenerate jackknife — the interval says so in
``method``: ``"percentile"`` (scipy's percentile bootstrap; the strata are pooled when one holds a
single pair), ``"exact"`` (every difference equal:
the interval is that value) or ``"n=1"`` (no interval from one pair).

>>> import pandas as pd
>>> runs = pd.DataFrame({"label": ["baseline"] * 4 + ["zero"] * 4, "image": ["a", "a", "b", "b"] * 2,
...                      "seed": [0, 1] * 4, "ssim": [0.9, 0.8, 0.85, 0.95, 0.5, 0.45, 0.5, 0.6]})
>>> e = paired_effects(runs, "ssim", pair=("image", "seed"))
>>> e[["label", "n", "excludes_zero"]].values.tolist(), round(float(e["effect"].iloc[0]), 2)
([['zero', 4, True]], -0.36)
"""
from __future__ import annotations

import difflib
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from .errors import CogvizError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["paired_effects", "paired_interval", "seeds_needed", "COLUMNS"]

#: the columns of :func:`paired_effects` after the ``by`` columns and ``label``
COLUMNS = ("effect", "low", "high", "n", "excludes_zero", "baseline_mean", "variant_mean", "method")


def _closest(name, choices) -> str:
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.4)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_columns(table, names, what: str) -> None:
    for name in names:
        if name not in table.columns:
            raise CogvizError(f"{what} {name!r} is not a column of this table{_closest(name, table.columns)} "
                              f"(columns: {', '.join(map(str, table.columns))})")


def paired_interval(diffs, strata=None, *, confidence: float = 0.95, n_resamples: int = 4000,
                    seed: int = 0) -> tuple[float, float, float, str]:
    """The mean of paired differences and its bootstrap interval: ``(effect, low, high, method)``.
    ``strata``: a label per difference (the image); resampled within each (see the module doc)."""
    from scipy.stats import bootstrap

    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 1 or not d.size:
        raise CogvizError(f"paired_interval: expected a non-empty 1-d array of differences, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise CogvizError("paired_interval: the differences hold NaN or inf; measure a finite metric "
                          "(half_life is inf where the anchor never halves: compare mean_ssim instead)")
    effect = float(d.mean())
    if d.size == 1:
        return effect, math.nan, math.nan, "n=1"
    if np.ptp(d) == 0:
        return effect, effect, effect, "exact"
    keys = np.zeros(d.size, dtype=int) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
    samples = [d[keys == k] for k in np.unique(keys)]
    if min(s.size for s in samples) < 2:  # a one-pair stratum has no spread to resample: pool them
        samples = [d]
    # resampling n_k values spreads them by (n_k - 1) / n_k of their variance: inflate each stratum's
    # deviations by sqrt(n_k / (n_k - 1)) so the resampled variance is unbiased (Davison & Hinkley,
    # Bootstrap Methods and their Application, 1997, section 3.3: adjusted residuals)
    samples = [s.mean() + (s - s.mean()) * math.sqrt(s.size / (s.size - 1)) for s in samples]
    n = d.size

    def mean(*xs, axis=-1):  # the overall mean: each resample keeps its stratum's size
        return sum(x.sum(axis=axis) for x in xs) / n

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's DegenerateDataWarning: the fallback below handles it
            ci = bootstrap(tuple(samples), mean, n_resamples=n_resamples, confidence_level=confidence,
                           method=method, vectorized=True, rng=np.random.default_rng(seed)).confidence_interval
        if np.isfinite(ci.low) and np.isfinite(ci.high):
            return effect, float(ci.low), float(ci.high), method
    return effect, math.nan, math.nan, "degenerate"


def _pairs(table, value: str, label: str, baseline: str, pair: tuple, by: tuple):
    """Each variant row joined to its baseline row on the pair keys (and ``by``)."""
    keys = [*pair, *by]
    base = table[table[label] == baseline]
    dup = base.duplicated(keys)
    if dup.any():
        raise CogvizError(f"two baseline runs share the pair keys {dict(zip(keys, base[dup].iloc[0][keys]))}: "
                          f"pair on more columns (pair=...) so each variant meets one baseline")
    return table[table[label] != baseline].merge(base[[*keys, value]], on=keys, suffixes=("", "@baseline"),
                                                  validate="many_to_one")


def paired_effects(table, value: str, *, label: str = "label", baseline: str = "baseline",
                   pair=("image", "prompt", "seed"), strata: str | None = "image", by=(),
                   confidence: float = 0.95, n_resamples: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Per variant (and per group of ``by``), its paired effect on ``value`` against ``baseline``.

    ``table``: one row per run (or per run and frame, with ``by=("frame",)``), a ``label`` column
    naming the variant, the ``pair`` columns that make a variant meet its baseline (same image,
    prompt and seed), and ``value``. ``strata``: the column resampled within (None: none).
    Returns one row per (by..., label) with :data:`COLUMNS`: ``effect`` (mean of variant - baseline
    over pairs), ``low``/``high`` (the ``confidence`` interval), ``n`` (pairs), ``excludes_zero``,
    the two means, and the interval's ``method``. A column, label or baseline that is not there is
    an error naming the closest; a variant with no pair to its baseline is an error too.
    """
    import pandas as pd

    pair, by = tuple([pair] if isinstance(pair, str) else pair), tuple([by] if isinstance(by, str) else by)
    _check_columns(table, [value, label, *pair, *by], "column")
    if strata is not None:
        _check_columns(table, [strata], "strata")
    labels = list(dict.fromkeys(table[label]))
    if baseline not in labels:
        raise CogvizError(f"baseline {baseline!r} is not a label of these runs{_closest(baseline, labels)} "
                          f"(labels: {', '.join(map(str, labels))})")
    joined = _pairs(table, value, label, baseline, pair, by)
    missing = sorted(set(labels) - {baseline} - set(joined[label]))
    if missing:
        raise CogvizError(f"variant {missing[0]!r} has no run paired with a {baseline!r} run on {', '.join(pair)}: "
                          "sweep it with the baseline (include_baseline=True) on the same images, prompts and seeds")
    rows = []
    for keys, g in joined.groupby([*by, label], sort=False):
        diffs = (g[value] - g[f"{value}@baseline"]).to_numpy(np.float64)
        effect, low, high, method = paired_interval(diffs, None if strata is None else g[strata].to_numpy(),
                                                    confidence=confidence, n_resamples=n_resamples, seed=seed)
        rows.append({**dict(zip([*by, label], keys)), "effect": effect, "low": low, "high": high, "n": len(diffs),
                     "excludes_zero": bool(low > 0 or high < 0), "baseline_mean": float(g[f"{value}@baseline"].mean()),
                     "variant_mean": float(g[value].mean()), "method": method})
    out = pd.DataFrame(rows, columns=[*by, label, *COLUMNS])
    out.attrs.update(value=value, baseline=baseline, confidence=confidence, pair=pair, strata=strata)
    return out


def seeds_needed(effects, half_width: float) -> pd.DataFrame:
    """How many pairs bring each effect's interval to ``half_width``, from a pilot's
    :func:`paired_effects`: the half-width shrinks as ``1 / sqrt(n)``, so ``n_needed = ceil(n *
    (pilot half-width / half_width)^2)``. Adds ``half_width`` (the pilot's) and ``n_needed``; divide
    ``n_needed`` by the images x prompts of the sweep for the seeds it asks."""
    if not half_width > 0:
        raise CogvizError(f"half_width={half_width!r}: give the interval half-width you want, a number > 0")
    out = effects.copy()
    out["half_width"] = (out["high"] - out["low"]) / 2
    ratio = (out["half_width"] / half_width) ** 2
    out["n_needed"] = [n if hw == 0 else (math.ceil(n * r) if math.isfinite(r) else math.nan)
                       for n, hw, r in zip(out["n"], out["half_width"], ratio)]
    return out

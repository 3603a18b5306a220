"""A sweep that extends itself with seeds until every effect's interval is as narrow as asked."""
from __future__ import annotations

import math
import warnings

from ..errors import SweepError
from .driver import sweep


def _next_seeds(seeds: list[int], total: int) -> list[int]:
    """``seeds`` followed by the smallest unused whole numbers, ``total`` in all."""
    out, k = list(seeds), 0
    while len(out) < total:
        if k not in out:
            out.append(k)
        k += 1
    return out


def sweep_until(pipe, images, prompts, ablations, seeds, *, out_dir, half_width: float, metric: str = "mean_ssim",
                frames=None, baseline: str = "baseline", max_seeds: int = 32, **kwargs):
    """:func:`~cogviz.sweep.sweep`, then more seeds, until every variant's paired effect on ``metric``
    has a confidence interval no wider than ``± half_width`` (or ``max_seeds`` seeds are run).

    Each round sweeps the seeds so far (finished runs are skipped: nothing is computed twice), reads
    the effects (:meth:`SweepResult.effects` with ``metric``, ``frames`` and ``baseline``) and asks
    :func:`cogviz.effects.seeds_needed` how many pairs the widest interval needs; the seeds per
    (image, prompt) follow, at least one more a round. Returns the last round's
    :class:`~cogviz.sweep.SweepResult`, whose ``rounds`` list each round's seeds and widest
    half-width. Stopping at ``max_seeds`` short of the target warns with the half-width reached.
    Other keywords go to :func:`~cogviz.sweep.sweep`.
    """
    from ..effects import seeds_needed

    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if not (isinstance(half_width, (int, float)) and half_width > 0):
        raise SweepError(f"half_width={half_width!r}: give the interval half-width to reach, a number > 0 "
                         f"in the units of {metric!r}")
    if not (isinstance(max_seeds, int) and max_seeds >= max(2, len(seeds))):
        raise SweepError(f"max_seeds={max_seeds!r}: expected a whole number >= {max(2, len(seeds))} (the seeds "
                         "given, and at least 2: one seed per image gives no interval)")
    rounds = []
    while True:
        result = sweep(pipe, images, prompts, ablations, seeds, out_dir=out_dir, **kwargs)
        table = seeds_needed(result.effects(metric, baseline=baseline, frames=frames), half_width)
        widest = float(table["half_width"].max()) if len(table) else 0.0
        rounds.append({"seeds": len(seeds), "runs": len(result), "widest_half_width": widest})
        if len(table) and bool((table["half_width"] <= half_width).all()):
            break
        if len(seeds) >= max_seeds:
            warnings.warn(f"sweep_until: stopped at max_seeds={max_seeds} with the widest interval ±{widest:.4g} on "
                          f"{metric!r}, short of ±{half_width:g}; raise max_seeds or accept the wider interval",
                          stacklevel=2)
            break
        groups = result.runs[["image_sha", "prompt"]].drop_duplicates().shape[0]
        pairs = table["n_needed"].max()
        wanted = math.ceil(pairs / groups) if math.isfinite(pairs) else len(seeds) + 1
        seeds = _next_seeds(seeds, min(max_seeds, max(len(seeds) + 1, wanted)))
    result.rounds = rounds
    return result

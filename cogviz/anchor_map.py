"""Where the anchor is read: one block (and step window) at a time knocked out or patched, measured.

:func:`map_ablations` lists the variants of a map — one :class:`~cogviz.ablations.AttentionKnockout`
(or :class:`~cogviz.ablations.PatchActivations`) per block and window — as data, so the same map
runs in one batched call (:func:`block_map`) or through :func:`cogviz.sweep.sweep` over seeds and
images (:func:`map_table` reads its results back). :func:`map_effects` gives each cell's paired
effect against the baseline of the same seed (and image) with its confidence interval, and
:func:`map_picture` draws the block x window heat map of one summary figure, hatching the cells
whose interval holds 0.

>>> [a.label() for a in map_ablations(2, windows=[(0.0, 0.5)])]
['attention_knockout(layers=(0,), queries=later, keys=image, start=0, end=0.5)', 'attention_knockout(layers=(1,), queries=later, keys=image, start=0, end=0.5)']
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import ablations as A
from .errors import CogvizError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["KINDS", "map_ablations", "block_map", "map_table", "map_effects", "map_picture"]

KINDS = ("attention_knockout", "patch_activations")
FIGURES = ("frame0_psnr", "mean_ssim", "later_ssim")  #: the summary figures a map reports


def _blocks(pipe_or_count) -> int:
    return pipe_or_count if isinstance(pipe_or_count, int) else len(pipe_or_count.transformer.transformer_blocks)


def map_ablations(pipe_or_blocks, *, kind: str = "attention_knockout", windows=((0.0, 1.0),), source=None,
                  blocks=None) -> list:
    """One ablation per (block, window): ``kind`` ``"attention_knockout"`` (the later frames' attention
    to the image frame cut) or ``"patch_activations"`` (the image frame's hidden states from
    ``source``). ``blocks``: the block indices (default: every block of the model)."""
    if kind not in KINDS:
        raise CogvizError(f"kind={kind!r}: a map knocks out or patches; expected one of {', '.join(KINDS)}")
    if kind == "patch_activations" and source is None:
        raise CogvizError("kind='patch_activations' needs source=: the image whose hidden states are patched in")
    blocks = list(range(_blocks(pipe_or_blocks))) if blocks is None else list(blocks)
    out = []
    for b in blocks:
        for start, end in windows:
            if kind == "attention_knockout":
                out.append(A.AttentionKnockout(layers=[b], start=start, end=end))
            else:
                out.append(A.PatchActivations(source, layers=[b], start=start, end=end))
    return out


def _row(frames, fitted, ablation, seed: int) -> dict:
    from .metrics import anchor_metrics, summarize

    df = anchor_metrics(frames, fitted)
    s = summarize(df)
    layers = getattr(ablation, "layers", None)
    return {"block": None if ablation is None else int(layers[0]), "start": getattr(ablation, "start", None),
            "end": getattr(ablation, "end", None), "seed": seed, "frame0_psnr": float(s["frame0_psnr"]),
            "mean_ssim": float(s["mean_ssim"]), "later_ssim": float(df["ssim"].iloc[1:].mean())}


def block_map(pipe, image, prompt: str, *, kind: str = "attention_knockout", windows=((0.0, 1.0),), source=None,
              blocks=None, seeds=(0,), steps: int = 20, batch="auto", progress: bool = False, **settings):
    """The map in one call: the baseline and every (block, window) variant of each seed, batched through
    the transformer (:func:`cogviz.generate_variants`), measured against the image. Returns a tidy
    DataFrame: one row per (block, window, seed, figure) with ``value`` and ``change`` (against the
    same seed's baseline); the baseline rows have ``block`` None."""
    import pandas as pd

    from .experiment import generate_variants

    variants = map_ablations(pipe, kind=kind, windows=windows, source=source, blocks=blocks)
    rows = []
    for seed in seeds:
        gens = generate_variants(pipe, image, prompt, [None, *variants], seed=seed, steps=steps, batch=batch,
                                 progress=progress, **settings)
        rows += [_row(g.frames, g.fitted, a, seed) for g, a in zip(gens, [None, *variants])]
    return _tidy(pd.DataFrame(rows))


def _tidy(wide: pd.DataFrame) -> pd.DataFrame:
    pair = ["seed", "image"] if "image" in wide.columns else ["seed"]  # what a cell meets its baseline on
    long = wide.melt(id_vars=["block", "start", "end", *pair], value_vars=list(FIGURES), var_name="figure")
    base = long[long["block"].isna()].set_index([*pair, "figure"])["value"]
    long["change"] = long["value"] - base.loc[list(zip(*(long[c] for c in [*pair, "figure"])))].to_numpy()
    long["window"] = [None if s is None or s != s else f"{s:g}-{e:g}" for s, e in zip(long["start"], long["end"])]
    long["block"] = long["block"].astype("Int64")  # the baseline's block is <NA>
    return long


def map_table(runs: pd.DataFrame) -> pd.DataFrame:
    """A sweep's results (``SweepResult.runs`` of a sweep over :func:`map_ablations`) as the tidy table
    :func:`block_map` gives, one row per (image, seed), cell and figure (the baseline's ``block``
    None; prompts averaged); ``image`` is the image's content key, so :func:`map_effects` pairs
    each cell with its own image's baseline."""
    import json

    import pandas as pd

    rows = []
    for r in runs.itertuples():
        abl = json.loads(r.ablations)
        a = abl[0] if abl else {}
        layers = a.get("layers")
        later = pd.read_parquet(r.metrics)["ssim"].iloc[1:].mean() if r.metrics else float("nan")
        rows.append({"block": layers[0] if isinstance(layers, list) else None, "start": a.get("start"),
                     "end": a.get("end"), "seed": r.seed, "image": r.image_sha, "frame0_psnr": r.frame0_psnr,
                     "mean_ssim": r.mean_ssim, "later_ssim": float(later)})
    wide = pd.DataFrame(rows)
    return _tidy(wide.groupby(["block", "start", "end", "seed", "image"], dropna=False, as_index=False).mean())


def map_effects(table: pd.DataFrame, figure: str = "later_ssim", *, confidence: float = 0.95,
                n_resamples: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Each cell's paired effect on ``figure`` against the baseline of the same seed (and image), with
    its confidence interval (:func:`cogviz.effects.paired_effects`; resampled within each image when
    the table has several): one row per (block, window) with ``effect``, ``low``, ``high``, ``n``,
    ``excludes_zero``. One seed of one image gives no interval (``method`` ``"n=1"``)."""
    import pandas as pd

    from .effects import paired_effects

    if figure not in FIGURES:
        raise CogvizError(f"figure={figure!r}: expected one of {', '.join(FIGURES)}")
    t = table[table["figure"] == figure].copy()
    t["label"] = ["baseline" if pd.isna(b) else f"block {int(b)} · steps {w}" for b, w in zip(t["block"], t["window"])]
    images = "image" in t.columns
    e = paired_effects(t, "value", pair=("seed", "image") if images else ("seed",),
                       strata="image" if images and t["image"].nunique() > 1 else None,
                       confidence=confidence, n_resamples=n_resamples, seed=seed)
    cells = t.drop_duplicates("label").set_index("label")
    e.insert(0, "window", cells.loc[e["label"], "window"].to_numpy())
    e.insert(0, "block", cells.loc[e["label"], "block"].to_numpy())
    e.attrs["value"] = figure
    return e


def map_picture(table: pd.DataFrame, figure: str = "later_ssim", *, of: str = "change", title: str | None = None,
                confidence: float = 0.95):
    """The block x window map of one figure (mean over seeds) from :func:`block_map`'s table: changes
    on a diverging scale centred at 0 with a colour bar (``of="change"``), values on their own scale.
    With two seeds (or images) or more, each change carries its interval (:func:`map_effects`): the
    cell shows ``±`` its half-width and is hatched when the interval holds 0."""
    from .viz import change_map, heatmap

    if figure not in FIGURES:
        raise CogvizError(f"figure={figure!r}: expected one of {', '.join(FIGURES)}")
    t = table[(table["figure"] == figure) & table["block"].notna()]
    grid = t.pivot_table(index="block", columns="window", values=of, aggfunc="mean")
    rows, cols = [f"block {int(b)}" for b in grid.index], [f"steps {w}" for w in grid.columns]
    if of != "change":
        return heatmap(grid.to_numpy(), row_labels=rows, col_labels=list(grid.columns), title=title or f"{figure}, {of}")
    e = map_effects(table, figure, confidence=confidence) if t.groupby(["block", "window"]).size().min() > 1 else None
    low = high = None
    if e is not None:
        cells = e.set_index(["block", "window"])
        low = cells["low"].unstack("window").reindex(index=grid.index, columns=grid.columns).to_numpy()
        high = cells["high"].unstack("window").reindex(index=grid.index, columns=grid.columns).to_numpy()
    note = (f"hatched: the {confidence:.0%} interval holds 0 (n={int(e['n'].min())} pairs a cell)" if e is not None
            else "one seed: no interval")
    return change_map(grid.to_numpy(), row_labels=rows, col_labels=cols,
                      title=title or f"{figure}: change against the baseline\n{note}",
                      label=f"{figure} minus the baseline", xlabel="step window (fractions of the steps)",
                      ylabel="block knocked out / patched", low=low, high=high)

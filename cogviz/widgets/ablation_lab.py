"""``AblationLab``: a controlled sweep from a notebook, and its results.

A thin view over :func:`cogviz.sweep`: an image (an :class:`ImageFitter` or any image), a prompt,
seeds, a list of ablations with their parameters (one row each: add, remove, change), steps,
guidance and a results folder. Only **Run** starts work; a progress bar counts runs with an
estimate of the time left. Then the view shows the sweep's runs table, the baseline and variants
side by side as one video (Play + frame scrubber, a seed to pick), the anchor-decay curves, each
variant's paired effect against the baseline with its 95% interval (a table on mean SSIM and
per-frame bands of the chosen metric: :meth:`cogviz.SweepResult.effects`) and the
fidelity-motion plane. Pointed at a folder that already holds results (on construction, by
typing it, or with **Open**) it shows them without computing anything. The last result is the
observable trait ``result`` (a :class:`cogviz.SweepResult`)::

    lab = AblationLab(pipe, ImageFitter(preset="cogviz-toy"), prompt="a red circle moves left",
                      out_dir="runs/lab")
    lab.observe(lambda ch: print(ch.new.runs), "result")
"""
from __future__ import annotations

import dataclasses
import html
import json
import time
from pathlib import Path

import ipywidgets as W
import traitlets

from ..ablations import KINDS, from_dict
from ..errors import AblationError, CogvizError
from ..fit import FittedImage
from ..viz import to_png
from .scaffold import GenerationScaffold

__all__ = ["AblationLab", "AblationRow", "parse_seeds"]

#: Starting values for parameters without a default (the widget needs something to show).
_STARTS = {"alpha": 0.5, "sigma": 0.1, "box": [0, 0, 32, 32], "image": ""}
#: The runs table's columns, when the sweep measured them.
MAX_SEEDS = 1000  #: seeds one AblationLab sweep may name (each is a batch of generations)
_COLUMNS = ["label", "seed", "frame0_psnr", "mean_ssim", "half_life", "motion"]


def parse_seeds(text: str) -> list[int]:
    """``"0, 1, 2"`` or ``"0 1 2"`` or ``"0-3"`` (0 to 3) -> a list of distinct seeds, in order."""
    seeds = []
    for part in text.replace(",", " ").split():
        lo, sep, hi = part.partition("-")
        try:
            span = range(int(lo), int(hi) + 1) if sep else [int(lo)]
        except ValueError:
            raise CogvizError(f"seeds {text!r}: {part!r} is not a whole number or a range like 0-3") from None
        if sep and int(hi) < int(lo):
            raise CogvizError(f"seeds {text!r}: the range {part!r} runs backwards")
        if len(seeds) + len(span) > MAX_SEEDS:
            raise CogvizError(f"seeds {text!r}: more than {MAX_SEEDS} seeds; a sweep of that size belongs in a "
                              "config file run with `cogviz sweep`")
        seeds += [s for s in span if s not in seeds]
    if not seeds:
        raise CogvizError("seeds is empty: give whole numbers like '0, 1, 2' or a range like '0-3'")
    return seeds


def _optional_number(kind: str, name: str, text: str) -> float | None:
    if not text or text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise AblationError(f"{kind}.{name}={text!r}: expected a number, or empty for none") from None



class AblationRow(W.HBox):
    """One ablation: its kind, a field per parameter, and a remove button."""

    def __init__(self, kind: str = "zero_image", params: dict | None = None):
        self.kind = W.Dropdown(options=[k for k in KINDS if k != "baseline"], value=kind,
                               layout=W.Layout(width="150px"))
        self.fields = W.HBox()
        self.remove = W.Button(icon="times", tooltip="remove this ablation", layout=W.Layout(width="36px"))
        self.inputs: dict[str, W.Widget] = {}
        super().__init__([self.kind, self.fields, self.remove])
        self._build(params or {})
        self.kind.observe(lambda _: self._build({}), "value")

    def _build(self, params: dict) -> None:
        cls = KINDS[self.kind.value]
        self.inputs = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            value = params.get(f.name, f.default if f.default is not dataclasses.MISSING else _STARTS.get(f.name))
            style = {"description_width": "initial"}
            if f.name in cls.choices:
                w = W.Dropdown(options=list(cls.choices[f.name]), value=value, description=f.name, style=style)
            elif f.type == "float":
                w = W.FloatText(value, description=f.name, step=0.05, style=style, layout=W.Layout(width="130px"))
            elif f.type == "int":
                w = W.IntText(value, description=f.name, style=style, layout=W.Layout(width="130px"))
            elif f.type == "float | None":  # optional: empty means None (image_guidance's scale_end)
                w = W.Text("" if value is None else str(value), description=f.name, placeholder="none", style=style,
                           layout=W.Layout(width="150px"))
            elif f.type == "bool":
                w = W.Checkbox(bool(value), description=f.name, indent=False, layout=W.Layout(width="80px"))
            else:  # a box as a JSON list, an image as a path or URL
                text = json.dumps(list(value)) if isinstance(value, (list, tuple)) else str(value or "")
                w = W.Text(text, description=f.name, style=style, layout=W.Layout(width="230px"),
                           placeholder="path or http(s) URL" if f.name in ("image", "source") else
                           '"all" or a JSON list' if f.name == "layers" else "")
            self.inputs[f.name] = w
        self.fields.children = list(self.inputs.values())

    def to_dict(self) -> dict:
        """The row as an ablation dict (what :func:`cogviz.ablations.from_dict` reads)."""
        d = {"kind": self.kind.value}
        cls = KINDS[self.kind.value]
        for name, w in self.inputs.items():
            value = w.value
            if isinstance(w, W.Text):
                value = value.strip()
                ftype = next(f.type for f in dataclasses.fields(cls) if f.name == name)
                if ftype == "float | None":
                    d[name] = _optional_number(self.kind.value, name, value)
                    continue
                if ftype == "tuple" or value.startswith("["):  # a box, or a list of blocks or frames
                    try:
                        value = json.loads(value)
                    except ValueError:
                        raise AblationError(f"{self.kind.value}.{name}={value!r}: expected a JSON list, e.g. "
                                            "[0, 0, 32, 32]") from None
                elif not value:
                    raise AblationError(f"{self.kind.value}.{name} is empty: give a path or an http(s) URL")
            d[name] = value
        return d

    def ablation(self):
        """The row's ablation, checked (an :class:`~cogviz.errors.AblationError` names what is wrong)."""
        return from_dict(self.to_dict())


class AblationLab(GenerationScaffold, W.VBox):
    """Image, prompt, seeds, ablation rows, Run; the runs table, video grid, decay curves, trade-off."""

    result = traitlets.Any(None, allow_none=True, help="the shown cogviz.SweepResult (None before any)")
    error = traitlets.Unicode("", help="the last error message, '' when the last action worked")
    running = traitlets.Bool(False)

    def __init__(self, pipe=None, image=None, *, prompt: str = "", seeds=(0, 1), ablations=None,
                 out_dir="ablation-lab", steps: int = 20, guidance: float = 6.0, fps: float | None = None,
                 preview_side: int = 320):
        self._scaffold(pipe, image, prompt=prompt, steps=steps, guidance=guidance, fps=fps, side=preview_side,
                       progress="Runs", player_width="100%")
        self.seeds = W.Text(", ".join(map(str, seeds)), description="Seeds", placeholder="0, 1, 2 or 0-3",
                            layout=W.Layout(width="240px"))
        self.out_dir = W.Text(str(out_dir), description="Results", continuous_update=False,
                              layout=W.Layout(width="420px"))
        self.open_button = W.Button(description="Open", icon="folder-open", tooltip="show the results in this folder")
        self.rows = W.VBox()
        self.add_button = W.Button(description="Add ablation", icon="plus")
        self.status = W.HTML()
        self.table = W.HTML()
        self.grid_seed = W.Dropdown(options=[], description="Seed", layout=W.Layout(width="160px"))
        self.grid_image = self.player_image  # the player shows the grid of baseline and variants
        # side by side while both fit, each scaled down to half the row otherwise
        from ..metrics import REGISTRY

        # the decay curve's metric: every per-frame metric of the registry, a new one included
        self.decay_metric = W.Dropdown(options=[(m.label, m.name) for m in REGISTRY.values()], value="ssim",
                                       description="Decay of", layout=W.Layout(width="320px"))
        self.decay = W.Image(format="png", layout=W.Layout(max_width="min(560px, 49%)", height="auto"))
        self.tradeoff = W.Image(format="png", layout=W.Layout(max_width="min(560px, 49%)", height="auto"))
        # each variant's paired effect against the baseline with its interval: a table and per-frame bands
        self.effects = W.HTML()
        self.effect_curves = W.Image(format="png", layout=W.Layout(max_width="min(560px, 49%)", height="auto"))

        for a in (ablations if ablations is not None else [{"kind": "zero_image"}, {"kind": "scale_image"}]):
            self._add_row(a)
        settings = W.VBox([self.prompt, W.HBox([self.seeds, self.steps, self.guidance]),
                           W.HTML("<b>ablations</b> (the baseline always runs too)"), self.rows, self.add_button,
                           W.HBox([self.out_dir, self.open_button]),
                           W.HBox([self.run_button, self.progress, self.status])])
        results = W.VBox([W.HTML("<b>runs</b>"), self.table,
                          W.HTML("<b>baseline and variants, same seed</b>"), self.grid_seed, self.grid_image,
                          self._player(), self.decay_metric,
                          W.HBox([self.decay, self.effect_curves]),
                          W.HTML("<b>effects against the baseline</b> (paired by seed, 95% intervals)"),
                          self.effects, self.tradeoff])
        super().__init__(self._top() + [settings, self.message, results])

        self.add_button.on_click(lambda _: self._add_row({"kind": "noise_image"}))
        self.open_button.on_click(lambda _: self.open_results())
        self.out_dir.observe(lambda _: self.open_results(quiet=True), "value")
        self.grid_seed.observe(lambda _: self._show_grid(), "value")
        self.decay_metric.observe(lambda _: (self._show_decay(), self._show_effects()), "value")
        self.open_results(quiet=True)  # a folder with results: shown, nothing computed

    # ------------------------------------------------------------------------------- rows
    def _add_row(self, ablation) -> AblationRow:
        d = ablation if isinstance(ablation, dict) else ablation.to_dict()
        row = AblationRow(d["kind"], {k: v for k, v in d.items() if k != "kind"})
        row.remove.on_click(lambda _: self.remove_row(row))
        self.rows.children = [*self.rows.children, row]
        return row

    def add_row(self, kind: str = "noise_image", **params) -> AblationRow:
        """Append an ablation row (what **Add ablation** does), e.g. ``add_row("scale_image", alpha=0.25)``."""
        return self._add_row({"kind": kind, **params})

    def remove_row(self, row: AblationRow) -> None:
        self.rows.children = [r for r in self.rows.children if r is not row]

    def ablations(self) -> list:
        """The rows' ablations, each checked."""
        return [row.ablation() for row in self.rows.children]

    # ------------------------------------------------------------------------------- actions
    def image(self):
        """The conditioning image now (the fitter's current fit as a picture, or the image given)."""
        image = self.fitted()
        return image.image if isinstance(image, FittedImage) else image

    def run(self):
        """Run the sweep (finished runs in the folder are skipped) and show it; returns the SweepResult."""
        from ..sweep import sweep

        if self.running:
            return None
        try:  # everything checked before the model runs
            ablations, seeds, image = self.ablations(), parse_seeds(self.seeds.value), self.image()
        except Exception as e:  # noqa: BLE001 - every failure is shown, cogviz's or not
            self._fail(e)
            return None
        self.message.value = ""
        start, first = time.perf_counter(), []

        def on_run(done, total):
            self.progress.max, self.progress.value = total, done
            if not first:
                first.append(done)
            made, left = done - first[0], total - done
            eta = f", about {(time.perf_counter() - start) / made * left:.0f} s left" if made and left else ""
            self.status.value = f"{done}/{total} runs{eta}"

        with self._running():
            try:
                result = sweep(self.pipe, [image], [self.prompt.value], ablations, seeds, out_dir=self.out_dir.value,
                               steps=self.steps.value, guidance=self.guidance.value, progress=False, callback=on_run)
            except Exception as e:  # noqa: BLE001 - every failure is shown, cogviz's or not
                self._fail(e)
                return None
        self.progress.bar_style = "success"
        self.status.value = f"{len(result)} runs in {time.perf_counter() - start:.1f} s"
        self.show(result)
        return result

    def open_results(self, out_dir=None, *, quiet: bool = False):
        """Show the results already in ``out_dir`` (default: the Results field) without computing."""
        from ..sweep import SweepResult

        folder = Path(out_dir or self.out_dir.value)
        if quiet and not (folder / "manifest.json").exists():
            return None
        try:
            result = SweepResult.load(folder)
        except Exception as e:  # noqa: BLE001 - every failure is shown, cogviz's or not
            self._fail(e)
            return None
        self.error = ""
        self.message.value = ""
        self.status.value = f"{len(result)} runs read from {html.escape(str(folder))}"
        if len(result):  # the bar says how much of the folder is done: all of what it holds
            self.progress.max = self.progress.value = len(result)
            self.progress.bar_style = "success"
        self.show(result)
        return result

    def show(self, result) -> None:
        """Draw a SweepResult: table, video grid, decay curves, fidelity-motion plane."""
        runs = result.runs
        if len(runs) == 0:
            self.table.value = "<i>no finished runs in this folder yet</i>"
            self.result = result
            return
        cols = [c for c in _COLUMNS if c in runs.columns]
        view = runs[cols].round(3) if cols else runs[["label", "seed"]]
        self.table.value = ('<div style="max-height:260px;overflow:auto">'
                            + view.to_html(index=False, border=0, classes="cogviz-runs") + "</div>")
        seeds = sorted(int(s) for s in runs["seed"].unique())
        self._result = result
        self.grid_seed.options = seeds
        self.grid_seed.value = seeds[0]
        self._show_grid()
        if len(result.frames):
            self._show_decay()
            self._show_effects()
            self.tradeoff.value = to_png(result.plot_tradeoff())
        self.result = result

    def _show_decay(self) -> None:
        result = getattr(self, "_result", None)
        if result is not None and len(result.frames):
            self.decay.value = to_png(result.plot_decay(self.decay_metric.value))

    def _show_effects(self) -> None:
        """The effects table (mean SSIM, one row per variant) and the chosen metric's per-frame bands;
        with one seed per pair there is no interval, and the table says so."""
        result = getattr(self, "_result", None)
        if result is None or not len(result.frames) or "baseline" not in set(result.runs["label"]):
            self.effects.value, self.effect_curves.value = "<i>no baseline runs: no effects to show</i>", b""
            return
        table = result.effects("mean_ssim")
        shown = table[["label", "effect", "low", "high", "n", "excludes_zero"]].round(4)
        note = ("" if (table["n"] > 1).all() else
                "<br><i>one seed per variant: no interval; add seeds (e.g. 0-4) for one</i>")
        self.effects.value = shown.to_html(index=False, border=0, classes="cogviz-effects") + note
        self.effect_curves.value = to_png(result.plot_effects(self.decay_metric.value))

    def _show_grid(self) -> None:
        result = getattr(self, "_result", None)
        if result is None or self.grid_seed.value is None:
            return
        self._set_frames(result.grid(seed=int(self.grid_seed.value)), self._side)

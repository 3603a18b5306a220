"""``LatentExplorer``: browse z_t, z_img, the 32-channel input and the prediction over steps and frames.

A thin view over :mod:`cogviz.viz` and :mod:`cogviz.analysis`. Everything it shows comes from a
recorded :class:`~cogviz.Trace`: a slider tick re-renders, it never runs the model. Given a pipeline
and an image instead of a generation, it runs :func:`cogviz.generate` once, recording what it needs.
The picture is one ``Image`` widget whose bytes are replaced in place (no flicker)::

    ex = LatentExplorer(pipe=cogviz.load_pipeline("toy"), image="cogviz/samples/shapes.png",
                        prompt="a red circle moves left")
    ex.step.value = 10; ex.tensor.value = "input"; ex.view.value = "grid"
"""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import traitlets

from ..analysis import PCABasis, contribution_maps
from ..errors import ViewError
from ..viz import (
    NORMS,
    channel_mosaic,
    colourise,
    figure_png,
    frames_overview,
    heatmap,
    rgb_tiles,
    stats_figure,
    to_png,
)
from .transport import mosaic_png

__all__ = ["LatentExplorer", "VIEWS", "TENSORS"]

TENSORS = ("z_t", "z_img", "input", "pred")
VIEWS = ("grid", "overview", "pca", "rgb map", "statistics", "contribution", "anchor attention")
RECORD = ("image.fitted", "z_img", "step/*/z_t", "step/*/input", "step/*/pred", "latents.final", "frames")


def _channel_options(n: int, split: int) -> list[str]:
    """The channel choices of an ``n``-channel tensor; the input (``n == 2 * split``) also offers its
    two halves, ``z_t``'s ``split`` channels and ``z_img``'s."""
    opts = ["all"]
    if n == 2 * split:
        opts += [f"z_t (0-{split - 1})", f"z_img ({split}-{n - 1})"]
    opts += [f"{s}-{min(s + 7, n - 1)}" for s in range(0, n, 8)]
    return opts


def _channel_slice(option: str, n: int, split: int) -> tuple[slice, int | None]:
    if option == "all":
        return slice(0, n), (split if n == 2 * split else None)
    if option.startswith("z_t"):
        return slice(0, split), None
    if option.startswith("z_img"):
        return slice(split, n), None
    a, b = (int(v) for v in option.split("-"))
    return slice(a, b + 1), None


class LatentExplorer(W.VBox):
    """Tensor, step, latent frame (with Play), channels, normalisation and view over one trace."""

    error = traitlets.Unicode("", help="why the current view cannot be drawn ('' when it can)")
    renders = traitlets.Int(0, help="how many times the picture was redrawn")

    def __init__(self, source=None, *, pipe=None, image=None, prompt: str = "a red circle moves left",
                 steps: int = 20, seed: int = 0, attention_layers="all", cond_half: bool = True):
        from ..experiment import generate
        from ..sampler import Generation, Trace

        if source is None:
            if pipe is None or image is None:
                raise ViewError("LatentExplorer needs a Generation or a Trace, or pipe= and image= to make one")
            n_layers = pipe.transformer.config.num_layers
            source = generate(pipe, image, prompt, steps=steps, seed=seed, record=RECORD, progress=False,
                              attention_layers=attention_layers if n_layers <= 12 else None)
        self.trace: Trace = source.trace if isinstance(source, Generation) else source
        if not isinstance(self.trace, Trace):
            raise ViewError(f"LatentExplorer takes a Generation or a Trace, got {type(source).__name__}")
        self.pipe = pipe
        self._half = 1 if cond_half else 0
        names = self.trace.names()
        self._steps = sorted({int(n.split("/")[1]) for n in names if n.startswith("step/")})
        self._layers = sorted({int(n.split("/")[3]) for n in names if n.endswith("/attention")})
        ref = self._get("z_t", self._steps[0]) if self._steps else self._get("z_img", 0)
        if ref is None:
            raise ViewError("the trace holds no latents: record 'z_img' and 'step/*/z_t' (and 'step/*/input', "
                             "'step/*/pred') with cogviz.generate(..., record=...)")
        n_frames, self._split, h, _ = ref.shape  # the latent's channels: where z_img starts in the input
        self._zoom = max(1, 48 // h)
        fit_on = [self._get("z_t", i) for i in self._steps[-1:]] + [self._get("z_img", 0)]
        self.pca = PCABasis.fit(*[f for f in fit_on if f is not None])  # once: the same colours everywhere
        self._rgb = None
        self._contrib: dict[int, dict] = {}  # per step: contribution maps depend on the step, not the frame
        self._updating = False
        if pipe is not None:
            from ..preview import rgb_map_for

            self._rgb = rgb_map_for(pipe)

        self.tensor = W.ToggleButtons(options=list(TENSORS), value="input", description="Tensor")
        self.step = W.IntSlider(0, min=0, max=max(len(self._steps) - 1, 0), description="Step",
                                continuous_update=True)
        self.frame = W.IntSlider(0, min=0, max=n_frames - 1, description="Latent frame")
        self.play = W.Play(0, min=0, max=n_frames - 1, interval=400, description="Play frames")
        W.jslink((self.play, "value"), (self.frame, "value"))
        self.channels = W.Dropdown(options=_channel_options(2 * self._split, self._split), value="all",
                                   description="Channels")
        self.norm = W.Dropdown(options=list(NORMS), value="symmetric", description="Norm")
        self.view = W.Dropdown(options=list(VIEWS), value="grid", description="View")
        self.picture = W.Image(format="png")
        self.info = W.HTML()
        controls = W.VBox([self.tensor, W.HBox([self.step, self.frame, self.play]),
                           W.HBox([self.channels, self.norm, self.view])])
        super().__init__([controls, self.info, self.picture])
        for w in (self.tensor, self.step, self.frame, self.channels, self.norm, self.view):
            w.observe(self._changed, "value")
        self._changed()

    # ----------------------------------------------------------------------------- data
    def _get(self, tensor: str, step: int):
        """(F, C, h, w) array of the tensor at a step (the conditional CFG half), or None if not recorded."""
        name = "z_img" if tensor == "z_img" else f"step/{step}/{'z_t' if tensor == 'z_t' else tensor}"
        if name not in self.trace:
            return None
        t = self.trace[name]
        roles = self.trace.rows()
        if t.shape[0] == len(roles) > 1:  # a point with every row: the chosen half, by role
            role = "conditional" if self._half or "unconditional" not in roles else "unconditional"
            t = self.trace.row(name, role)
        else:
            t = t[0]
        return t.float().numpy()

    def current(self):
        """The array now shown: (F, C, h, w) of the chosen tensor and step, or None."""
        return self._get(self.tensor.value, self._steps[self.step.value] if self._steps else 0)

    def _contribution(self, step: int) -> dict:
        if step not in self._contrib:
            x = self._get("input", step)
            if x is None:
                raise ViewError("record 'step/*/input' for the contribution view")
            import torch

            self._contrib[step] = contribution_maps(self.pipe, torch.from_numpy(x))
        return self._contrib[step]

    # ----------------------------------------------------------------------------- drawing
    def _changed(self, *_):
        if self._updating:  # the channel list below is being replaced: draw once, afterwards
            return
        n = self._split * (2 if self.tensor.value == "input" else 1)
        opts = _channel_options(n, self._split)
        if list(self.channels.options) != opts:
            keep = self.channels.value if self.channels.value in opts else "all"
            self._updating = True
            try:
                self.channels.options = opts
                self.channels.value = keep
            finally:
                self._updating = False
        try:
            png, info = self.render()
        except ValueError as e:
            self.error = str(e)
            self.info.value = f'<span style="color:#b00">{html.escape(str(e))}</span>'
            return
        self.error = ""
        self.info.value = info
        self.picture.value = png
        self.renders += 1

    def render(self) -> tuple[bytes, str]:
        """PNG bytes and a one-line caption of the current view (what a slider tick calls)."""
        view, tensor = self.view.value, self.tensor.value
        step_i = self._steps[self.step.value] if self._steps else 0
        f = self.frame.value
        where = f"{tensor}, step {step_i + 1}/{len(self._steps)}, latent frame {f}"
        if view == "statistics":
            return figure_png(stats_figure(self.trace, frame=f)), f"z_t vs z_img statistics, latent frame {f}"
        if view == "anchor attention":
            if not self._layers:
                raise ViewError("this trace has no attention: generate(..., attention_layers='all' or [0, 3])")
            a = np.stack([self.trace.row(f"step/{step_i}/block/{l}/attention")[:, 1].numpy() for l in self._layers])
            img = heatmap(a, row_labels=[f"layer {l}" for l in self._layers],
                          col_labels=[f"f{i}" for i in range(a.shape[1])],
                          title=f"share of attention on latent frame 0 (the image), step {step_i + 1}")
            return to_png(img), "rows: layers; columns: the querying latent frame"
        if view == "contribution":
            if self.pipe is None:
                raise ViewError("the contribution view needs the pipeline's patch embedding: LatentExplorer(..., pipe=pipe)")
            maps = self._contribution(step_i)
            hi = max(float(maps["image"].max()), float(maps["noise"].max()))
            per = (self.frame.max + 1) // len(maps["image"])  # latent frames a token spans (1.5: patch_size_t)
            tiles = [colourise(maps[k][min(f // per, len(maps[k]) - 1)], vmax=hi) for k in ("noise", "image")]
            return to_png(rgb_tiles(tiles, ["|W_noise * patch(z_t)|", "|W_img * patch(z_img)|"], zoom=32)), \
                f"per-token contribution of each half, step {step_i + 1}, latent frame {f} (one scale)"
        arr = self.current()
        if arr is None:
            raise ViewError(f"{where}: not recorded; generate(..., record=('z_img', 'step/*/z_t', 'step/*/input', "
                             "'step/*/pred'))")
        sl, split = _channel_slice(self.channels.value, arr.shape[1], self._split)
        if view == "grid":
            img = channel_mosaic(arr[f, sl], norm=self.norm.value, split=split, zoom=self._zoom,
                                 title=where, labels=True)
            return mosaic_png(img, norm=self.norm.value), where
        if view == "overview":
            img = frames_overview(arr[:, sl], norm=self.norm.value, split=split)
            return mosaic_png(img, norm=self.norm.value), f"{where} (all frames)"
        if view in ("pca", "rgb map"):
            c = self._split
            lat = arr[:, c:] if tensor == "input" and self.channels.value.startswith("z_img") else (
                arr[:, :c] if arr.shape[1] == 2 * c else arr)
            if view == "pca":
                ims = self.pca.apply(lat)
                cap = f"PCA to RGB (fitted once; {100 * self.pca.explained.sum():.0f}% of the variance)"
            else:
                if self._rgb is None:
                    raise ViewError("the RGB-map view needs the pipeline's decoder: LatentExplorer(..., pipe=pipe)")
                ims = self._rgb.apply(lat, kind="z_img" if tensor == "z_img" else "video")
                cap = f"latent -> RGB map fitted to the decoder (fit error {self._rgb.rmse:.3f} RMSE)"
            return to_png(rgb_tiles(list(ims), [f"f{i}" for i in range(len(ims))])), f"{where}: {cap}"
        raise ViewError(f"unknown view {view!r}; one of {VIEWS}")

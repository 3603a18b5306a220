"""``GenerateUI``: run image-to-video from a notebook and watch frame 0 emerge.

A thin view over :func:`cogviz.generate`. Settings change nothing until **Run** is pressed (a
slider tick never starts a model). During the steps a progress bar moves and a preview shows the
clean frame 0 the model currently predicts, through the pipeline's fitted latent -> RGB map
(:func:`cogviz.preview.rgb_map_for`): no VAE decode per step. Afterwards a player (Play + frame
scrubber) shows the decoded video. The last result is the observable trait ``generation``::

    ui = GenerateUI(pipe, ImageFitter(preset="cogviz-toy"), prompt="a red circle moves left")
    ui.observe(lambda ch: print(ch.new.frames.shape), "generation")
"""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import traitlets
from PIL import Image

from ..errors import CogvizError, one_line
from ..family import default_frames
from ..fit import FittedImage
from ..models import fps_of as _fps_of
from ..presets import PROMPT_HINT
from ..viz import to_png
from .image_fitter import ImageFitter

__all__ = ["GenerateUI", "valid_frame_counts"]


def valid_frame_counts(pipe, up_to: int | None = None) -> list[int]:
    """Frame counts the pipeline accepts (8k+1 for 1.0, 16k+1 for 1.5, at most
    :func:`cogviz.family.max_frames`), up to ``up_to``."""
    from ..family import family_of, max_frames

    top = min(up_to or max_frames(pipe), max_frames(pipe))
    return [n for n in family_of(pipe).frame_counts(top) if n > 1]  # one frame is no video


def image_source(pipe, image):
    """A widget's conditioning image: an ``ImageFitter`` (made when ``image`` is None, its preset set
    to the size ``pipe`` needs) or the image given."""
    from ..models import preset_for

    preset = preset_for(pipe).name
    if image is None:
        return ImageFitter(preset=preset, sample="shapes")
    if isinstance(image, ImageFitter) and preset in image.preset.options:
        image.preset.value = preset  # fit to the size this model needs
    return image


def _big(a: np.ndarray, min_side: int = 192) -> Image.Image:
    """Nearest-neighbour upscale so tiny latents stay visible as blocks."""
    img = Image.fromarray(a)
    f = max(1, round(min_side / min(img.size)))
    return img.resize((img.width * f, img.height * f), Image.Resampling.NEAREST) if f > 1 else img



class GenerateUI(W.VBox):
    """Image source (an ``ImageFitter`` or an image), prompt, settings, Run, live preview, player."""

    generation = traitlets.Any(None, allow_none=True, help="the last cogviz.Generation (None before the first run)")
    error = traitlets.Unicode("", help="the last error message, '' when the last run worked")
    running = traitlets.Bool(False)

    def __init__(self, pipe=None, image=None, *, prompt: str = "", steps: int = 50, guidance: float = 6.0,
                 seed: int = 0, num_frames: int | None = None, fps: float | None = None, preview_side: int = 288):
        from ..models import load_pipeline

        self.pipe = pipe if pipe is not None else load_pipeline("toy")
        self.fps = fps = fps or _fps_of(self.pipe)  # the family's rate: 16 for CogVideoX 1.5
        self._side = preview_side
        self._frames_png: list[bytes] = []
        self.source = image_source(self.pipe, image)

        self.prompt = W.Text(prompt, placeholder=PROMPT_HINT,
                             description="Prompt", layout=W.Layout(width="520px"))
        self.steps = W.IntSlider(steps, min=1, max=100, description="Steps", continuous_update=False)
        self.guidance = W.FloatSlider(guidance, min=1.0, max=12.0, step=0.5, description="Guidance",
                                      continuous_update=False)
        self.seed = W.IntText(seed, description="Seed", layout=W.Layout(width="180px"))
        counts = valid_frame_counts(self.pipe)
        self.frames = W.Dropdown(options=counts, value=num_frames or default_frames(self.pipe), description="Frames")
        self.run_button = W.Button(description="Run", button_style="primary", icon="play")
        self.progress = W.IntProgress(0, min=0, max=steps, description="Steps", bar_style="info")
        self.preview = W.Image(format="png", layout=W.Layout(max_width=f"{preview_side}px"))
        self.preview_label = W.HTML("<b>predicted clean frame 0</b> (latent -> RGB map, no decode)")
        self.player_image = W.Image(format="png", layout=W.Layout(max_width=f"{2 * preview_side}px"))
        self.scrubber = W.IntSlider(0, min=0, max=0, description="Frame")
        self.play = W.Play(0, min=0, max=0, interval=int(1000 / fps), description="Play")
        W.jslink((self.play, "value"), (self.scrubber, "value"))
        self.message = W.HTML()

        settings = W.VBox([self.prompt, W.HBox([self.steps, self.guidance]), W.HBox([self.seed, self.frames]),
                           W.HBox([self.run_button, self.progress])])
        live = W.VBox([self.preview_label, self.preview])
        player = W.VBox([W.HTML("<b>video</b>"), self.player_image, W.HBox([self.play, self.scrubber])])
        top = [self.source] if isinstance(self.source, W.Widget) else []
        super().__init__(top + [settings, W.HBox([live, player]), self.message])

        self.run_button.on_click(lambda _: self.run())
        self.scrubber.observe(self._show_frame, "value")

    # ------------------------------------------------------------------------------- actions
    def image(self):
        """The conditioning image now: the fitter's current fit, or the image given."""
        if isinstance(self.source, ImageFitter):
            if self.source.fitted is None:
                raise CogvizError("the ImageFitter has no image yet: choose a sample, upload one or give a path")
            return self.source.fitted
        return self.source

    def run(self):
        """Generate with the current settings; returns the Generation (also set as ``generation``)."""
        from ..experiment import generate
        from ..preview import rgb_map_for

        if self.running:
            return None
        self.running = True
        self.run_button.disabled = True
        self.error = ""
        self.message.value = "running..."
        self.progress.max = self.steps.value
        self.progress.value = 0
        self.progress.bar_style = "info"
        try:
            image = self.image()
            rgb = rgb_map_for(self.pipe)
            pad = self._pad()

            def on_step(info):
                self.progress.value = info.step + 1
                self.preview.value = to_png(_big(rgb.apply(info.x0[0, pad]), self._side))

            g = generate(self.pipe, image, self.prompt.value, num_frames=self.frames.value, steps=self.steps.value,
                         guidance=self.guidance.value, seed=int(self.seed.value), progress=False, callback=on_step)
        except Exception as e:  # noqa: BLE001 - every failure is shown, cogviz's or not
            self.error = one_line(e)
            self.progress.bar_style = "danger"
            self.message.value = f'<span style="color:#b00">{html.escape(self.error)}</span>'
            return None
        finally:
            self.running = False
            self.run_button.disabled = False
        self._frames_png = [to_png(_big(f, 2 * self._side)) for f in g.frames]
        n = len(self._frames_png) - 1
        self.scrubber.max = self.play.max = n
        self.scrubber.value = 0
        self._show_frame()
        self.progress.bar_style = "success"
        fit = g.fitted.report.summary() if isinstance(g.fitted, FittedImage) else ""
        self.message.value = (f"{len(g.frames)} frames at {g.frames.shape[1]}x{g.frames.shape[2]}; "
                              f"{html.escape(fit)}")
        self.generation = g
        return g

    def _pad(self) -> int:
        from ..encode import latent_frames

        return latent_frames(self.pipe, self.frames.value)[1]

    def _show_frame(self, *_):
        if self._frames_png:
            self.player_image.value = self._frames_png[self.scrubber.value]

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
import traitlets

from ..family import default_frames
from ..fit import FittedImage
from ..viz import to_png
from .scaffold import GenerationScaffold, big

__all__ = ["GenerateUI", "valid_frame_counts"]


def valid_frame_counts(pipe, up_to: int | None = None) -> list[int]:
    """Frame counts the pipeline accepts (8k+1 for 1.0, 16k+1 for 1.5, at most
    :func:`cogviz.family.max_frames`), up to ``up_to``."""
    from ..family import family_of, max_frames

    top = min(up_to or max_frames(pipe), max_frames(pipe))
    return [n for n in family_of(pipe).frame_counts(top) if n > 1]  # one frame is no video


class GenerateUI(GenerationScaffold, W.VBox):
    """Image source (an ``ImageFitter`` or an image), prompt, settings, Run, live preview, player."""

    generation = traitlets.Any(None, allow_none=True, help="the last cogviz.Generation (None before the first run)")
    error = traitlets.Unicode("", help="the last error message, '' when the last run worked")
    running = traitlets.Bool(False)

    def __init__(self, pipe=None, image=None, *, prompt: str = "", steps: int = 50, guidance: float = 6.0,
                 seed: int = 0, num_frames: int | None = None, fps: float | None = None, preview_side: int = 288):
        self._scaffold(pipe, image, prompt=prompt, steps=steps, guidance=guidance, fps=fps, side=preview_side,
                       progress="Steps", player_width=f"{2 * preview_side}px")
        self.seed = W.IntText(seed, description="Seed", layout=W.Layout(width="180px"))
        counts = valid_frame_counts(self.pipe)
        self.frames = W.Dropdown(options=counts, value=num_frames or default_frames(self.pipe), description="Frames")
        self.preview = W.Image(format="png", layout=W.Layout(max_width=f"{preview_side}px"))
        self.preview_label = W.HTML("<b>predicted clean frame 0</b> (latent -> RGB map, no decode)")

        settings = W.VBox([self.prompt, W.HBox([self.steps, self.guidance]), W.HBox([self.seed, self.frames]),
                           W.HBox([self.run_button, self.progress])])
        live = W.VBox([self.preview_label, self.preview])
        player = W.VBox([W.HTML("<b>video</b>"), self.player_image, self._player()])
        super().__init__(self._top() + [settings, W.HBox([live, player]), self.message])

    # ------------------------------------------------------------------------------- actions
    def image(self):
        """The conditioning image now: the fitter's current fit, or the image given."""
        return self.fitted()

    def run(self):
        """Generate with the current settings; returns the Generation (also set as ``generation``)."""
        from ..experiment import generate
        from ..preview import rgb_map_for

        if self.running:
            return None
        self.message.value = "running..."
        self.progress.max = self.steps.value
        self.progress.value = 0
        with self._running():
            try:
                image = self.image()
                rgb = rgb_map_for(self.pipe)
                pad = self._pad()

                def on_step(info):
                    self.progress.value = info.step + 1
                    self.preview.value = to_png(big(rgb.apply(info.x0[0, pad]), self._side))

                g = generate(self.pipe, image, self.prompt.value, num_frames=self.frames.value,
                             steps=self.steps.value, guidance=self.guidance.value, seed=int(self.seed.value),
                             progress=False, callback=on_step)
            except Exception as e:  # noqa: BLE001 - every failure is shown, cogviz's or not
                self._fail(e)
                return None
        self.scrubber.value = 0
        self._set_frames(g.frames, 2 * self._side)
        self.progress.bar_style = "success"
        fit = g.fitted.report.summary() if isinstance(g.fitted, FittedImage) else ""
        self.message.value = (f"{len(g.frames)} frames at {g.frames.shape[1]}x{g.frames.shape[2]}; "
                              f"{html.escape(fit)}")
        self.generation = g
        return g

    def _pad(self) -> int:
        from ..encode import latent_frames

        return latent_frames(self.pipe, self.frames.value)[1]

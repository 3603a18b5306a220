"""The scaffold the two generation widgets share (``GenerateUI`` and ``AblationLab``): the model
(the toy when none is given), the image source, the prompt, the Steps and Guidance sliders, Run
with its progress bar, a player (a frame, Play and a frame scrubber, linked in the browser) and the
error line. Each widget lays these out with its own parts; the behaviour of each shared part —
what an empty image source says, how an error is shown, how the player steps through frames —
lives here once.
"""
from __future__ import annotations

import contextlib
import html

import ipywidgets as W
import numpy as np
from PIL import Image

from ..errors import CogvizError, one_line
from ..presets import PROMPT_HINT
from ..viz import to_png
from .image_fitter import ImageFitter

__all__ = ["GenerationScaffold", "image_source", "big"]


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


def big(a: np.ndarray, min_side: int = 192) -> Image.Image:
    """Nearest-neighbour upscale so tiny latents stay visible as blocks."""
    img = Image.fromarray(a)
    f = max(1, round(min_side / min(img.size)))
    return img.resize((img.width * f, img.height * f), Image.Resampling.NEAREST) if f > 1 else img


class GenerationScaffold:
    """Mixed into a ``W.VBox`` widget that declares the traits ``error`` and ``running``: call
    :meth:`_scaffold` first in ``__init__``, lay out its parts, and implement ``run()``."""

    def _scaffold(self, pipe, image, *, prompt: str, steps: int, guidance: float, fps: float | None,
                  side: int, progress: str, player_width: str) -> None:
        from ..models import fps_of, load_pipeline

        self.pipe = pipe if pipe is not None else load_pipeline("toy")
        self.fps = fps or fps_of(self.pipe)  # the family's rate: 16 for CogVideoX 1.5
        self._side = side
        self._frames_png: list[bytes] = []
        self.source = image_source(self.pipe, image)
        self.prompt = W.Text(prompt, placeholder=PROMPT_HINT, description="Prompt", layout=W.Layout(width="520px"))
        self.steps = W.IntSlider(steps, min=1, max=100, description="Steps", continuous_update=False)
        self.guidance = W.FloatSlider(guidance, min=1.0, max=12.0, step=0.5, description="Guidance",
                                      continuous_update=False)
        self.run_button = W.Button(description="Run", button_style="primary", icon="play")
        self.progress = W.IntProgress(0, min=0, max=max(steps, 1), description=progress, bar_style="info")
        self.player_image = W.Image(format="png", layout=W.Layout(max_width=player_width))
        self.scrubber = W.IntSlider(0, min=0, max=0, description="Frame")
        self.play = W.Play(0, min=0, max=0, interval=int(1000 / self.fps), description="Play")
        W.jslink((self.play, "value"), (self.scrubber, "value"))
        self.message = W.HTML()  # the error line (or the last run's summary)
        self.run_button.on_click(lambda _: self.run())
        self.scrubber.observe(self._show_frame, "value")

    def _top(self) -> list:
        """The image source, when it is a widget (an ``ImageFitter``), to put above the settings."""
        return [self.source] if isinstance(self.source, W.Widget) else []

    def _player(self) -> W.HBox:
        return W.HBox([self.play, self.scrubber])

    def fitted(self):
        """The conditioning image now: the fitter's current fit, or the image given."""
        if isinstance(self.source, ImageFitter):
            if self.source.fitted is None:
                raise CogvizError("the ImageFitter has no image yet: choose a sample, upload one or give a path")
            return self.source.fitted
        return self.source

    def _fail(self, e: Exception) -> None:
        """Show a failure on the error line (cogviz's own message, or any other error with its type)."""
        self.error = one_line(e)
        self.progress.bar_style = "danger"
        self.message.value = f'<span style="color:#b00">{html.escape(self.error)}</span>'

    @contextlib.contextmanager
    def _running(self):
        """Run disabled and ``running`` set while the block computes; restored afterwards, also on error."""
        self.running = True
        self.run_button.disabled = True
        self.error = ""
        self.progress.bar_style = "info"
        try:
            yield
        finally:
            self.running = False
            self.run_button.disabled = False

    def _set_frames(self, frames, side: int) -> None:
        """Give the player these frames (uint8 ``(F, H, W, 3)``), each enlarged to ``side``; the scrubber
        stays where it was when the new video is as long."""
        self._frames_png = [to_png(big(np.ascontiguousarray(f), side)) for f in frames]
        self.scrubber.max = self.play.max = len(self._frames_png) - 1
        self.scrubber.value = min(self.scrubber.value, self.scrubber.max)
        self._show_frame()

    def _show_frame(self, *_):
        if self._frames_png:
            self.player_image.value = self._frames_png[self.scrubber.value]

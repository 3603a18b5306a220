"""The kinds that act on the transformer's input step by step, or on the guidance: a step window,
the image on every frame, a low-passed image early on, image guidance."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import Ablation, _holds_steps, _register, _step_window
from .where import Blur, Replace, Where, Zero, act

__all__ = ["StepWindow", "FillFrames", "LowPassImage", "ImageGuidance"]


@_register
@dataclass(frozen=True)
class StepWindow(Ablation):
    """The image channels only inside a window of the denoising steps (ComfyUI's
    ``start_percent``/``end_percent``): step ``i`` of ``S`` keeps them when
    ``start <= i / S < end``; outside, they are zero. Tests *when* the model reads the anchor:
    early steps set layout and colour, late steps refine detail.

    Each step's input is in distribution (zeros are the trained dropout), the switch between them
    within one video is not.
    """

    start: float = 0.0
    end: float = 1.0
    kind: ClassVar[str] = "step_window"
    in_distribution: ClassVar[str] = "each step yes (zeros are the dropout), the switch within a video no"

    def __post_init__(self):
        _step_window(self)

    def check(self, setup):
        _holds_steps(self, setup)

    def interventions(self, setup):  # zero outside the window: before it, and after it
        outside = [(0.0, self.start)] * (self.start > 0) + [(self.end, 1.0)] * (self.end < 1)
        return [act(Where("step/*/input", a, b, part="image"), Zero(), setup.steps, setup.channels)
                for a, b in outside]


@_register
@dataclass(frozen=True)
class FillFrames(Ablation):
    """The image latent in *every* latent frame instead of frame 0 only: does a repeated anchor
    freeze the video? Out of distribution: CogVideoX's training code has this option and trains
    with it off."""

    kind: ClassVar[str] = "fill_frames"
    in_distribution: ClassVar[str] = "no: the training code has the option and keeps it off"

    def interventions(self, setup):
        return [act(Where("z_img"), Replace(lambda z, ctx: z[:, :1].expand_as(z).clone()))]


@_register
@dataclass(frozen=True)
class LowPassImage(Ablation):
    """``z_img`` down-sampled by ``factor`` (area) and up-sampled back (bilinear) for the first
    ``until`` fraction of the steps: the early steps see only the image's coarse layout, which
    frees motion; later steps see all of it. A published recipe for CogVideoX-5b-I2V uses
    ``factor=0.25, until=0.04`` (the first 2 of 50 steps) to raise motion. Out of distribution."""

    factor: float = 0.25
    until: float = 0.04
    kind: ClassVar[str] = "low_pass_image"
    in_distribution: ClassVar[str] = "no: blurred latents were never trained"

    def __post_init__(self):
        self._number("factor", 0.0, 1.0, lo_open=True)
        self._number("until", 0.0, 1.0, lo_open=True)

    def interventions(self, setup):
        return [act(Where("step/*/input", 0.0, self.until, part="image"), Blur(self.factor), setup.steps,
                    setup.channels)]


@_register
@dataclass(frozen=True)
class ImageGuidance(Ablation):
    """Image-only classifier-free guidance: a third branch with ``z_img`` zeroed,

        pred = e(neg, ∅) + scale · (e(neg, img) − e(neg, ∅)) + s_txt · (e(txt, img) − e(neg, img))

    (without text guidance the first two terms use the prompt). ``scale=1`` is exactly the usual
    CFG; above 1 the video is pushed towards the image, below 1 away from it. Costs one more
    transformer branch per step (batch 3 instead of 2). Each branch is in distribution (the zeroed
    image is the trained dropout); the combination is an inference-time choice, as in SVD.

    ``scale_end``: a ramp, SVD's per-frame guidance — ``scale`` on the first latent frame, linear
    to ``scale_end`` on the last (SVD runs 1.0 -> 3.0); None: one scale for all frames.
    """

    scale: float = 1.0
    scale_end: float | None = None
    kind: ClassVar[str] = "image_guidance"
    in_distribution: ClassVar[str] = "each branch yes (zeroed image = dropout); the mix (and a ramp) is inference-time"
    later: ClassVar[tuple[str, ...]] = ("scale_end",)

    def __post_init__(self):
        self._number("scale", 0.0, 50.0)
        if self.scale_end is not None:
            self._number("scale_end", 0.0, 50.0)

    def image_guidance(self) -> float | tuple[float, float] | None:
        return self.scale if self.scale_end is None else (self.scale, self.scale_end)

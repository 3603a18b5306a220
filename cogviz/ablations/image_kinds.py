"""The kinds that change the image or its latent before the transformer reads it: zero, swap, end
frame, replaced frame, scale, noise, mask, shift, flip — each a preset of :mod:`.where` pairs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ..family import SPATIAL
from ..points import Intervention
from .base import (
    Ablation,
    _cells,
    _fitted_like_the_call,
    _holds_steps,
    _image_value,
    _is_number,
    _register,
    _source,
    _step_window,
)
from .where import Flip, Noise, Replace, Scale, Shift, Where, Zero, act

__all__ = ["Baseline", "ZeroImage", "SwapImage", "EndImage", "ReplaceFrame", "ScaleImage", "NoiseImage",
           "MaskImage", "ShiftImage", "FlipImage"]


@_register
@dataclass(frozen=True)
class Baseline(Ablation):
    """No change: the plain call, bit for bit. The reference every other ablation is measured against."""

    kind: ClassVar[str] = "baseline"
    in_distribution: ClassVar[str] = "yes: nothing changes"


@_register
@dataclass(frozen=True)
class ZeroImage(Ablation):
    """``z_img`` set to zeros at every step: tests how much of the video comes from the image at all.

    In distribution: CogVideoX I2V drops the image latent 5% of the time in training, so the model
    has learnt to generate without it (then the text alone decides what frame 0 looks like).
    """

    kind: ClassVar[str] = "zero_image"
    in_distribution: ClassVar[str] = "yes: the image latent is dropped 5% of the time in training"

    def interventions(self, setup):
        return [act(Where("z_img"), Zero())]


@_register
@dataclass(frozen=True)
class SwapImage(Ablation):
    """Another image's latent in place of the conditioning image's, with the same initial noise and
    the same posterior draw (the other image replaces the pixels just before the VAE encodes, on the
    same generator state). Tests whether the video follows the image it is given: frame 0 should
    match the swapped-in image, not the original.

    ``image``: a path or http(s) URL (kept as text), or an in-memory image (PIL, array, bytes,
    :class:`~cogviz.FittedImage`), kept as :class:`ImageRef` (PNG + SHA-256). It is fitted to the
    call's size with the call's fit mode. In distribution: it is an ordinary image.
    """

    image: Any
    kind: ClassVar[str] = "swap_image"
    in_distribution: ClassVar[str] = "yes: an ordinary image"

    def __post_init__(self):
        object.__setattr__(self, "image", _image_value(self, "image", self.image))

    def source(self):
        return _source(self.image)

    def interventions(self, setup):
        from ..encode import image_to_tensor

        other = _fitted_like_the_call(setup, self.source())

        def swap(pixels, ctx):
            return image_to_tensor(setup.pipe, other, setup.height, setup.width, pixels.device, pixels.dtype)

        return [act(Where("image.pixels"), Replace(swap))]


@_register
@dataclass(frozen=True)
class EndImage(Ablation):
    """An end frame: a second image, fitted and encoded like the first, placed (times ``strength``) on
    the **last** latent frame of ``z_img``; the frames between stay zero. Keyframe conditioning as
    the ComfyUI CogVideoX wrapper does it. Out of distribution: CogVideoX I2V was trained with the
    image on latent frame 0 only, so what the model does with a last-frame latent is the question.
    ``image``: as :class:`SwapImage`'s. (Its latent is the posterior's mode: no random draw.)
    """

    image: Any
    strength: float = 1.0
    kind: ClassVar[str] = "end_image"
    in_distribution: ClassVar[str] = "no: trained with the image on latent frame 0 only"

    def __post_init__(self):
        object.__setattr__(self, "image", _image_value(self, "image", self.image))
        self._number("strength", 0.0, 10.0)

    def interventions(self, setup):
        from ..encode import encode_pixels, image_to_tensor

        other, end = _fitted_like_the_call(setup, _source(self.image)), []

        def place(z, ctx):  # z_img's last latent frame (B, 1, C, h, w); encoded in the sampler, once per call
            if not end:
                px = image_to_tensor(setup.pipe, other, setup.height, setup.width, z.device, z.dtype)
                end.append(encode_pixels(setup.pipe, px, 1, sample=False)[:, :1])
            return (self.strength * end[0]).expand_as(z).to(z.dtype)

        return [act(Where("z_img", frames=(-1,)), Replace(place))]


@_register
@dataclass(frozen=True)
class ReplaceFrame(Ablation):
    """Replacement conditioning (LTX-Video, Wan 2.2 TI2V, HunyuanVideo-I2V's ``token_replace``), on a
    model trained for concatenation: during the steps ``start <= i / S < end``, latent frame 0 of
    the noisy video latent ``z_t`` is replaced, as each step begins, by the image's latent noised to
    that step's timestep (one fixed noise draw, ``seed``) — RePaint-style — and, when the window
    reaches the end, by the clean image latent after the last step. With :class:`ZeroImage` it is
    replacement alone, without it both mechanisms at once. The image latent is the posterior's mode
    of the call's image as fitted (after any pixel ablation). Out of distribution: the model never
    saw a frame it did not denoise itself.
    """

    start: float = 0.0
    end: float = 1.0
    seed: int = 0
    kind: ClassVar[str] = "replace_frame"
    in_distribution: ClassVar[str] = "no: CogVideoX denoises every latent frame itself in training"

    def __post_init__(self):
        _step_window(self)
        self._number("seed", 0, 2**63 - 1, integer=True)

    def check(self, setup):
        _holds_steps(self, setup)

    def interventions(self, setup):
        from ..encode import encode_pixels
        from ..family import family_of

        pipe, state = setup.pipe, {}
        family = family_of(pipe)
        first = family.latent_frames(setup.num_frames)[1]  # 1.5's padding frames come first

        def keep(pixels, ctx):  # the image as the call encodes it: its latent, in the video's scaling
            z = encode_pixels(pipe, pixels, 1, sample=False)[:, 0]
            state["clean"] = family.video_latent(z, pipe.vae_scaling_factor_image)
            g = torch.Generator().manual_seed(self.seed)
            state["noise"] = torch.randn(z.shape, generator=g).to(z.device, z.dtype)
            return pixels

        def noised(z, ctx):  # z_t's image frame (B, 1, C, h, w), noised to this step's timestep
            t = ctx.timestep.reshape(1) if torch.is_tensor(ctx.timestep) else torch.tensor([ctx.timestep])
            return pipe.scheduler.add_noise(state["clean"], state["noise"], t.to(z.device))[:, None] \
                .expand_as(z).to(z.dtype)

        def clean(z, ctx):
            return state["clean"][:, None].expand_as(z).to(z.dtype)

        return [Intervention("image.pixels", keep),
                act(Where("step/*/z_t", self.start, self.end, frames=(first,)), Replace(noised), setup.steps),
                *([act(Where("latents.final", frames=(first,)), Replace(clean))] if self.end >= 1.0 else [])]


@_register
@dataclass(frozen=True)
class ScaleImage(Ablation):
    """``z_img`` multiplied by ``alpha``: how the anchor's strength depends on the latent's magnitude
    (ComfyUI's latent ``strength``).

    ``alpha`` multiplies ``z_img`` *as the transformer reads it*, i.e. after the VAE's scaling:
    CogVideoX 1.0 feeds ``0.7 * latent``, CogVideoX 1.5 feeds ``latent / 0.7`` (as diffusers does; the
    official SAT sampler feeds the unscaled latent, zai-org/CogVideo#605, #761), so 1.5's image latent is already 1/0.49 ≈ 2.04x a 1.0-style scaled
    latent. ``alpha=1`` leaves either model untouched; ``alpha=0`` equals :class:`ZeroImage`.
    In distribution only at 0 and 1.
    """

    alpha: float
    kind: ClassVar[str] = "scale_image"
    in_distribution: ClassVar[str] = "only at alpha 0 (dropped) and 1 (unchanged)"

    def __post_init__(self):
        self._number("alpha", -10.0, 10.0)

    def interventions(self, setup):
        return [act(Where("z_img"), Scale(self.alpha))]


@_register
@dataclass(frozen=True)
class NoiseImage(Ablation):
    """Gaussian noise on the image, in pixel or latent space: how much detail the anchor needs
    (ComfyUI's and SVD's ``noise_aug_strength``).

    ``space="pixel"``: ``pixels + sigma * N(0, 1)`` on the image in [-1, 1] *before* encoding,
    unclipped — exactly CogVideoX's training augmentation, whose sigma is drawn from
    ``exp(N(-3, 0.5))`` (median 0.05; 95% within 0.019-0.13): in distribution there, beyond it not.
    ``space="latent"``: ``z_img[frame 0] + sigma * N(0, 1)`` after encoding (out of distribution).
    ``schedule="timestep"`` (latent space only): at every step, noise of ``sigma * t / 1000`` (``t``
    the step's raw timestep) drawn afresh onto the image frame of the transformer's input — more
    noise while the video is noisy, none at the end: the "conditional image leakage" remedy.
    The noise comes from its own generator (``seed``), never from the call's: the initial noise
    and the posterior draw stay the same.
    """

    sigma: float
    space: str = "pixel"
    seed: int = 0
    schedule: str = "constant"
    kind: ClassVar[str] = "noise_image"
    choices: ClassVar[dict] = {"space": ("pixel", "latent"), "schedule": ("constant", "timestep")}
    in_distribution: ClassVar[str] = ("pixel space with sigma up to ~0.13: yes (training augmentation); latent "
                                      "(constant or timestep-scaled): no")
    later: ClassVar[tuple[str, ...]] = ("schedule",)

    def __post_init__(self):
        self._number("sigma", 0.0, 10.0)
        self._choice("space", self.choices["space"])
        self._number("seed", 0, 2**63 - 1, integer=True)
        self._choice("schedule", self.choices["schedule"])
        if self.schedule == "timestep" and self.space != "latent":
            self._fail("schedule", self.schedule, "the timestep schedule acts on the image latent at every step: "
                                                  "use space='latent'")

    def interventions(self, setup):
        if self.schedule == "timestep":  # the image frame's image channels, the same draw in every row
            return [act(Where("step/*/input", part="image", frames=(0,)),
                        Noise(self.sigma, self.seed, per_step=True, same_rows=True), setup.steps, setup.channels)]
        if self.space == "pixel":
            return [act(Where("image.pixels"), Noise(self.sigma, self.seed))]
        return [act(Where("z_img", frames=(0,)), Noise(self.sigma, self.seed))]  # latent frame 0 holds the image


@_register
@dataclass(frozen=True)
class MaskImage(Ablation):
    """Remove one region of ``z_img`` (``keep=False``) or keep only it (``keep=True``): which parts
    of the image the video takes from the anchor, and which it invents.

    ``box`` is ``[x0, y0, x1, y1]`` in fitted-image pixels (end-exclusive); it maps to every latent
    cell it touches (8 x 8 pixels a cell). Out of distribution: training drops the whole latent,
    never a part of it.
    """

    box: tuple
    keep: bool = False
    kind: ClassVar[str] = "mask_image"
    in_distribution: ClassVar[str] = "no: training drops the whole latent, never a region"

    def __post_init__(self):
        b = self.box
        if (not isinstance(b, (list, tuple)) or len(b) != 4 or not all(_is_number(v) and float(v) == int(v)
                                                                      for v in b)):
            self._fail("box", b, "expected [x0, y0, x1, y1]: four whole numbers, fitted-image pixels")
        b = tuple(int(v) for v in b)
        if b[0] < 0 or b[1] < 0 or b[0] >= b[2] or b[1] >= b[3]:
            self._fail("box", list(b), "expected 0 <= x0 < x1 and 0 <= y0 < y1 (pixels, end-exclusive)")
        object.__setattr__(self, "box", b)
        if not isinstance(self.keep, (bool, np.bool_)):
            self._fail("keep", self.keep, "expected true (keep only the box) or false (remove the box)")
        object.__setattr__(self, "keep", bool(self.keep))

    def check(self, setup):
        x0, y0, x1, y1 = self.box
        if x1 > setup.width or y1 > setup.height:
            self._fail("box", list(self.box), f"outside the {setup.width}x{setup.height} fitted image: expected "
                                              f"0 <= x0 < x1 <= {setup.width} and 0 <= y0 < y1 <= {setup.height}")

    def interventions(self, setup):
        return [act(Where("z_img", box=_cells(self.box, setup.height, setup.width), outside=self.keep), Zero())]


@_register
@dataclass(frozen=True)
class ShiftImage(Ablation):
    """``z_img`` moved by (``dx``, ``dy``) pixels (right and down are positive; whole latent cells, so
    multiples of 8), vacated cells zero: where does the video follow — the shifted latent, or the
    text? Out of distribution near the border (half-empty latents were never trained)."""

    dx: int = 0
    dy: int = 0
    kind: ClassVar[str] = "shift_image"
    in_distribution: ClassVar[str] = "no: the vacated border is an empty latent region"

    def __post_init__(self):
        for name in ("dx", "dy"):
            self._number(name, integer=True)
            if getattr(self, name) % SPATIAL:
                self._fail(name, getattr(self, name), f"expected a multiple of {SPATIAL} pixels (one latent cell)")

    def check(self, setup):
        if abs(self.dx) >= setup.width or abs(self.dy) >= setup.height:
            self._fail("dx" if abs(self.dx) >= setup.width else "dy", (self.dx, self.dy),
                       f"the shift moves the whole {setup.width}x{setup.height} image out of view")

    def interventions(self, setup):
        return [act(Where("z_img"), Shift(self.dx // SPATIAL, self.dy // SPATIAL))]


@_register
@dataclass(frozen=True)
class FlipImage(Ablation):
    """``z_img`` mirrored (``axis="horizontal"``: left-right, ``"vertical"``: up-down) in latent space:
    does the video follow the latent's layout? Near the distribution: a mirrored latent is close
    to, not equal to, the latent of the mirrored image."""

    axis: str = "horizontal"
    kind: ClassVar[str] = "flip_image"
    choices: ClassVar[dict] = {"axis": ("horizontal", "vertical")}
    in_distribution: ClassVar[str] = "near: close to the latent of a mirrored image"

    def __post_init__(self):
        self._choice("axis", self.choices["axis"])

    def interventions(self, setup):
        return [act(Where("z_img"), Flip(self.axis))]

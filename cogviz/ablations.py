"""Step 5 of the flow: ablations — a change of the image conditioning, as data.

Each ablation is a frozen dataclass: it checks its parameters when it is built (before any
compute), serializes to a JSON-able dict (``to_dict`` / :func:`from_dict`, a registry keyed by
``kind``; never pickle) and, for one :func:`cogviz.generate` call, turns into sampler
interventions at the named points (``image.pixels``, ``z_img``, ``step/{i}/input``) — or, for
:class:`ImageGuidance`, into a third classifier-free-guidance branch. A list is applied in order.
Nothing stays attached to the pipeline; the list is recorded in ``trace.meta["ablations"]``.

A controlled comparison shares everything else: every ablation keeps the initial noise and the
posterior draw of ``z_img`` (pixel-space changes act *before* the VAE encodes, on the same
generator state; random ablations draw from their own ``seed``).

What "in distribution" means here: CogVideoX I2V was trained with the image latent on latent frame
0 only, dropped (zeroed) 5% of the time, and with small pixel noise on the image,
``sigma ~ exp(N(-3, 0.5))`` in [-1, 1] pixel units. An ablation that stays inside that asks the
model a question it was trained on; one outside it probes how the model extrapolates.

>>> a = NoiseImage(0.05, space="pixel")
>>> from_dict(a.to_dict()) == a
True
>>> a.to_dict()
{'kind': 'noise_image', 'sigma': 0.05, 'space': 'pixel', 'seed': 0}
"""
from __future__ import annotations

import base64
import difflib
import hashlib
import io
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .errors import AblationError, CogvizError
from .family import SPATIAL
from .inside import GROUPS
from .points import Intervention, in_window
from .sampler import Conditioning, Setup

__all__ = ["Ablation", "Setup", "ImageRef", "KINDS", "from_dict", "resolve", "compile_ablations", "label",
           "Baseline", "ZeroImage", "SwapImage", "ScaleImage", "NoiseImage", "MaskImage", "ShiftImage",
           "FlipImage", "StepWindow", "FillFrames", "LowPassImage", "ImageGuidance", "AttentionKnockout",
           "ScaleAttention", "PatchActivations"]

KINDS: dict[str, type[Ablation]] = {}


def _register(cls):
    KINDS[cls.kind] = cls
    return cls


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


class Ablation:
    """Base of every ablation: one kind, its parameters as dataclass fields."""

    kind: ClassVar[str]
    in_distribution: ClassVar[str]  # one line: inside the training distribution or not, and why
    choices: ClassVar[dict] = {}  # the accepted values of each text parameter
    #: parameters added after a kind first shipped: left out of its dict and label while at their
    #: default, so an older ablation keeps its dict, its label and its sweeps' run ids
    later: ClassVar[tuple[str, ...]] = ()

    # -- parameters ---------------------------------------------------------------------------
    def _fail(self, name: str, value, accepted: str):
        raise AblationError(f"{self.kind}.{name}={value!r}: {accepted}")

    def _number(self, name: str, lo: float | None = None, hi: float | None = None, *, lo_open=False,
                hi_open=False, integer=False) -> None:
        v = getattr(self, name)
        rng = (f"{'(' if lo_open else '['}{'-inf' if lo is None else lo}, "
               f"{'inf' if hi is None else hi}{')' if hi_open else ']'}")
        accepted = f"expected {'a whole number' if integer else 'a number'} in {rng}"
        if not _is_number(v) or (integer and float(v) != int(v)) or not math.isfinite(float(v)):
            self._fail(name, v, accepted)
        if ((lo is not None and (v < lo or (lo_open and v == lo)))
                or (hi is not None and (v > hi or (hi_open and v == hi)))):
            self._fail(name, v, accepted)
        object.__setattr__(self, name, int(v) if integer else float(v))

    def _choice(self, name: str, choices: tuple[str, ...]) -> None:
        v = getattr(self, name)
        if v not in choices:
            self._fail(name, v, f"expected one of {', '.join(map(repr, choices))}")

    # -- data ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """``{"kind": ..., **parameters}``, JSON-serializable; :func:`from_dict` reverses it."""
        d = {"kind": self.kind}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in self.later and v == f.default:
                continue
            d[f.name] = v.to_dict() if isinstance(v, ImageRef) else list(v) if isinstance(v, tuple) else v
        return d

    def label(self) -> str:
        """A short name for legends: ``noise_image(sigma=0.05, space=pixel)``."""
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if (f.name == "seed" and v == 0) or (f.name in self.later and v == f.default):
                continue
            v = v.label() if isinstance(v, ImageRef) else Path(v).name if f.name in ("image", "source") else v
            parts.append(f"{f.name}={v:g}" if isinstance(v, float) else f"{f.name}={v}")
        return f"{self.kind}({', '.join(parts)})" if parts else self.kind

    # -- application --------------------------------------------------------------------------
    def check(self, setup: Setup) -> None:
        """Checks that need the call's size or steps; runs before any compute."""

    def interventions(self, setup: Setup) -> list:
        """The sampler interventions that carry this ablation out for one call."""
        return []

    def image_guidance(self) -> float | None:
        """The image-guidance scale this ablation sets (None: it sets none)."""
        return None

    def attention_edits(self) -> list:
        """The attention edits (:class:`~cogviz.inside.AttentionEdit`) this ablation makes."""
        return []

    def sources(self, setup: Setup) -> list:
        """Companion conditionings whose rows this ablation reads inside the transformer."""
        return []


# -- image references -------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRef:
    """An in-memory image as data: the PNG bytes and their SHA-256 (a path or URL is kept as text)."""

    sha256: str
    png: bytes

    @classmethod
    def of(cls, image) -> ImageRef:
        from PIL import Image

        from .fit import FittedImage
        from .image import load_image

        if isinstance(image, FittedImage):
            image = image.image
        img = image if isinstance(image, Image.Image) else load_image(image)
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="PNG")
        data = buf.getvalue()
        return cls(hashlib.sha256(data).hexdigest(), data)

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "png_base64": base64.b64encode(self.png).decode("ascii")}

    @classmethod
    def from_dict(cls, d: dict) -> ImageRef:
        try:
            data = base64.b64decode(d["png_base64"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise AblationError("swap_image.image: an embedded image needs 'sha256' and 'png_base64' "
                                f"(base64 PNG); got keys {sorted(d)}") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != d.get("sha256"):
            raise AblationError(f"swap_image.image: sha256 {d.get('sha256')!r} does not match the embedded "
                                f"PNG ({digest}): the data is corrupt or was edited")
        _check_embedded_png(data)
        return cls(digest, data)

    def image(self):
        from .image import load_image

        return load_image(self.png)  # the loader's caps and checks, as for any other source

    def label(self) -> str:
        return f"sha256:{self.sha256[:8]}"


def _check_embedded_png(data: bytes) -> None:
    """An embedded image read from JSON is a PNG within the loader's pixel cap, checked from its
    header before anything is decoded (ablation JSON may come from someone else)."""
    from PIL import Image, UnidentifiedImageError

    from .image import DEFAULT_MAX_PIXELS

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (w, h) = im.format, im.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        fmt, w, h = None, 0, 0
    if fmt != "PNG":
        raise AblationError("swap_image.image: png_base64 does not hold a PNG image")
    if w * h > DEFAULT_MAX_PIXELS:
        raise AblationError(f"swap_image.image: the embedded PNG is {w}x{h} = {w * h} pixels, over the cap of "
                            f"{DEFAULT_MAX_PIXELS}; embed the fitted image (the model's size), not a huge one")


def _image_value(self, name: str, v):
    """An image field as data: a path or URL kept as text (the file must exist), an in-memory image as
    :class:`ImageRef`, an ImageRef's dict read back."""
    if isinstance(v, dict):
        v = ImageRef.from_dict(v)
    elif isinstance(v, Path):
        v = str(v)
    elif not isinstance(v, (str, ImageRef)):
        try:
            v = ImageRef.of(v)
        except CogvizError as e:
            self._fail(name, type(v).__name__, f"expected a path, an http(s) URL or an image ({e})")
    if isinstance(v, str) and not v.startswith(("http://", "https://")) and not Path(v).expanduser().is_file():
        self._fail(name, v, "no such file; expected a path to an image file, an http(s) URL, or an in-memory image")
    return v


# -- the kinds --------------------------------------------------------------------------------
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
        return [Intervention("z_img", lambda z, ctx: torch.zeros_like(z))]


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
        from .encode import image_to_tensor

        other = _fitted_like_the_call(setup, self.source())

        def swap(pixels, ctx):
            return image_to_tensor(setup.pipe, other, setup.height, setup.width, pixels.device, pixels.dtype)

        return [Intervention("image.pixels", swap)]


def _source(image):
    """What ``load_image`` takes for an image parameter (a path or URL as text, or the in-memory image)."""
    return image.image() if isinstance(image, ImageRef) else image


def _fitted_like_the_call(setup, source):
    """Another image, loaded and fitted to the call's size with the call's fit mode (a PIL image);
    a bad path fails here, when the ablations compile, before any compute."""
    from .fit import fit_image
    from .image import load_image

    return fit_image(load_image(source), (setup.height, setup.width), setup.fit).image


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
        from .encode import encode_pixels, image_to_tensor

        other, end = _fitted_like_the_call(setup, _source(self.image)), []

        def place(z, ctx):  # encoded inside the sampler (no autograd), once per call
            if not end:
                px = image_to_tensor(setup.pipe, other, setup.height, setup.width, z.device, z.dtype)
                end.append(encode_pixels(setup.pipe, px, 1, sample=False)[:, 0])
            out = z.clone()
            out[:, -1] = self.strength * end[0]
            return out

        return [Intervention("z_img", place)]


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
        from .encode import encode_pixels
        from .family import family_of

        pipe, state = setup.pipe, {}
        family = family_of(pipe)
        first = family.latent_frames(setup.num_frames)[1]  # 1.5's padding frames come first

        def keep(pixels, ctx):  # the image as the call encodes it: its latent, in the video's scaling
            z = encode_pixels(pipe, pixels, 1, sample=False)[:, 0]
            state["clean"] = family.video_latent(z, pipe.vae_scaling_factor_image)
            g = torch.Generator().manual_seed(self.seed)
            state["noise"] = torch.randn(z.shape, generator=g).to(z.device, z.dtype)
            return pixels

        def replace(z, ctx):
            if not in_window(ctx.step, setup.steps, self.start, self.end):
                return z
            out = z.clone()
            t = ctx.timestep.reshape(1) if torch.is_tensor(ctx.timestep) else torch.tensor([ctx.timestep])
            out[:, first] = pipe.scheduler.add_noise(state["clean"], state["noise"], t.to(z.device)).to(z.dtype)
            return out

        def clean(z, ctx):
            out = z.clone()
            out[:, first] = state["clean"].to(z.dtype)
            return out

        return [Intervention("image.pixels", keep), Intervention("step/*/z_t", replace),
                *([Intervention("latents.final", clean)] if self.end >= 1.0 else [])]


@_register
@dataclass(frozen=True)
class ScaleImage(Ablation):
    """``z_img`` multiplied by ``alpha``: how the anchor's strength depends on the latent's magnitude
    (ComfyUI's latent ``strength``).

    ``alpha`` multiplies ``z_img`` *as the transformer reads it*, i.e. after the VAE's scaling:
    CogVideoX 1.0 feeds ``0.7 * latent``, CogVideoX 1.5 feeds ``latent / 0.7`` (a training quirk its
    maintainers confirmed), so 1.5's image latent is already 1/0.49 ≈ 2.04x a 1.0-style scaled
    latent. ``alpha=1`` leaves either model untouched; ``alpha=0`` equals :class:`ZeroImage`.
    In distribution only at 0 and 1.
    """

    alpha: float
    kind: ClassVar[str] = "scale_image"
    in_distribution: ClassVar[str] = "only at alpha 0 (dropped) and 1 (unchanged)"

    def __post_init__(self):
        self._number("alpha", -10.0, 10.0)

    def interventions(self, setup):
        a = self.alpha
        return [Intervention("z_img", lambda z, ctx: z * a)]


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
        def noise(shape, like, step=0):
            g = torch.Generator().manual_seed(self.seed + 1_000_003 * step)  # on the CPU: the same on any device
            return torch.randn(shape, generator=g).to(like.device, like.dtype) * self.sigma

        if self.schedule == "timestep":
            def per_step(x, ctx):  # the image frame's image channels, the same draw in every row
                out = x.clone()
                out[:, 0, setup.channels:] += noise(x[:1, 0, setup.channels:].shape, x, ctx.step + 1) * (
                    float(ctx.timestep) / 1000)
                return out

            return [Intervention("step/*/input", per_step)]
        if self.space == "pixel":
            return [Intervention("image.pixels", lambda x, ctx: x + noise(x.shape, x))]

        def latent(z, ctx):
            out = z.clone()
            out[:, 0] += noise(z[:, 0].shape, z)  # latent frame 0 holds the image
            return out

        return [Intervention("z_img", latent)]


def _cells(box, height, width):
    """A pixel box (x0, y0, x1, y1) -> the latent cells it touches (c0, r0, c1, r1), end-exclusive."""
    x0, y0, x1, y1 = box
    return (x0 // SPATIAL, y0 // SPATIAL, -(-x1 // SPATIAL), -(-y1 // SPATIAL))


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
        c0, r0, c1, r1 = _cells(self.box, setup.height, setup.width)

        def mask(z, ctx):
            inside = torch.zeros(z.shape[-2:], dtype=torch.bool, device=z.device)  # (h, w)
            inside[r0:r1, c0:c1] = True
            return z * (inside if self.keep else ~inside).to(z.dtype)

        return [Intervention("z_img", mask)]


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
        cx, cy = self.dx // SPATIAL, self.dy // SPATIAL

        def shift(z, ctx):
            out = torch.zeros_like(z)
            h, w = z.shape[-2:]
            out[..., max(cy, 0):h + min(cy, 0), max(cx, 0):w + min(cx, 0)] = \
                z[..., max(-cy, 0):h - max(cy, 0), max(-cx, 0):w - max(cx, 0)]
            return out

        return [Intervention("z_img", shift)]


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
        dim = -1 if self.axis == "horizontal" else -2
        return [Intervention("z_img", lambda z, ctx: torch.flip(z, dims=(dim,)))]


def _step_window(self) -> None:
    """``start`` < ``end``, fractions of the steps."""
    self._number("start", 0.0, 1.0)
    self._number("end", 0.0, 1.0)
    if self.start >= self.end:
        self._fail("end", self.end, f"expected start < end within [0, 1]; start is {self.start}")


def _holds_steps(self, setup) -> None:
    """The window [start, end) must hold at least one of the call's steps."""
    if not any(in_window(i, setup.steps, self.start, self.end) for i in range(setup.steps)):
        self._fail("end", self.end, f"the window [{self.start}, {self.end}) holds none of the {setup.steps} "
                                    "steps: widen it or use more steps")


def _image_channels(x: torch.Tensor, setup: Setup, fn) -> torch.Tensor:
    out = x.clone()
    out[:, :, setup.channels:] = fn(x[:, :, setup.channels:])
    return out


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

    def interventions(self, setup):
        def window(x, ctx):
            if in_window(ctx.step, setup.steps, self.start, self.end):
                return x
            return _image_channels(x, setup, torch.zeros_like)

        return [Intervention("step/*/input", window)]


@_register
@dataclass(frozen=True)
class FillFrames(Ablation):
    """The image latent in *every* latent frame instead of frame 0 only: does a repeated anchor
    freeze the video? Out of distribution: CogVideoX's training code has this option and trains
    with it off."""

    kind: ClassVar[str] = "fill_frames"
    in_distribution: ClassVar[str] = "no: the training code has the option and keeps it off"

    def interventions(self, setup):
        return [Intervention("z_img", lambda z, ctx: z[:, :1].expand_as(z).clone())]


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
        from einops import rearrange
        from torch.nn import functional as F
        def blur(img):  # (B, F, C, h, w)
            b, f, c, h, w = img.shape
            x = rearrange(img.float(), "b f c h w -> (b f) c h w")
            small = F.interpolate(x, size=(max(1, round(h * self.factor)), max(1, round(w * self.factor))),
                                  mode="area")
            x = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
            return rearrange(x, "(b f) c h w -> b f c h w", b=b).to(img.dtype)

        def low_pass(x, ctx):
            if ctx.step < self.until * setup.steps:
                return _image_channels(x, setup, blur)
            return x

        return [Intervention("step/*/input", low_pass)]


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


def _tokens(self, name: str) -> None:
    """A token group: "image", "later", "text", or a list of latent-frame indices (kept as a tuple)."""
    v = getattr(self, name)
    if isinstance(v, str):
        if v not in GROUPS:
            close = difflib.get_close_matches(v, GROUPS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self._fail(name, v, f"{hint}expected 'image', 'later', 'text' or a list of latent-frame indices")
        return
    if (not isinstance(v, (list, tuple)) or not v
            or not all(_is_number(f) and float(f) == int(f) and f >= 0 for f in v)):
        self._fail(name, v, "expected 'image', 'later', 'text' or a list of latent-frame indices (whole numbers >= 0)")
    object.__setattr__(self, name, tuple(int(f) for f in v))


def _layers(self) -> None:
    """``layers``: "all" or a list of block indices (kept as a tuple)."""
    v = self.layers
    if v == "all":
        return
    if (not isinstance(v, (list, tuple)) or not v
            or not all(_is_number(f) and float(f) == int(f) and f >= 0 for f in v)):
        self._fail("layers", v, "expected 'all' or a list of block indices (whole numbers >= 0)")
    object.__setattr__(self, "layers", tuple(int(f) for f in v))


class _AttentionAblation(Ablation):
    """Shared checks of the ablations that edit attention inside the transformer."""

    def _check_fields(self) -> None:
        _layers(self)
        _tokens(self, "queries")
        _tokens(self, "keys")
        _step_window(self)

    def check(self, setup):
        from .inside import check_blocks

        check_blocks(setup.pipe, () if self.layers == "all" else self.layers, f"{self.kind}.layers")
        _holds_steps(self, setup)

    def _edit(self, factor: float) -> list:
        from .inside import AttentionEdit

        return [AttentionEdit(self.queries, self.keys, factor, None if self.layers == "all" else self.layers,
                              self.start, self.end)]


@_register
@dataclass(frozen=True)
class AttentionKnockout(_AttentionAblation):
    """In ``layers`` and the ``[start, end)`` fraction of the steps, the tokens of ``queries`` cannot
    attend to the tokens of ``keys`` (masked before the softmax). The default cuts the one road the
    image has to the later frames: their attention to the image frame. ``queries``/``keys``:
    ``"image"`` (the token frame holding the image), ``"later"`` (every other), ``"text"``, or a list
    of latent-frame indices; ``layers``: ``"all"`` or a list of block indices. Out of distribution."""

    layers: Any = "all"
    queries: Any = "later"
    keys: Any = "image"
    start: float = 0.0
    end: float = 1.0
    kind: ClassVar[str] = "attention_knockout"
    in_distribution: ClassVar[str] = "no: the model never ran with attention cut"

    def __post_init__(self):
        self._check_fields()

    def attention_edits(self) -> list:
        return self._edit(0.0)


@_register
@dataclass(frozen=True)
class ScaleAttention(_AttentionAblation):
    """Attention from ``queries`` to ``keys`` multiplied by ``factor`` and renormalized (``log(factor)``
    added to those logits before the softmax): more or less reliance on the image frame. ``factor=1``
    is the baseline, ``factor=0`` the knockout. Fields as :class:`AttentionKnockout`'s."""

    factor: float = 1.0
    layers: Any = "all"
    queries: Any = "later"
    keys: Any = "image"
    start: float = 0.0
    end: float = 1.0
    kind: ClassVar[str] = "scale_attention"
    in_distribution: ClassVar[str] = "only at factor 1"

    def __post_init__(self):
        self._number("factor", 0.0, 100.0)
        self._check_fields()

    def attention_edits(self) -> list:
        return self._edit(self.factor)


@_register
@dataclass(frozen=True)
class PatchActivations(Ablation):
    """Activation patching: after each block of ``layers``, in the ``[start, end)`` fraction of the
    steps, the hidden states of the tokens of ``frames`` are replaced by the ones the same call
    computes for the ``source`` image (same prompt, seed and noise: its rows ride in the same batch).
    ``frames``: ``"image"`` (the image's token frame), ``"later"``, or a list of latent-frame
    indices; ``source``: a path, URL or in-memory image (kept as :class:`ImageRef`), fitted like the
    conditioning image. Where does the picture get decided? Patch block by block and watch frame 0."""

    source: Any
    layers: Any = "all"
    frames: Any = "image"
    start: float = 0.0
    end: float = 1.0
    kind: ClassVar[str] = "patch_activations"
    in_distribution: ClassVar[str] = "no: hidden states from another run"

    def __post_init__(self):
        object.__setattr__(self, "source", _image_value(self, "source", self.source))
        _layers(self)
        _tokens(self, "frames")
        if self.frames == "text":
            self._fail("frames", "text", "the hidden-state points hold the video tokens: expected 'image', 'later' "
                                         "or a list of latent-frame indices")
        _step_window(self)

    check = _AttentionAblation.check

    def sources(self, setup) -> list:
        """The source image's rows, as a companion conditioning (its pixels before the VAE encodes)."""
        swap = SwapImage(self.source)  # its dict keys the companion: one row per source image in a forward
        return [Conditioning(tuple(swap.interventions(setup)), meta=(swap.to_dict(),))]

    def interventions(self, setup):
        from .family import token_frame
        from .points import _step_of

        layers = range(len(setup.pipe.transformer.transformer_blocks)) if self.layers == "all" else self.layers

        def patch(h, ctx):  # (rows, F', h', w', D); the source's rows are ctx.sources[0]
            if not in_window(_step_of(ctx.name), setup.steps, self.start, self.end):
                return h
            f = slice(0, 1) if self.frames == "image" else slice(1, None) if self.frames == "later" else \
                sorted({token_frame(setup.pipe, i) for i in self.frames})
            out = h.clone()
            out[:, f] = ctx.sources[0][:, f]
            return out

        return [Intervention(f"step/*/block/{layer}/hidden", patch) for layer in layers]


def from_dict(d: dict) -> Ablation:
    """The ablation a ``to_dict()`` (or hand-written JSON) describes.

    >>> from_dict({"kind": "step_window", "start": 0.0, "end": 0.5})
    StepWindow(start=0.0, end=0.5)
    """
    if not isinstance(d, dict):
        raise AblationError(f"an ablation is a dict like {{'kind': 'zero_image'}}; got {type(d).__name__}")
    kind = d.get("kind")
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise AblationError(f"kind={kind!r}: unknown ablation; {hint}expected one of {', '.join(KINDS)}")
    cls = KINDS[kind]
    names = {f.name for f in fields(cls)}
    extra = sorted(set(d) - names - {"kind"})
    if extra:
        raise AblationError(f"{kind}: unknown field(s) {', '.join(extra)}; "
                            f"{kind} takes {', '.join(sorted(names)) or 'no parameters'}")
    return cls(**{k: v for k, v in d.items() if k != "kind"})


def resolve(ablations=(), *, image_strength=None, image_noise=None, image_window=None,
            image_guidance=None) -> tuple[Ablation, ...]:
    """The ablations of one call: the list (ablations or their dicts) in order, then the everyday knobs
    (``image_noise`` -> pixel :class:`NoiseImage`, ``image_strength`` -> :class:`ScaleImage`,
    ``image_window=(start, end)`` -> :class:`StepWindow`, ``image_guidance`` -> :class:`ImageGuidance`)."""
    if isinstance(ablations, (Ablation, dict)):
        ablations = [ablations]
    out = []
    for a in ablations:
        if isinstance(a, dict):
            a = from_dict(a)
        if not isinstance(a, Ablation):
            raise AblationError(f"ablations: expected Ablation objects or dicts, got {type(a).__name__}")
        out.append(a)
    if image_noise is not None:
        out.append(NoiseImage(image_noise, space="pixel"))
    if image_strength is not None:
        out.append(ScaleImage(image_strength))
    if image_window is not None:
        if not isinstance(image_window, (tuple, list)) or len(image_window) != 2:
            raise AblationError(f"image_window={image_window!r}: expected (start, end), fractions of the steps")
        out.append(StepWindow(*image_window))
    if image_guidance is not None:
        out.append(ImageGuidance(image_guidance))
    if sum(isinstance(a, ImageGuidance) for a in out) > 1:
        raise AblationError("image_guidance given more than once: one call has one image guidance scale")
    return tuple(out)


def compile_ablations(ablations, setup: Setup) -> Conditioning:
    """Ablations (objects or dicts, in order) -> what the sampler accepts for one call: each is checked
    against the call's size and steps, then turned into interventions and an image-guidance scale."""
    ablations = resolve(ablations)
    for a in ablations:
        a.check(setup)
    scales = [s for a in ablations if (s := a.image_guidance()) is not None]
    scale = scales[0] if scales else None
    # a source runs with the owner's guidance, so its rows have the owner's roles, row for row
    sources = tuple(replace(s, image_guidance=scale) for a in ablations for s in a.sources(setup))
    if len(sources) > 1:
        raise AblationError("patch_activations given more than once: one call patches from one source image")
    return Conditioning(tuple(iv for a in ablations for iv in a.interventions(setup)), scale,
                        tuple(a.to_dict() for a in ablations), tuple(e for a in ablations for e in a.attention_edits()),
                        sources)


def label(ablations) -> str:
    """A legend label for a list of ablations: ``"baseline"`` when empty."""
    ablations = resolve(ablations)
    return " + ".join(a.label() for a in ablations) or "baseline"

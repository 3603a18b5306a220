"""The base of every ablation kind: parameters checked when built, ``to_dict`` / ``label`` as data,
images as :class:`ImageRef` (PNG bytes and their SHA-256), and the field checks the kinds share."""
from __future__ import annotations

import base64
import difflib
import hashlib
import io
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..errors import AblationError, CogvizError
from ..family import SPATIAL
from ..inside import GROUPS
from ..points import in_window

if TYPE_CHECKING:
    from ..plan import CallPlan as Setup

__all__ = ["Ablation", "ImageRef", "KINDS"]

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

        from ..fit import FittedImage
        from ..image import load_image

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
        from ..image import load_image

        return load_image(self.png)  # the loader's caps and checks, as for any other source

    def label(self) -> str:
        return f"sha256:{self.sha256[:8]}"


def _check_embedded_png(data: bytes) -> None:
    """An embedded image read from JSON is a PNG within the loader's pixel cap, checked from its
    header before anything is decoded (ablation JSON may come from someone else)."""
    from PIL import Image, UnidentifiedImageError

    from ..image import DEFAULT_MAX_PIXELS

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



def _source(image):
    """What ``load_image`` takes for an image parameter (a path or URL as text, or the in-memory image)."""
    return image.image() if isinstance(image, ImageRef) else image


def _fitted_like_the_call(setup, source):
    """Another image, loaded and fitted to the call's size with the call's fit mode (a PIL image);
    a bad path fails here, when the ablations compile, before any compute."""
    from ..fit import fit_image
    from ..image import load_image

    return fit_image(load_image(source), (setup.height, setup.width), setup.fit).image


def _cells(box, height, width):
    """A pixel box (x0, y0, x1, y1) -> the latent cells it touches (c0, r0, c1, r1), end-exclusive."""
    x0, y0, x1, y1 = box
    return (x0 // SPATIAL, y0 // SPATIAL, -(-x1 // SPATIAL), -(-y1 // SPATIAL))


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


def _tokens(self, name: str) -> None:
    """A token group: "image", "later", "text", a list of those names (their union, kept as a tuple), or
    a list of latent-frame indices (kept as a tuple)."""
    v = getattr(self, name)
    accepted = "expected 'image', 'later', 'text', a list of those, or a list of latent-frame indices"
    names = [v] if isinstance(v, str) else list(v) if isinstance(v, (list, tuple)) and v and \
        all(isinstance(g, str) for g in v) else None
    if names is not None:
        for g in names:
            if g not in GROUPS:
                close = difflib.get_close_matches(g, GROUPS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self._fail(name, v, f"{hint}{accepted}")
        if len(set(names)) != len(names):
            self._fail(name, v, f"a group named twice; {accepted}")
        if not isinstance(v, str):
            object.__setattr__(self, name, tuple(names))
        return
    if (not isinstance(v, (list, tuple)) or not v
            or not all(_is_number(f) and float(f) == int(f) and f >= 0 for f in v)):
        self._fail(name, v, f"{accepted} (whole numbers >= 0)")
    object.__setattr__(self, name, tuple(int(f) for f in v))


def _all_or_indices(self, name: str, what: str, *, sort: bool = False) -> None:
    """``name``: "all" or a list of ``what`` indices, whole numbers >= 0 (kept as a tuple; ``sort``:
    sorted and without repeats)."""
    v = getattr(self, name)
    if v == "all":
        return
    if (not isinstance(v, (list, tuple)) or not v
            or not all(_is_number(f) and float(f) == int(f) and f >= 0 for f in v)):
        self._fail(name, v, f"expected 'all' or a list of {what} indices (whole numbers >= 0)")
    ints = [int(f) for f in v]
    object.__setattr__(self, name, tuple(sorted(set(ints)) if sort else ints))


def _heads(self) -> None:
    """``heads``: "all" or a list of attention-head indices (kept sorted, as a tuple)."""
    _all_or_indices(self, "heads", "attention-head", sort=True)


def _layers(self) -> None:
    """``layers``: "all" or a list of block indices (kept as a tuple)."""
    _all_or_indices(self, "layers", "block")

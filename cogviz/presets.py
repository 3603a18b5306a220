"""What each checkpoint family requires of its input: size, frame count, frame rate::

    | preset                | checkpoint                 | size                                | frames | fps |
    |-----------------------|----------------------------|-------------------------------------|--------|-----|
    | ``CogVideoX-5b-I2V``  | THUDM/CogVideoX-5b-I2V     | 480 x 720 only (learned pos. emb.)  | 49     | 8   |
    | ``CogVideoX1.5-5B-I2V`` | THUDM/CogVideoX1.5-5B-I2V | short side 768, long side <= 1360, multiples of 16 | 81 | 16 |
    | ``cogviz-toy``        | the embedded toy model     | 64 x 96 only                        | 17     | 8   |
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import PresetError
from .family import FAMILIES, Family

#: ``load_pipeline(memory=...)``'s choices, each one of diffusers' own mechanisms (here, torch-free,
#: so the CLI's parser offers exactly these without importing torch)
MEMORY_OPTIONS = ("model_offload", "sequential_offload", "group_offload", "vae_tiling", "vae_slicing")

__all__ = ["Preset", "PRESETS", "PROMPT_HINT", "get_preset", "best_size"]


@dataclass(frozen=True)
class Preset:
    """Input requirements of one checkpoint family (plain data)."""

    name: str
    repo_id: str | None      # where the weights live (None: shipped inside cogviz)
    family: str              # "1.0" (5b-I2V, the toy) or "1.5"
    height: int              # default height in pixels
    width: int               # default width in pixels
    num_frames: int          # default frame count
    fps: int
    fixed_resolution: bool   # True: only height x width (learned positional embeddings)
    short_side: int | None = None    # 1.5: the short side is fixed ...
    max_long_side: int | None = None  # ... and the long side may grow to this
    size_multiple: int = 16

    @property
    def size(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def rules(self) -> Family:
        """The family's rules (frame counts, latent frames, scaling): :mod:`cogviz.family`."""
        return FAMILIES[self.family]

    @property
    def frame_multiple(self) -> int:
        """Valid frame counts are ``frame_multiple * k + 1`` (the family's rule)."""
        return self.rules.frame_multiple


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("CogVideoX-5b-I2V", "THUDM/CogVideoX-5b-I2V", "1.0", 480, 720, 49, 8, True),
        Preset("CogVideoX1.5-5B-I2V", "THUDM/CogVideoX1.5-5B-I2V", "1.5", 768, 1360, 81, 16, False,
               short_side=768, max_long_side=1360),
        Preset("cogviz-toy", None, "1.0", 64, 96, 17, 8, True),
    )
}
_ALIASES = {k.lower(): k for k in PRESETS} | {p.repo_id.lower(): k for k, p in PRESETS.items() if p.repo_id} | {
    "toy": "cogviz-toy"}
#: What a prompt box says before anything is typed: prompts the embedded model knows, for shapes
#: world and for the user's own photograph (short enough to show whole in the widgets' prompt box).
PROMPT_HINT = "e.g. 'a red circle moves left' or 'the camera holds still'"


def get_preset(name: str | Preset) -> Preset:
    """Look a preset up by name or hub id (case-insensitive).

    >>> get_preset("thudm/cogvideox-5b-i2v").size
    (480, 720)
    """
    if isinstance(name, Preset):
        return name
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise PresetError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[key]


def best_size(preset: str | Preset, image_size: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) a preset should use for an image of ``image_size`` = (height, width).

    Fixed-resolution presets always answer their one size. CogVideoX 1.5 keeps its short side at
    768 and gives the long side the image's aspect, rounded to a multiple of 16 and capped at 1360,
    in the image's orientation.

    >>> best_size("CogVideoX1.5-5B-I2V", (1080, 1920))
    (768, 1360)
    >>> best_size("CogVideoX1.5-5B-I2V", (1000, 1000))
    (768, 768)
    >>> best_size("CogVideoX1.5-5B-I2V", (1200, 900))
    (1024, 768)
    """
    p = get_preset(preset)
    if p.fixed_resolution or p.short_side is None:
        return p.size
    h, w = image_size
    if h <= 0 or w <= 0:
        raise PresetError(f"image size must be positive, got {image_size!r}")
    aspect = max(h, w) / min(h, w)
    m = p.size_multiple
    long_side = int(round(p.short_side * aspect / m)) * m
    long_side = max(p.short_side, min(p.max_long_side, long_side))
    return (long_side, p.short_side) if h > w else (p.short_side, long_side)

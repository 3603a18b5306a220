"""Shapes world: the procedurally generated clips the embedded toy model is trained on.

A scene is one coloured shape over a plain or gently textured background, moving in a straight
line. The prompt states the motion ("a red circle moves left"); the first frame fixes the shape's
appearance and position, which is exactly the job the conditioning image has in CogVideoX I2V.

Rendering is vectorized numpy with 4x supersampling on the shape edge, so a clip of
17 x 64 x 96 takes about a millisecond.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["COLOURS", "SHAPES", "DIRECTIONS", "Scene", "sample_scene", "render_scene", "prompt_for", "shape_tokens",
           "displacement"]

#: Shape colours the prompt can name (RGB, 0-255). Evaluation scenes keep backgrounds desaturated
#: (``backgrounds="muted"``) so that a colour test on a generated frame is unambiguous; training
#: also draws backgrounds from the whole colour range (``"full"``) and over photographs.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 175, 60),
    "blue": (40, 80, 225),
    "yellow": (235, 210, 40),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
#: Unit motion per direction in (dy, dx) image coordinates (y grows downwards).
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "stripes")


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one clip; plain data, so a scene is reproducible from a seed."""

    colour: str
    shape: str
    direction: str
    radius: float          # half the shape's extent, in pixels at the rendered size
    start: tuple[float, float]  # (y, x) centre in frame 0, in pixels
    speed: float           # pixels per frame
    background: str
    bg_colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    bg_angle: float        # radians: gradient direction / stripe orientation
    bg_period: float       # stripe period in pixels
    height: int
    width: int
    num_frames: int

    def to_dict(self) -> dict:
        return asdict(self)


def prompt_for(scene: Scene) -> str:
    """The training prompt for a scene, e.g. ``"a red circle moves left"``."""
    return f"a {scene.colour} {scene.shape} moves {scene.direction}"


def _muted_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    # Low saturation, mid-to-high value: never confusable with the four shape colours.
    grey = rng.uniform(70, 215)
    tint = rng.uniform(-18, 18, size=3)
    return tuple(int(v) for v in np.clip(grey + tint, 0, 255))


def _any_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    # The whole RGB cube: dark, bright and saturated backgrounds too.
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


def sample_scene(
    rng: np.random.Generator | int,
    *,
    height: int = 64,
    width: int = 96,
    num_frames: int = 17,
    colour: str | None = None,
    shape: str | None = None,
    direction: str | None = None,
    backgrounds: str = "muted",
) -> Scene:
    """Draw a random scene whose shape stays fully inside the frame for the whole clip.

    ``backgrounds="muted"`` (the evaluation scenes) keeps background colours desaturated and
    mid-bright; ``"full"`` draws them from the whole RGB cube.

    >>> s = sample_scene(0)
    >>> s.colour in COLOURS and s.shape in SHAPES and s.direction in DIRECTIONS
    True
    """
    if backgrounds not in ("muted", "full"):
        raise ValueError(f"backgrounds={backgrounds!r}: expected 'muted' or 'full'")
    rng = np.random.default_rng(rng)
    colour = colour or str(rng.choice(list(COLOURS)))
    shape = shape or str(rng.choice(SHAPES))
    direction = direction or str(rng.choice(list(DIRECTIONS)))
    scale = min(height / 64, width / 96)
    radius = float(rng.uniform(7.0, 11.0) * scale)
    dy, dx = DIRECTIONS[direction]
    extent = width if dx else height
    margin = radius + 2 * scale
    # Travel 30-50% of the free span over the clip: clearly visible, never leaving the frame.
    travel = float(rng.uniform(0.30, 0.50) * (extent - 2 * margin))
    speed = travel / max(num_frames - 1, 1)

    def start_along(size: float, d: int) -> float:
        lo, hi = margin, size - margin
        if d > 0:
            return float(rng.uniform(lo, hi - travel))
        if d < 0:
            return float(rng.uniform(lo + travel, hi))
        return float(rng.uniform(lo, hi))

    start = (start_along(height, dy), start_along(width, dx))
    background = str(rng.choice(BACKGROUNDS))
    if backgrounds == "muted":
        bg_colours = (_muted_colour(rng), _muted_colour(rng))
    else:
        bg_colours = (_any_colour(rng), _any_colour(rng))
    return Scene(
        colour=colour, shape=shape, direction=direction, radius=radius, start=start, speed=speed,
        background=background, bg_colours=bg_colours, bg_angle=float(rng.uniform(0, np.pi)),
        bg_period=float(rng.uniform(16, 32) * scale), height=height, width=width, num_frames=num_frames,
    )


def _background(scene: Scene) -> np.ndarray:
    h, w = scene.height, scene.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0 = np.asarray(scene.bg_colours[0], np.float32)
    c1 = np.asarray(scene.bg_colours[1], np.float32)
    if scene.background == "plain":
        return np.broadcast_to(c0, (h, w, 3)).copy()
    proj = yy * np.sin(scene.bg_angle) + xx * np.cos(scene.bg_angle)
    if scene.background == "gradient":
        a = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    else:  # soft stripes: a raised cosine, so the VAE sees no aliasing edges
        a = 0.5 + 0.5 * np.cos(2 * np.pi * proj / scene.bg_period)
    return c0 + a[..., None] * (c1 - c0)


def _coverage(scene: Scene, cy: float, cx: float, ss: int = 4) -> np.ndarray:
    """Fraction of each pixel covered by the shape centred at (cy, cx), (H, W) in [0, 1]."""
    h, w = scene.height, scene.width
    offs = (np.arange(ss, dtype=np.float32) + 0.5) / ss
    ys = (np.arange(h, dtype=np.float32)[:, None] + offs[None, :]).reshape(-1)  # (H*ss,)
    xs = (np.arange(w, dtype=np.float32)[:, None] + offs[None, :]).reshape(-1)  # (W*ss,)
    y = ys[:, None] - cy
    x = xs[None, :] - cx
    r = scene.radius
    if scene.shape == "circle":
        inside = x * x + y * y <= r * r
    elif scene.shape == "square":
        s = r * 0.85
        inside = (np.abs(x) <= s) & (np.abs(y) <= s)
    else:  # upward-pointing isosceles triangle inscribed in the radius
        top, base = -r, r * 0.75
        half = (y - top) / (base - top) * r  # half-width grows from 0 at the apex
        inside = (y >= top) & (y <= base) & (np.abs(x) <= half)
    return inside.reshape(h, ss, w, ss).mean(axis=(1, 3))


def render_scene(scene: Scene, frames: list[int] | range | None = None,
                 background: np.ndarray | None = None) -> np.ndarray:
    """Render a scene to ``uint8 (F, H, W, 3)`` frames (all of them, or the indices in ``frames``).

    ``background`` (``uint8 (H, W, 3)``, e.g. a photograph) replaces the scene's own background:
    the shape then moves over a still picture.

    >>> render_scene(sample_scene(1)).shape
    (17, 64, 96, 3)
    >>> render_scene(sample_scene(1), frames=[0]).shape
    (1, 64, 96, 3)
    """
    indices = range(scene.num_frames) if frames is None else list(frames)
    bg = _background(scene) if background is None else np.asarray(background, np.float32)
    if bg.shape != (scene.height, scene.width, 3):
        raise ValueError(f"background of shape {bg.shape}; the scene is {(scene.height, scene.width, 3)}")
    colour = np.asarray(COLOURS[scene.colour], np.float32)
    dy, dx = DIRECTIONS[scene.direction]
    out = np.empty((len(indices), scene.height, scene.width, 3), np.uint8)
    for k, f in enumerate(indices):
        cy = scene.start[0] + dy * scene.speed * f
        cx = scene.start[1] + dx * scene.speed * f
        a = _coverage(scene, cy, cx)[..., None]
        out[k] = np.clip(bg * (1 - a) + colour * a + 0.5, 0, 255).astype(np.uint8)
    return out


def shape_tokens(scene: Scene, frame: int, token: int = 16, cover: float = 0.2) -> np.ndarray:
    """(H // token, W // token) bool: the tokens (``token`` x ``token`` pixels; 16 for CogVideoX's 2 x 2
    patches of 8 x 8-pixel latent cells) the shape covers at least ``cover`` of in ``frame`` — and
    always the one it covers most. Where the moving shape is, in the transformer's own grid."""
    dy, dx = DIRECTIONS[scene.direction]
    cov = _coverage(scene, scene.start[0] + dy * scene.speed * frame, scene.start[1] + dx * scene.speed * frame)
    h, w = scene.height // token, scene.width // token
    c = cov[:h * token, :w * token].reshape(h, token, w, token).mean(axis=(1, 3))
    return (c >= cover) | (c == c.max())


def displacement(scene: Scene, frame: int, token: int = 16) -> np.ndarray:
    """(down, right): how far the shape has moved by ``frame``, in tokens of ``token`` pixels."""
    dy, dx = DIRECTIONS[scene.direction]
    return np.array([dy, dx], np.float32) * scene.speed * frame / token

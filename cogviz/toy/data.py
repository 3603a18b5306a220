"""The embedded model's training mix: shapes world, shapes over natural images, camera moves.

| kind             | share | frames                                                      | prompt                        |
|------------------|-------|-------------------------------------------------------------|-------------------------------|
| ``shapes``       | 15 %  | shapes world, muted backgrounds (the evaluation scenes' law) | "a red circle moves left"     |
| ``shapes_full``  | 15 %  | shapes world, backgrounds over the whole colour range        | "a red circle moves left"     |
| ``shapes_photo`` | 25 %  | a shape moving over a still natural image                    | "a red circle moves left"     |
| ``camera``       | 45 %  | a camera move over a still natural image                     | "the camera pans left"        |
| ``still``        | 0 %   | a still natural image, every frame the same                  | "the camera holds still"      |

``still`` has no share of its own in the default mix (so the clips drawn from earlier recipes'
seeds stay what they were); a recipe draws it with explicit kind weights
(``cache_kind_weights``).

Natural images come from :class:`cogviz.toy.natural.SourcePool` (training photographs and
procedural canvases); every clip is reproducible from its seed and the pool's seed. Training clip
seeds lie below :data:`cogviz.trainer.EVAL_SEED_BASE`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .natural import CAMERA_TRAVEL, STILL, SourcePool, camera_prompt
from .scenes import prompt_for, render_scene, sample_scene

__all__ = ["MIX", "Clip", "training_clip", "training_image"]

MIX: dict[str, float] = {"shapes": 0.15, "shapes_full": 0.15, "shapes_photo": 0.25, "camera": 0.45, "still": 0.0}


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray  # uint8 (F, H, W, 3)
    prompt: str
    kind: str


def training_clip(seed: int, pool: SourcePool, *, h: int = 64, w: int = 96, num_frames: int = 17,
                  kind: str | None = None, travel: tuple[float, float] = CAMERA_TRAVEL) -> Clip:
    """One training clip of the mix, drawn from ``seed`` (a camera move travels a share of the
    frame drawn from ``travel``)."""
    rng = np.random.default_rng([seed, 17])
    kind = kind or str(rng.choice(list(MIX), p=list(MIX.values())))
    if kind in ("camera", "still"):
        frames, move = pool.camera_clip(rng, STILL if kind == "still" else None, h=h, w=w,
                                        num_frames=num_frames, travel_range=travel)
        return Clip(frames, camera_prompt(move), kind)
    scene = sample_scene(int(seed), height=h, width=w, num_frames=num_frames,
                         backgrounds="muted" if kind == "shapes" else "full")
    background = pool.view(rng, h, w) if kind == "shapes_photo" else None
    return Clip(render_scene(scene, background=background), prompt_for(scene), kind)


def training_image(rng: np.random.Generator, pool: SourcePool, h: int = 64, w: int = 96) -> np.ndarray:
    """One still training image ``uint8 (h, w, 3)``: a natural view (70 %) or a frame of a clip."""
    if rng.random() < 0.7:
        return pool.view(rng, h, w)
    clip = training_clip(int(rng.integers(0, 1_000_000_000)), pool, h=h, w=w, num_frames=17)
    return clip.frames[int(rng.integers(len(clip.frames)))]

"""The embedded toy CogVideoX I2V model at run time: its components, shapes-world scenes and shipped
weights (the trainer is :mod:`cogviz.trainer`).

This is the one module the lessons import besides ``cogviz``'s top-level names: the scenes
(``sample_scene``, ``render_scene``, ``prompt_for``, ``displacement``, ``shape_tokens``), the
natural pictures and clips of the training mix (``photo``, ``camera_clip``, ``training_clip``,
``SourcePool``) and the shipped model's held-out evaluation (:func:`evaluation`).
"""
from __future__ import annotations

import json
from pathlib import Path

from .data import training_clip
from .natural import SourcePool, camera_clip, photo
from .scenes import displacement, prompt_for, render_scene, sample_scene, shape_tokens

__all__ = ["sample_scene", "render_scene", "prompt_for", "displacement", "shape_tokens", "photo", "camera_clip",
           "training_clip", "SourcePool", "evaluation", "WEIGHTS"]

WEIGHTS = Path(__file__).parent / "weights"  #: the shipped model's folder (its card: README.md)


def evaluation() -> dict:
    """The shipped model's held-out evaluation (``weights/eval.json``, written with its card by
    ``benchmarks/eval_toy.py --write-card``): ``summary`` for shapes world, ``photos`` for photographs."""
    return json.loads((WEIGHTS / "eval.json").read_text())

"""Guidance schemes: how the transformer's branches are combined into one prediction per step.

* **Text CFG** (the stock pipeline): two rows, negative prompt first; ``e_neg + w (e_txt - e_neg)``.
* **Dynamic CFG**: ``w`` grows over the steps, ``1 + w (1 - cos(pi ((S - t) / S) ** 5)) / 2`` with
  ``t`` the raw timestep (CogVideoX's own schedule).
* **Image guidance**: one more row, the first row with its image channels zeroed (``e(., ∅)``);
  ``pred + (s_img - 1) (e(., img) - e(., ∅))``. ``s_img = 1`` is exactly the text CFG; both
  branches are in distribution (the zeroed image is the trained dropout), the mix is SVD's idea.
  A ramp ``(s_first, s_last)`` gives each latent frame its own ``s_img``, linear from the first
  latent frame to the last (SVD's per-frame guidance runs 1.0 -> 3.0).

>>> import torch
>>> rows = torch.tensor([[0.0], [1.0], [-1.0]])  # e(neg, img), e(txt, img), e(neg, ∅)
>>> combine(rows, cfg=True, scale=2.0, image_scale=3.0)
tensor([[4.]])
>>> image_scales((1.0, 3.0), frames=5).flatten().tolist()
[1.0, 1.5, 2.0, 2.5, 3.0]
"""
from __future__ import annotations

import math

import torch

__all__ = ["text_scale", "rows", "combine", "image_scales"]


def text_scale(guidance: float, *, dynamic: bool, t: int, steps: int) -> float:
    """The text-guidance scale at raw timestep ``t`` (constant unless ``dynamic``)."""
    if not dynamic:
        return guidance
    return 1 + guidance * ((1 - math.cos(math.pi * ((steps - t) / steps) ** 5.0)) / 2)


def rows(*, cfg: bool, image_guidance: bool) -> int:
    """Transformer rows one video needs: 1, 2 with text CFG, one more with image guidance."""
    return (2 if cfg else 1) + int(image_guidance)


def image_scales(image_scale: float | tuple[float, float], frames: int) -> float | torch.Tensor:
    """The image-guidance scale of each latent frame: one number for all, or for a ramp ``(first,
    last)`` a ``(1, frames, 1, 1, 1)`` tensor, linear over the latent frames."""
    if not isinstance(image_scale, tuple):
        return image_scale
    first, last = image_scale
    return torch.linspace(first, last, frames, dtype=torch.float64).view(1, frames, 1, 1, 1)


def combine(pred: torch.Tensor, *, cfg: bool, scale: float, image_scale: float | tuple | None) -> torch.Tensor:
    """One video's rows ``(rows, F, ...)`` -> its guided prediction ``(1, F, ...)`` (see the module
    doc); ``image_scale`` one number, or a ramp ``(first, last)`` over the F latent frames."""
    free = None
    if image_scale is not None:
        pred, free = pred[:-1], pred[-1:]  # the image-free row is last
    image_branch = pred[:1]  # e(neg, img) under CFG, else e(txt, img)
    if cfg:
        uncond, cond = pred.chunk(2)
        pred = uncond + scale * (cond - uncond)
    if image_scale is not None:
        s = image_scales(image_scale, pred.shape[1])
        gain = s - 1.0 if not torch.is_tensor(s) else (s - 1.0).to(pred.device, pred.dtype)
        pred = pred + gain * (image_branch - free)
    return pred

"""Step 3 of the flow: the concatenation that makes CogVideoX image-to-video."""
from __future__ import annotations

import torch

__all__ = ["concat_condition"]


def concat_condition(z_t: torch.Tensor, z_img: torch.Tensor) -> torch.Tensor:
    """The transformer's input: ``concat(z_t, z_img, dim=channels)``.

    z_t (B, F, 16, h, w) is the noisy video latent, z_img (B, F, 16, h, w) the image latent (frame 0
    the image, zeros after); the result is (B, F, 32, h, w): channels 0-15 noise, 16-31 image.

    >>> concat_condition(torch.zeros(1, 2, 16, 4, 6), torch.ones(1, 2, 16, 4, 6)).shape
    torch.Size([1, 2, 32, 4, 6])
    """
    if z_t.shape != z_img.shape:
        from .errors import CogvizError

        raise CogvizError(f"z_t {tuple(z_t.shape)} and z_img {tuple(z_img.shape)} must have the same "
                          "[B, F, C, H, W] shape to be concatenated on channels")
    return torch.cat([z_t, z_img], dim=2)

"""Step 2 of the flow: the fitted image -> ``z_img``, exactly as the diffusers pipeline builds it.

``z_img`` has the video latent's layout ``[B, F, C, H, W]``: latent frame 0 holds the VAE's
encoding of the image (a posterior *sample*, scaled), every later latent frame is zeros.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .family import family_of

if TYPE_CHECKING:
    import numpy as np

__all__ = ["latent_frames", "image_to_tensor", "encode_pixels", "encode_image", "decode_latents", "decode"]


def latent_frames(pipe, num_frames: int) -> tuple[int, int]:
    """(latent frames the transformer sees, padding frames added in front for CogVideoX 1.5)."""
    return family_of(pipe).latent_frames(num_frames)


def image_to_tensor(pipe, image, height: int, width: int, device, dtype) -> torch.Tensor:
    """PIL image -> (1, 3, H, W) in [-1, 1], through the pipeline's own VideoProcessor."""
    return pipe.video_processor.preprocess(image, height=height, width=width).to(device, dtype=dtype)


def encode_pixels(pipe, pixels: torch.Tensor, num_latent_frames: int, *, generator=None, sample: bool = True,
                  dtype=None) -> torch.Tensor:
    """(1, 3, H, W) pixels in [-1, 1] -> z_img (1, F, 16, H/8, W/8), frame 0 the image, zeros after.

    ``sample=True`` draws from the posterior with ``generator`` (what the pipeline does: this
    consumes random numbers *before* the initial noise is drawn); ``False`` takes its mode.
    """
    dtype = dtype or pixels.dtype
    dist = pipe.vae.encode(pixels.unsqueeze(2)).latent_dist  # one-frame video (B, C, 1, H, W)
    z = dist.sample(generator) if sample else dist.mode()
    z = z.to(dtype).permute(0, 2, 1, 3, 4)  # (B, 1, C, h, w)
    z = family_of(pipe).scale_latent(z, pipe.vae_scaling_factor_image)  # 1.5 divides (sic)
    pad = torch.zeros((z.shape[0], num_latent_frames - 1, *z.shape[2:]), device=z.device, dtype=dtype)
    return torch.cat([z, pad], dim=1)  # (B, F, C, h, w): the image on frame 0, zeros after


def decode_latents(pipe, latents: torch.Tensor, *, drop: int = 0) -> torch.Tensor:
    """Latents (B, F, C, h, w) -> frames (B, F', H, W, 3) float in [0, 1]; ``drop`` leading padding frames."""
    latents = 1 / pipe.vae_scaling_factor_image * latents[:, drop:].permute(0, 2, 1, 3, 4)  # (B, C, F, h, w)
    video = pipe.vae.decode(latents).sample
    return pipe.video_processor.postprocess_video(video=video, output_type="pt").permute(0, 1, 3, 4, 2)


@torch.no_grad()
def encode_image(pipe, image, *, num_frames: int | None = None, generator=None, sample: bool = True,
                 size: tuple[int, int] | None = None, fit: str = "crop") -> torch.Tensor:
    """An image (anything :func:`cogviz.load_image` takes, or a :class:`~cogviz.FittedImage`) -> ``z_img``
    ``[1, F, C, h, w]``, exactly as the pipeline builds it for a video of ``num_frames`` frames.

    The VAE's posterior is sampled with ``generator`` (an ``int`` seeds one on the pipeline's
    device) or, with ``sample=False``, its mode is taken; the result is scaled by the VAE's
    scaling factor (CogVideoX 1.5 divides instead: ``invert_scale_latents``); latent frame 0 holds
    it and the later latent frames, 1.5's padding included, are zeros. With ``generator=seed`` it
    equals the ``z_img`` that ``cogviz.generate(..., seed=seed)`` feeds the transformer, bit for bit.
    """
    from .family import default_frames, resolve_size
    from .fit import FittedImage, fit_image

    height, width = resolve_size(pipe, image.size if isinstance(image, FittedImage) else None, size)
    fitted = image if isinstance(image, FittedImage) else fit_image(image, (height, width), fit)
    device = pipe._execution_device
    if isinstance(generator, int):
        generator = torch.Generator(device=device).manual_seed(generator)
    n_latent, _ = latent_frames(pipe, num_frames or default_frames(pipe))
    dtype = pipe.text_encoder.dtype  # the pipeline casts the image to the prompt embeddings' dtype
    pixels = image_to_tensor(pipe, fitted.image, height, width, device, dtype)
    return encode_pixels(pipe, pixels, n_latent, generator=generator, sample=sample, dtype=dtype)


@torch.no_grad()
def decode(pipe, latents: torch.Tensor, *, drop: int = 0) -> np.ndarray:
    """``[1, F, C, h, w]`` latents (``z_t``, ``latents.final``, ``z_img``...) -> uint8 frames ``(F', H, W, 3)``.

    The pair of :func:`encode_image`: latents are unscaled by the VAE's factor and decoded as the
    pipeline does. ``drop`` leading latent frames are skipped (CogVideoX 1.5's padding frame).
    """
    import numpy as np

    video = decode_latents(pipe, latents.to(pipe._execution_device, pipe.vae.dtype), drop=drop)[0]
    return (video.float().cpu().numpy() * 255).round().astype(np.uint8)

"""Cheap latent previews: a linear latent -> RGB map fitted against the model's own VAE decoder.

A full VAE decode per denoising step is too slow for live previews on the real models. A 16 -> 3
linear map (plus a bias) applied to each latent pixel costs nothing and shows colours and layout at
1/8 resolution. It is fitted once per pipeline by least squares: latents of a few images (the
encoder's posterior mode, scaled as the transformer sees them) against what the decoder makes of
them, average-pooled to the latent grid. The fit error is reported, never hidden.

It works on any CogVideoX VAE (the toy model's or a real checkpoint's): only the pipeline's own
modules are called. Latents are taken in the *video* convention (``z = scaling_factor * vae_latent``),
which is how ``z_t`` and, for 1.0 models, ``z_img`` are scaled. CogVideoX 1.5 divides its ``z_img`` by
the factor instead (``invert_scale_latents``): pass ``kind="z_img"`` to :meth:`RGBMap.apply` for it.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ViewError

__all__ = ["RGBMap", "fit_rgb_map", "rgb_map_for"]


@dataclass(frozen=True)
class RGBMap:
    """``rgb = latent @ weight + bias`` per latent pixel (values in [0, 1], clipped when applied)."""

    weight: np.ndarray      # (C, 3)
    bias: np.ndarray        # (3,)
    rmse: float             # fit error on the decoder's pooled output, in [0, 1] units
    scaling_factor: float
    invert_image_scale: bool = False

    @property
    def psnr(self) -> float:
        """The fit error as PSNR in dB (peak 1.0)."""
        from .metrics import psnr_of_mse

        return psnr_of_mse(self.rmse ** 2, 1.0)

    def apply(self, latent, *, kind: str = "video") -> np.ndarray:
        """(..., C, h, w) latent (tensor or array) -> uint8 (..., h, w, 3).

        ``kind="z_img"`` undoes CogVideoX 1.5's inverted image scaling first (no-op on 1.0 models).
        """
        z = latent.detach().float().cpu().numpy() if isinstance(latent, torch.Tensor) else np.asarray(latent, np.float32)
        if kind == "z_img" and self.invert_image_scale:
            z = z * self.scaling_factor ** 2
        elif kind not in ("video", "z_img"):
            raise ViewError(f"kind must be 'video' or 'z_img', got {kind!r}")
        rgb = np.einsum("...chw,cd->...hwd", z, self.weight, optimize=True) + self.bias
        return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _images(pipe, height: int, width: int, n_blocks: int = 4):
    """cogviz's sample images, plus blocks of random colours so that the fit spans the colour cube."""
    from PIL import Image

    from .fit import fit_image
    from .samples import SAMPLES, load_sample

    images = [fit_image(load_sample(name), (height, width), "crop").image for name in SAMPLES]
    rng = np.random.default_rng(0)
    for _ in range(n_blocks):
        grid = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)  # 24 flat patches of random colour
        images.append(Image.fromarray(grid).resize((width, height), Image.Resampling.NEAREST))
    return images


@torch.no_grad()
def fit_rgb_map(pipe, images=None, *, size: tuple[int, int] | None = None) -> RGBMap:
    """Fit the latent -> RGB map of ``pipe``'s VAE by least squares (see the module doc).

    ``images``: PIL images to fit on (default: cogviz's sample images and four images of random
    colour patches, at ``size`` or the model's sample size). Costs one encode and one single-frame decode per image.
    """
    from .encode import image_to_tensor
    from .family import default_size, family_of

    height, width = size or default_size(pipe)
    vae = pipe.vae
    s = pipe.vae_scale_factor_spatial
    scale = pipe.vae_scaling_factor_image
    device, dtype = pipe._execution_device, vae.dtype
    xs, ys = [], []
    for img in images or _images(pipe, height, width):
        pixels = image_to_tensor(pipe, img, height, width, device, dtype)
        z = vae.encode(pixels.unsqueeze(2)).latent_dist.mode()          # (1, C, 1, h, w), unscaled
        out = vae.decode(z).sample.float().clamp(-1, 1) / 2 + 0.5         # (1, 3, 1, H, W) in [0, 1]
        target = torch.nn.functional.avg_pool2d(out[:, :, 0], s)          # (1, 3, h, w)
        zc = (scale * z[:, :, 0]).float()                                 # scaled as the transformer sees it
        xs.append(zc[0].flatten(1).T.cpu())
        ys.append(target[0].flatten(1).T.cpu())
    x = torch.cat(xs).double()
    y = torch.cat(ys).double()
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    sol = torch.linalg.lstsq(xb, y).solution                              # (C + 1, 3)
    rmse = float((xb @ sol - y).pow(2).mean().sqrt())
    return RGBMap(sol[:-1].float().numpy(), sol[-1].float().numpy(), rmse, float(scale),
                  family_of(pipe).invert_scale_latents)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def rgb_map_for(pipe) -> RGBMap:
    """:func:`fit_rgb_map` once per VAE (cached for as long as the VAE lives)."""
    m = _CACHE.get(pipe.vae)
    if m is None:
        m = _CACHE[pipe.vae] = fit_rgb_map(pipe)
    return m

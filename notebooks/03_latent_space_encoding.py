# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 3 — Latent space: how the VAE turns the image into `z_img`
#
# CogVideoX never denoises pixels. A 3-d VAE (`AutoencoderKLCogVideoX`) compresses a video
# 8x in height and width and 4x in time into 16 latent channels, and the transformer works on
# those latents. The conditioning image goes through the same encoder and becomes `z_img`, the
# tensor that lesson 4 concatenates with the noisy latent. This lesson looks at `z_img` closely
# on the embedded toy model (same classes as CogVideoX-5b-I2V, 64 x 96 frames).

# %% tags=["parameters"]
SCENE_SEED = 1_000_000_009
SAMPLE = "lighthouse"

# %%
import numpy as np
import torch
from IPython.display import display

import cogviz
from cogviz import PCABasis, channel_stats, latent_frames, load_sample, rgb_map_for, tiny_random_pipeline, viz
from cogviz.toy import render_scene, sample_scene

pipe = cogviz.load_pipeline("toy")
scene = render_scene(sample_scene(SCENE_SEED))


def show(img, title=None, width=900):
    display(viz.picture(img, title=title, width=width))  # a viz.Picture shows itself as a PNG


# %% [markdown]
# ## 1. Compression factors
#
# Encode a whole 17-frame clip and read the factors off the shapes: 8x in space, and in time
# the first frame on its own, then groups of four: `F_latent = (F - 1) / 4 + 1`.

# %%
clip = torch.from_numpy(scene).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]  # (1, 3, 17, 64, 96)
with torch.no_grad():
    z_clip = pipe.vae.encode(clip).latent_dist.mode()                                # (1, 16, 5, 8, 12)
print("video", tuple(clip.shape[2:]), "-> latent", tuple(z_clip.shape[1:]))
print("spatial factor", pipe.vae_scale_factor_spatial, "| temporal factor", pipe.vae_scale_factor_temporal,
      "| latent frames for 17 frames:", latent_frames(pipe, 17)[0])

# %% [markdown]
# ## 2. Exercise: predict before the next section shows it
#
# For the real CogVideoX-5b-I2V (49 frames of 480 x 720), what is the shape `(F, C, h, w)` of
# `z_img`, and how many of its latent frames are zeros? Work it out, then check against the
# full-size architecture (built on PyTorch's `meta` device: shapes only, no memory).

# %% tags=["answer"]
my_shape = None         # (F, C, h, w)
my_zero_frames = None   # how many latent frames are zeros

# %%
from cogviz import full_size_random_pipeline
from cogviz.lessons import check

big = full_size_random_pipeline("meta")
n_latent, _ = latent_frames(big, 49)
truth = (n_latent, big.vae.config.latent_channels, 480 // big.vae_scale_factor_spatial,
         720 // big.vae_scale_factor_spatial)
check({"my_shape": my_shape, "my_zero_frames": my_zero_frames},
      lambda: None if (tuple(my_shape), my_zero_frames) == (truth, n_latent - 1)
      else f"the architecture says {truth}, with {n_latent - 1} zero frames",
      f"{truth}, with {n_latent - 1} zero frames after the image frame");

# %% [markdown]
# ## 3. The shape of `z_img`
#
# `cogviz.encode_image` builds `z_img` exactly as the pipeline does: the image alone is encoded
# as a one-frame video, its posterior is sampled (or its mode taken), scaled, and placed on latent
# frame 0; the remaining latent frames are **zeros**, so `z_img` has the video latent's shape
# `[B, F, C, h, w]`. The frames x channels overview shows it at a glance.

# %%
z_img = cogviz.encode_image(pipe, scene[0], generator=0)
print("z_img", tuple(z_img.shape), "| non-zero latent frames:",
      [f for f in range(z_img.shape[1]) if z_img[0, f].abs().sum() > 0])
show(viz.frames_overview(z_img[0], tile=24), "z_img: frames (rows) x channels (columns)")

# %% [markdown]
# ## 4. The scaling factor, and CogVideoX 1.5's inversion
#
# The VAE's raw latents are multiplied by `scaling_factor` before the transformer reads them. For
# the 5B models that factor, 0.7, was chosen **empirically**, by looking at generations, not as a
# 1/std normalisation (a CogVideo author in zai-org/CogVideo#190; the 2B model uses 1.15). The
# toy's factor was measured on its own training latents.
#
# For CogVideoX 1.5 the sources disagree, and a reader should know all three positions:
# - **diffusers divides** the 1.5 image latent by the factor (`invert_scale_latents=True` in the
#   VAE configuration; `pipeline_cogvideox_image2video.py`, `prepare_latents`), with the comment that
#   the CogVideoX team "forgot to multiply" the scaling factor during training;
# - the **official SAT sampler** multiplies in `encode_first_stage` and then divides by
#   `model.scale_factor` (THUDM/CogVideo `sat/sample_video.py`, 1.5 branch), i.e. it feeds the
#   **unscaled** latent, a gain of 1, not 1/0.7;
# - users report first frames too bright or too dark, and SAT/diffusers mismatches, that trace to
#   this (zai-org/CogVideo#605 and #761; huggingface/finetrainers#101).
#
# What the 1.5 model was trained with is therefore disputed. cogviz follows diffusers (the division),
# which `encode_image` reproduces; `ScaleImage(0.7)` on a 1.5 model gives SAT's gain of 1.

# %%
with torch.no_grad():
    fitted0 = cogviz.fit_image(scene[0], "cogviz-toy")                       # pixels in [-1, 1], (1, 3, 64, 96)
    pixels = torch.from_numpy(np.array(fitted0.to_array())).float().div(127.5).sub(1).permute(2, 0, 1)[None]
    raw = pipe.vae.encode(pixels.unsqueeze(2)).latent_dist.mode()[:, :, 0]
scale = pipe.vae.config.scaling_factor
z_mode = cogviz.encode_image(pipe, scene[0], sample=False)
print(f"scaling_factor {scale:.4f}: raw std {raw.std():.3f} -> z_img std {z_mode[0, 0].std():.3f}")
assert torch.allclose(z_mode[0, 0], scale * raw[0], atol=1e-6)

p15 = tiny_random_pipeline("1.5")
z15 = cogviz.encode_image(p15, scene[0], num_frames=17, sample=False, size=(32, 32))
gain = cogviz.family_of(p15).latent_gain(p15.vae.config.scaling_factor)
print("CogVideoX 1.5 style:", tuple(z15.shape), "latent frames (5 padded to 6 for patch_size_t=2);",
      f"diffusers' gain on the raw latent: 1 / {p15.vae.config.scaling_factor} = {gain:.3f} (SAT's: 1)")

# %% [markdown]
# ## 5. Channel grids
#
# Sixteen channels of one latent frame, each a small 8 x 12 image. With the symmetric
# normalisation (the default) 0 is white, positive red, negative blue, one scale for all
# channels; `norm="channel"` stretches each channel to its own range instead.

# %%
show(viz.channel_mosaic(z_img[0, 0], zoom=6, title="z_img, latent frame 0 (symmetric)"))
show(viz.channel_mosaic(z_img[0, 0], norm="channel", zoom=6, title="z_img, latent frame 0 (per channel)"))
stats = channel_stats(z_img[0, 0])
print("per-channel mean:", np.round(stats["mean"], 2))

# %% [markdown]
# ## 6. Seeing colours: PCA and a linear RGB map
#
# Two cheap ways to turn 16 channels into a picture. **PCA** finds the three directions of
# largest variance in channel space and maps them to R, G and B; fitted once, it colours every
# frame and step the same way. The **RGB map** is a linear 16 -> 3 map fitted by least squares
# against the model's own decoder: it shows real colours at 1/8 resolution, with its fit error
# reported. (It is what GenerateUI uses for its live preview.)

# %%
pca = PCABasis.fit(z_clip.permute(0, 2, 1, 3, 4) * scale)
rgb = rgb_map_for(pipe)
z_video = (z_clip.permute(0, 2, 1, 3, 4) * scale)[0]                    # (5, 16, 8, 12)
print(f"PCA explains {100 * pca.explained.sum():.0f}% of the variance; RGB map fit error {rgb.rmse:.3f} "
      f"RMSE ({rgb.psnr:.1f} dB)")
show(viz.rgb_tiles(list(pca.apply(z_video)), [f"PCA f{i}" for i in range(5)]))
show(viz.rgb_tiles(list(rgb.apply(z_video)), [f"RGB map f{i}" for i in range(5)]))

# %% [markdown]
# ## 7. Reconstruction quality
#
# `cogviz.decode` is the pair of `encode_image`. Decoding the image's own latent shows what the
# 16 x 8 x 12 numbers keep. The toy VAE was trained on shapes world, so it reconstructs those
# scenes well and a photograph less well: the latent space is learned, not generic.

# %%
from cogviz import psnr  # PSNR in dB; the one cogviz uses everywhere

results = {}
for name, img in [("scene", scene[0]), (SAMPLE, load_sample(SAMPLE))]:
    fitted = cogviz.fit_image(img, "cogviz-toy")
    recon = cogviz.decode(pipe, cogviz.encode_image(pipe, fitted, sample=False)[:, :1])[0]
    results[name] = psnr(recon, fitted.to_array())
    show(np.concatenate([fitted.to_array(), recon], axis=1), f"{name}: image | decode(encode(image)), "
         f"{results[name]:.1f} dB", width=480)
assert results["scene"] > results[SAMPLE]

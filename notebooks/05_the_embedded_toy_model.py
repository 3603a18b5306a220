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
# # Lesson 5 — The embedded toy model: a real CogVideoX I2V you can run anywhere
#
# The real CogVideoX-5b-I2V has 5.6 billion transformer parameters and needs a large GPU. To
# *study* how the image anchors the video, cogviz ships its own model, trained by the project,
# built from **exactly the diffusers classes** of 5b-I2V, but small: it runs on a laptop CPU in
# a couple of seconds. Everything cogviz does with it works the same way on the real checkpoints.

# %% tags=["parameters"]
SCENE_SEED = 1_000_000_003   # evaluation scenes start at 1e9: never seen in training
STEPS = 50
GUIDANCE = 6.0

# %%
import numpy as np
import torch
from IPython.display import display
from PIL import Image

import cogviz.models as M
from cogviz import viz
from cogviz.toy.evaluate import colour_mask, psnr_uint8, zeroed_image_latents
from cogviz.toy.scenes import prompt_for, render_scene, sample_scene

# %% [markdown]
# ## 1. Shapes world
#
# The training data is generated, not collected: one coloured shape over a plain or gently
# textured background, moving in a straight line for 17 frames of 64 x 96 pixels. The prompt
# states the motion; the **first frame fixes appearance and position** — precisely the job of
# the conditioning image in CogVideoX I2V. A model trained on this must take colour, shape and
# position from the image, and direction from the text.

# %%
scene = sample_scene(SCENE_SEED)
truth = render_scene(scene)
print(prompt_for(scene))
viz.frame_strip(truth, [0, 4, 8, 12, 16], zoom=2)

# %% [markdown]
# ## 2. Same architecture, smaller numbers
#
# | | CogVideoX-5b-I2V | cogviz-toy |
# |---|---|---|
# | VAE | `AutoencoderKLCogVideoX`, 16 latent channels | the same class, 16 latent channels |
# | compression | 8x in space, 4x in time | 8x in space, 4x in time |
# | video | 49 x 480 x 720 -> 13 x 60 x 90 latents | 17 x 64 x 96 -> 5 x 8 x 12 latents |
# | transformer | `CogVideoXTransformer3DModel`, `in_channels=32` | the same class, `in_channels=32` |
# | size | 42 layers, 48 heads x 64 | 6 layers, 4 heads x 32 |
# | text | T5-XXL, 226 tokens | a small T5 encoder, 16 tokens |
# | scheduler | DDIM, v-prediction, zero-SNR, trailing | the same configuration |
#
# The 32 input channels are the point: 16 for the noisy video latent $z_t$ and 16 for the image
# latent $z_{img}$, concatenated along the channel axis at every denoising step.

# %%
pipe = M.load_pipeline("toy")
cfg = pipe.transformer.config
n_params = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) for name in ("vae", "transformer", "text_encoder")}
print(f"transformer in_channels={cfg.in_channels} (16 + 16), out_channels={cfg.out_channels}, "
      f"layers={cfg.num_layers}, text tokens={M.max_sequence_length(pipe)}")
print({k: f"{v / 1e6:.2f} M" for k, v in n_params.items()})

# %% [markdown]
# ## 3. Generate with the plain diffusers pipeline
#
# `load_pipeline` returns an ordinary `CogVideoXImageToVideoPipeline`; the only toy-specific
# argument is the text length (16 tokens instead of 226), which cogviz reads from the config.

# %%
image = Image.fromarray(truth[0])


def generate(pipe, image, prompt, seed=0):
    out = pipe(image=image, prompt=prompt, num_frames=17, height=64, width=96, num_inference_steps=STEPS,
               guidance_scale=GUIDANCE, max_sequence_length=M.max_sequence_length(pipe),
               generator=torch.Generator().manual_seed(seed), output_type="np")
    return (out.frames[0] * 255).round().astype(np.uint8)


video = generate(pipe, image, prompt_for(scene))
picks = [0, 4, 8, 12, 16]
display(viz.picture(np.concatenate([viz.frame_strip(truth, picks, titles=[f"truth {f}" for f in picks], zoom=2),
                                    viz.frame_strip(video, picks, titles=[f"generated {f}" for f in picks], zoom=2)])))
print(f"frame-0 PSNR against the conditioning image: {psnr_uint8(video[0], truth[0]):.1f} dB")

# %% [markdown]
# ## 4. The anchor is real: remove it and see
#
# Inside the pipeline the image becomes `z_img`. With it set to zeros (the prompt and the random
# noise unchanged) the model no longer knows what the first frame looks like: it has to invent a
# shape, so frame 0 no longer matches the image. `zeroed_image_latents` does this for one block
# only; the pipeline is untouched afterwards.

# %%
with zeroed_image_latents(pipe):
    no_anchor = generate(pipe, image, prompt_for(scene))
display(viz.rgb_tiles([truth[0], video[0], no_anchor[0]], ["conditioning image", "with z_img", "z_img zeroed"], zoom=2))
with_img, without = psnr_uint8(video[0], truth[0]), psnr_uint8(no_anchor[0], truth[0])
print(f"frame 0: {with_img:.1f} dB with the image latent, {without:.1f} dB without")

# %% [markdown]
# ## 5. Exercise
#
# The toy VAE compresses 8x in space and 4x in time (the first frame on its own, then groups of
# four). What is the shape `(latent frames, channels, height, width)` of the latent of one
# 17 x 64 x 96 clip, and how many channels does the transformer read at each step?

# %%
my_latent_shape = ((17 - 1) // 4 + 1, 16, 64 // 8, 96 // 8)   # replace with your own arithmetic
my_transformer_channels = 16 + 16

# %%
with torch.no_grad():
    clip = torch.from_numpy(truth).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]  # (1, 3, 17, 64, 96)
    z = pipe.vae.encode(clip).latent_dist.mode()[0].permute(1, 0, 2, 3)              # (F, C, H, W)
assert tuple(z.shape) == my_latent_shape, f"the VAE says {tuple(z.shape)}"
assert my_transformer_channels == pipe.transformer.config.in_channels
print("correct:", tuple(z.shape), "and", my_transformer_channels, "channels")

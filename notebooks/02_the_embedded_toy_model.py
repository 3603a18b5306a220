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
# # Lesson 2 — The embedded toy model: a real CogVideoX I2V you can run anywhere
#
# The real CogVideoX-5b-I2V has 5.6 billion transformer parameters and needs a large GPU. To
# *study* how the image anchors the video, cogviz ships its own model, trained by the project,
# built from **exactly the diffusers classes** of 5b-I2V, but small: it runs on a laptop CPU in
# a couple of seconds. Everything cogviz does with it works the same way on the real checkpoints.

# %% tags=["parameters"]
SCENE_SEED = 1_000_000_003   # evaluation scenes start at 1e9: never seen in training
PHOTO = "grace_hopper"       # a held-out photograph: no training stage ever read it
STEPS = 50
GUIDANCE = 6.0

# %%
import numpy as np
import torch
from IPython.display import display
from PIL import Image

import cogviz.models as M
from cogviz import viz
from cogviz.encode import decode
from cogviz.fit import fit_image
from cogviz.metrics import anchor_metrics
from cogviz.toy.scenes import prompt_for, render_scene, sample_scene
from cogviz.trainer.data import training_clip
from cogviz.trainer.evaluate import global_motion, psnr_uint8, vae_psnr, zeroed_image_latents
from cogviz.trainer.natural import SourcePool, camera_clip, photo

# %% [markdown]
# ## 1. Shapes world
#
# Part of the training data is generated, not collected: one coloured shape over a plain or
# gently textured background, moving in a straight line for 17 frames of 64 x 96 pixels. The
# prompt states the motion; the **first frame fixes appearance and position** — precisely the
# job of the conditioning image in CogVideoX I2V. A model trained on this must take colour,
# shape and position from the image, and direction from the text. (Section 5 shows the rest of
# the training mix: photographs and camera moves.)

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
# | size | 42 layers, 48 heads x 64 | 8 layers, 4 heads x 32 |
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
# ## 5. Photographs: where the anchor holds, and where it fades
#
# A model that had seen only shapes world would turn your photograph into coloured blobs. So the
# training mix also holds **natural images** — photographs that scikit-image ships, and
# procedural pictures with the statistics of photographs (the *dead-leaves* model: occluding
# textured disks of every size) — in three kinds of clips: a shape moving over a still picture,
# a **camera move** over a still picture ("the camera pans left", "the camera zooms in"), and a
# camera that **holds still** over it ("the camera holds still": every frame is the picture).
# A camera move is the purest test of the anchor: every pixel of every frame must come from
# the image, only displaced.

# %%
pool = SourcePool(0, procedural=8)
camera = training_clip(3, pool, kind="camera")
over_photo = training_clip(4, pool, kind="shapes_photo")
display(viz.picture(np.concatenate([
    viz.frame_strip(camera.frames, picks, titles=[f"{camera.prompt}: {f}" if f == 0 else str(f) for f in picks], zoom=2),
    viz.frame_strip(over_photo.frames, picks, titles=[f"{over_photo.prompt}: {f}" if f == 0 else str(f) for f in picks], zoom=2)])))

# %% [markdown]
# Now a photograph **no training stage ever saw** (it ships with matplotlib, a package the
# training never reads), fitted to the toy's 64 x 96 like any user's picture. We ask the camera
# to hold still, then for two camera moves, and for the first move again with `z_img` zeroed.

# %%
fitted = fit_image(Image.fromarray(photo(PHOTO)), "cogviz-toy", mode="crop")
print(fitted.report.summary())
target = np.asarray(fitted.image)
print(f"the VAE alone (encode, decode) gives this photo back at {vae_psnr(pipe, target):.1f} dB")
still = generate(pipe, fitted.image, "the camera holds still")
pan = generate(pipe, fitted.image, "the camera pans left")
zoom = generate(pipe, fitted.image, "the camera zooms in")
with zeroed_image_latents(pipe):
    pan_no_anchor = generate(pipe, fitted.image, "the camera pans left")
videos = {"holds still": still, "pans left": pan, "zooms in": zoom, "pans left, z_img zeroed": pan_no_anchor}
display(viz.picture(np.concatenate([
    viz.frame_strip(v, picks, titles=[f"{name}: 0"] + [str(f) for f in picks[1:]], zoom=2)
    for name, v in videos.items()])))
for name, v in videos.items():
    dy, dx, s = global_motion(v[0], v[-1])
    print(f"{name:24s} frame 0: {psnr_uint8(v[0], target):5.1f} dB from the photo; content moved "
          f"dx={dx:+.1f} px, dy={dy:+.1f} px, zoom x{s:.2f} (first -> last frame)")

# %% [markdown]
# Read the pictures against the mechanism. With `z_img`, **frame 0 is the photo**, close to
# what the VAE alone gives back (printed above; about 22 dB on held-out photographs at this
# size, as blurred as 16 numbers per 8 x 8 block allow); with `z_img` zeroed, frame 0 is an
# invented haze some 12 dB further away. That is the anchor at work: latent frame
# 0 of `z_img` holds the image, and the transformer copies it through.
#
# The later frames show its limit. Latent frames 1-4 of `z_img` are zeros, so whatever the
# later frames keep of the photo must travel there through the transformer's attention, and
# this small model carries it only part of the way: the photo dissolves into patches of its
# own colours as the clip goes on, and the measured motion rarely matches the prompt. On
# shapes world, which it learned best, the same path keeps the shape whole to the last frame.
# `benchmarks/eval_toy.py` measures both on held-out views (photographs: frame 0 about 21.8 dB,
# 13 dB lost with `z_img` zeroed, the camera's direction right in 7 clips of 10, the last
# frame of a move no longer the photo); the model card (`cogviz/toy/weights/README.md`) has the
# figures.
#
# The still camera separates the two paths. Asked to hold still, every frame should *be* the
# photo: a curve of each frame's PSNR to the fitted photo (`cogviz.metrics.anchor_metrics`,
# the same anchor measure the ablation lessons use) stays flat when the anchor is read all the
# way through. Beside it, the same curve for a **true** pan of this photograph (no model: the
# picture itself moved, as a training clip moves it) shows how far a perfect model's frames
# drift from frame 0 just by moving.

# %%
true_pan, _ = camera_clip(np.random.default_rng(0), "pans left", source=photo(PHOTO), travel=0.2)
with torch.no_grad():  # the true pan through the VAE alone: the best a perfect transformer could decode
    clip = torch.from_numpy(true_pan).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]  # (1, 3, 17, 64, 96)
    z = pipe.vae.encode(clip).latent_dist.mode().permute(0, 2, 1, 3, 4)                 # (1, 5, 16, 8, 12)
true_pan_vae = decode(pipe, z * pipe.vae_scaling_factor_image)
curves = {name: anchor_metrics(v, fitted.image) for name, v in videos.items()}
curves["true pan, VAE only"] = anchor_metrics(true_pan_vae, true_pan[0])
display(viz.anchor_decay(curves, metric="psnr", title="each frame against the photo (PSNR, dB)"))
for name, table in curves.items():
    print(f"{name:28s} frame 0 {table.psnr.iloc[0]:5.1f} dB, frame 4 {table.psnr.iloc[4]:5.1f} dB, "
          f"last frame {table.psnr.iloc[-1]:5.1f} dB")

# %% [markdown]
# Holding still, every frame stays within half a dB of frame 0, about what the VAE alone gives
# back: when nothing has to move, the image read from latent frame 0 is carried through every
# later latent frame. The purple curve is a **true** pan through the VAE alone, measured against
# its own first frame: it falls just by moving (some 10 dB over the clip), and it is the curve a
# perfect transformer would draw. The zoom follows it for half the clip, then falls below it;
# the pan leaves it at once, and by frame 3 it is further from the photo than the video made
# with `z_img` zeroed (red). This model copies the photo where it stays, but does not yet carry
# it to where a camera move takes it. The card's held-out figures say the same: asked to hold
# still, the last frame is the photo (>= 20 dB) in 92 % of views; under a move, in none.

# %% [markdown]
# ## 6. Exercise
#
# The toy VAE compresses 8x in space and 4x in time (the first frame on its own, then groups of
# four). What is the shape `(latent frames, channels, height, width)` of the latent of one
# 17 x 64 x 96 clip, and how many channels does the transformer read at each step?

# %% tags=["answer"]
my_latent_shape = None           # (latent frames, channels, height, width)
my_transformer_channels = None   # channels the transformer reads per step

# %%
from cogviz.lessons import check

with torch.no_grad():
    clip = torch.from_numpy(truth).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]  # (1, 3, 17, 64, 96)
    z = pipe.vae.encode(clip).latent_dist.mode()[0].permute(1, 0, 2, 3)              # (F, C, H, W)
channels = pipe.transformer.config.in_channels
check({"my_latent_shape": my_latent_shape, "my_transformer_channels": my_transformer_channels},
      lambda: None if (tuple(my_latent_shape), my_transformer_channels) == (tuple(z.shape), channels)
      else f"the VAE says {tuple(z.shape)}, the transformer reads {channels} channels",
      f"{tuple(z.shape)} and {channels} channels");

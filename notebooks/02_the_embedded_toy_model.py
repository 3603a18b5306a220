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

import cogviz
from cogviz import ablations as A
from cogviz import viz
from cogviz.toy import SourcePool, camera_clip, evaluation, photo, prompt_for, render_scene, sample_scene, training_clip

# %% [markdown]
# ## 1. Shapes world
#
# Part of the training data is generated, not collected: one coloured shape over a plain or
# gently textured background, moving in a straight line for 17 frames of 64 x 96 pixels. The
# prompt states the motion; the **first frame fixes appearance and position** — precisely the
# job of the conditioning image in CogVideoX I2V. A model trained on this must take colour,
# shape and position from the image, and direction from the text. (Section 6 shows the rest of
# the training mix: photographs and camera moves.)

# %%
scene = sample_scene(SCENE_SEED)
truth = render_scene(scene)
print(prompt_for(scene))
viz.frame_strip(truth, [0, 4, 8, 12, 16], zoom=2)

# %% [markdown]
# ## 2. Exercise: predict the toy's shapes
#
# Before the next section shows the model: the toy's VAE compresses 8x in space and 4x in time
# (the first frame on its own, then groups of four), into 16 channels, and the transformer reads
# the noisy video latent and the image latent side by side. What is the shape `(latent frames, channels, height, width)` of the latent of one
# 17 x 64 x 96 clip, and how many channels does the transformer read at each step?

# %% tags=["answer"]
my_latent_shape = None           # (latent frames, channels, height, width)
my_transformer_channels = None   # channels the transformer reads per step

# %%
from cogviz.lessons import check

pipe = cogviz.load_pipeline("toy")
with torch.no_grad():
    clip = torch.from_numpy(truth).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]  # (1, 3, 17, 64, 96)
    z = pipe.vae.encode(clip).latent_dist.mode()[0].permute(1, 0, 2, 3)              # (F, C, H, W)
channels = pipe.transformer.config.in_channels
check({"my_latent_shape": my_latent_shape, "my_transformer_channels": my_transformer_channels},
      lambda: None if (tuple(my_latent_shape), my_transformer_channels) == (tuple(z.shape), channels)
      else f"the VAE says {tuple(z.shape)}, the transformer reads {channels} channels",
      f"{tuple(z.shape)} and {channels} channels");

# %% [markdown]
# ## 3. Same architecture, smaller numbers
#
# | | CogVideoX-5b-I2V | cogviz-toy |
# |---|---|---|
# | VAE | `AutoencoderKLCogVideoX`, 16 latent channels | the same class, 16 latent channels |
# | compression | 8x in space, 4x in time | 8x in space, 4x in time |
# | video | 49 x 480 x 720 -> 13 x 60 x 90 latents | 17 x 64 x 96 -> 5 x 8 x 12 latents |
# | transformer | `CogVideoXTransformer3DModel`, `in_channels=32` | the same class, `in_channels=32` |
# | size | 42 layers, 48 heads x 64 | 8 layers, 4 heads x 32 |
# | text | T5-XXL, 226 tokens | a small T5 encoder, 16 tokens |
# | scheduler | diffusers' default: DDIM, v-prediction, zero terminal SNR, trailing spacing (the official recipe: DPM++ with dynamic CFG, THUDM/CogVideo `inference/cli_demo.py`; lesson 6) | the same configuration |
#
# The 32 input channels are the point: 16 for the noisy video latent $z_t$ and 16 for the image
# latent $z_{img}$, concatenated along the channel axis at every denoising step.

# %%
cfg = pipe.transformer.config
n_params = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) for name in ("vae", "transformer", "text_encoder")}
print(f"transformer in_channels={cfg.in_channels} (16 + 16), out_channels={cfg.out_channels}, "
      f"layers={cfg.num_layers}, text tokens={cfg.max_text_seq_length}")
print({k: f"{v / 1e6:.2f} M" for k, v in n_params.items()})

# %% [markdown]
# ## 4. Generate with the plain diffusers pipeline
#
# `load_pipeline` returns an ordinary `CogVideoXImageToVideoPipeline`; the only toy-specific
# argument is the text length (16 tokens instead of 226), which cogviz reads from the config.

# %%
image = Image.fromarray(truth[0])


def generate(pipe, image, prompt, seed=0):
    out = pipe(image=image, prompt=prompt, num_frames=17, height=64, width=96, num_inference_steps=STEPS,
               guidance_scale=GUIDANCE, max_sequence_length=cfg.max_text_seq_length,
               generator=torch.Generator().manual_seed(seed), output_type="np")
    return (out.frames[0] * 255).round().astype(np.uint8)


video = generate(pipe, image, prompt_for(scene))
picks = [0, 4, 8, 12, 16]
display(viz.picture(np.concatenate([viz.frame_strip(truth, picks, titles=[f"truth {f}" for f in picks], zoom=2),
                                    viz.frame_strip(video, picks, titles=[f"generated {f}" for f in picks], zoom=2)])))
print(f"frame-0 PSNR against the conditioning image: {cogviz.psnr(video[0], truth[0]):.1f} dB")

# %% [markdown]
# ## 5. The anchor is real: remove it and see
#
# Inside the pipeline the image becomes `z_img`. With it set to zeros (the prompt and the random
# noise unchanged) the model no longer knows what the first frame looks like: it has to invent a
# shape, so frame 0 no longer matches the image. `cogviz.generate` runs the same computation as the
# pipeline with every stage named (lesson 5), and `ablations.ZeroImage()` zeroes `z_img` for that
# call only.

# %%
def generate_cv(image, prompt, *ablations):
    """The same generation through cogviz, with ablations (same seed, steps and guidance)."""
    g = cogviz.generate(pipe, image, prompt, steps=STEPS, guidance=GUIDANCE, seed=0, ablations=list(ablations),
                        progress=False)
    return g.frames


no_anchor = generate_cv(image, prompt_for(scene), A.ZeroImage())
display(viz.rgb_tiles([truth[0], video[0], no_anchor[0]], ["conditioning image", "with z_img", "z_img zeroed"], zoom=2))
with_img, without = cogviz.psnr(video[0], truth[0]), cogviz.psnr(no_anchor[0], truth[0])
print(f"frame 0: {with_img:.1f} dB with the image latent, {without:.1f} dB without")

# %% [markdown]
# ## 6. Photographs: where the anchor holds, and where it fades
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
fitted = cogviz.fit_image(Image.fromarray(photo(PHOTO)), "cogviz-toy", mode="crop")
print(fitted.report.summary())
target = np.asarray(fitted.image)
vae_only = cogviz.psnr(cogviz.decode(pipe, cogviz.encode_image(pipe, fitted, sample=False)[:, :1])[0], target)
print(f"the VAE alone (encode, decode) gives this photo back at {vae_only:.1f} dB")
still = generate(pipe, fitted.image, "the camera holds still")
pan = generate(pipe, fitted.image, "the camera pans left")
zoom = generate(pipe, fitted.image, "the camera zooms in")
pan_no_anchor = generate_cv(fitted, "the camera pans left", A.ZeroImage())
videos = {"holds still": still, "pans left": pan, "zooms in": zoom, "pans left, z_img zeroed": pan_no_anchor}
display(viz.picture(np.concatenate([
    viz.frame_strip(v, picks, titles=[f"{name}: 0"] + [str(f) for f in picks[1:]], zoom=2)
    for name, v in videos.items()])))
for name, v in videos.items():
    dy, dx, s = cogviz.global_motion(v[0], v[-1])
    print(f"{name:24s} frame 0: {cogviz.psnr(v[0], target):5.1f} dB from the photo; content moved "
          f"dx={dx:+.1f} px, dy={dy:+.1f} px, zoom x{s:.2f} (first -> last frame)")
kept, lost = cogviz.psnr(pan[0], target), cogviz.psnr(pan_no_anchor[0], target)
print(f"With z_img, frame 0 is the photo, {vae_only - kept:.1f} dB short of what the VAE alone gives back; "
      f"with z_img zeroed it is {kept - lost:.1f} dB further away: latent frame 0 of z_img holds the image "
      "and the transformer copies it through.")

# %% [markdown]
# Read the pictures against the mechanism: frame 0 against the photo, with and without `z_img`,
# is the anchor at work (the sentence above is computed from these runs). The later frames show
# its limit. Latent frames 1-4 of `z_img` are zeros, so whatever the later frames keep of the
# photo must travel there through the transformer's attention; the motion each prompt asked for
# is measured above (`cogviz.global_motion`) and can be set against the prompt.
# `benchmarks/eval_toy.py` measures the same on held-out views and writes the model card; the
# cell below prints its figures from `cogviz.toy.evaluation()`.

# %%
card = evaluation()["photos"]["summary"]
print(f"On {card['photos']} held-out photographs ({card['steps']} steps): frame 0 at {card['frame0_psnr_median']:.1f} dB "
      f"(the VAE alone {card['vae_psnr_median']:.1f} dB), {card['anchor_drop_db']:.1f} dB lost with z_img zeroed; "
      f"the camera's direction right in {100 * card['camera_ok_rate']:.0f} % of moves; asked to hold still, the last "
      f"frame is the photo in {100 * card['still_ok_rate']:.0f} % of views, under a move in "
      f"{100 * card['last_frame_ok_rate']:.0f} %.")

# %% [markdown]
# The still camera separates the two paths. Asked to hold still, every frame should *be* the
# photo: a curve of each frame's PSNR to the fitted photo (`cogviz.anchor_metrics`,
# the same anchor measure the ablation lessons use) stays flat when the anchor is read all the
# way through. Beside it, the same curve for a **true** pan of this photograph (no model: the
# picture itself moved, as a training clip moves it) shows how far a perfect model's frames
# drift from frame 0 just by moving.

# %%
true_pan, _ = camera_clip(np.random.default_rng(0), "pans left", source=photo(PHOTO), travel=0.2)
with torch.no_grad():  # the true pan through the VAE alone: the best a perfect transformer could decode
    clip = torch.from_numpy(true_pan).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]  # (1, 3, 17, 64, 96)
    z = pipe.vae.encode(clip).latent_dist.mode().permute(0, 2, 1, 3, 4)                 # (1, 5, 16, 8, 12)
true_pan_vae = cogviz.decode(pipe, z * pipe.vae_scaling_factor_image)
curves = {name: cogviz.anchor_metrics(v, fitted.image) for name, v in videos.items()}
curves["true pan, VAE only"] = cogviz.anchor_metrics(true_pan_vae, true_pan[0])
display(viz.anchor_decay(curves, metric="psnr", title="each frame against the photo (PSNR, dB)"))
for name, table in curves.items():
    print(f"{name:28s} frame 0 {table.psnr.iloc[0]:5.1f} dB, frame 4 {table.psnr.iloc[4]:5.1f} dB, "
          f"last frame {table.psnr.iloc[-1]:5.1f} dB")

# %% [markdown]
# Read the curves with the mechanism in mind. Holding still, nothing has to move, and the image
# read from latent frame 0 only has to be carried through every later latent frame. The true pan
# through the VAE alone, measured against its own first frame, falls just by moving: it is the
# curve a perfect transformer would draw under that move. The cell below says, from these curves,
# how each of the model's videos compares with it.

# %%
drop = {name: t.psnr.iloc[0] - t.psnr.iloc[-1] for name, t in curves.items()}
ideal = curves["true pan, VAE only"].psnr.to_numpy()
for name in ("holds still", "pans left", "zooms in"):
    below = np.flatnonzero(curves[name].psnr.to_numpy()[1:] < ideal[1:] - 0.5)
    where = f"falls below the true pan from frame {below[0] + 1}" if len(below) else "stays at or above the true pan"
    print(f"{name:12s}: frame 0 -> last frame {drop[name]:+.1f} dB lost; {where}")
print(f"the true pan itself loses {drop['true pan, VAE only']:.1f} dB just by moving")

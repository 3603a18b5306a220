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
# # Lesson 12 — Other ways to condition on an image
#
# CogVideoX is one answer to "how does a video model read its first image?". Other image-to-video
# models answer differently, and users of CogVideoX ask for what those models do (an end frame, a
# frame that is simply *given*). Here are the families, side by side:
#
# | model | what the denoiser is fed | family |
# |---|---|---|
# | CogVideoX I2V | 16 noise + 16 image channels; the image latent on latent frame 0, zeros after | **concatenation** |
# | Wan 2.1 I2V, Wan 2.2 A14B | 36 channels = 16 noise + 4 mask + 16 image latent, where the image latent is the VAE encoding of *[image, zero pixel frames]* (normalised), so its later latent frames are **not** zeros; 2.1 adds CLIP image tokens (diffusers `pipeline_wan_i2v.py`, `prepare_latents`) | concatenation + mask (+ tokens) |
# | Stable Video Diffusion | 8 channels = 4 noise + 4 image latent, the image latent on **every** frame; CLIP image tokens; noise augmentation (`noise_aug_strength`, fed back as a conditioning input); guidance ramped per frame from 1.0 to 3.0, image-only (diffusers `pipeline_stable_video_diffusion.py`) | concatenation + tokens + per-frame guidance |
# | DynamiCrafter | the image latent repeated over all frames and concatenated, plus image tokens through cross-attention; its interpolation mode puts the first and last frames with zeros between (its `scripts/evaluation/inference.py`) | concatenation + tokens |
# | LTX-Video, Wan 2.2 TI2V-5B | the clean image latent **replaces** the first latent frame, whose tokens get timestep 0 (per-token timesteps: diffusers `pipeline_ltx_image2video.py`, Wan's `expand_timesteps`) | **replacement** |
# | HunyuanVideo-I2V (`latent_concat`, diffusers' default `image_condition_type`) | 33 channels = 16 noise + 16 image latent + 1 mask, the image on latent frame 0 and zeros after | concatenation + mask |
# | HunyuanVideo-I2V (`token_replace`) | the first frame's tokens replaced by the clean image latent's, with their own timestep-0 modulation | replacement |
#
# Two differences run under the table. CogVideoX is a variance-preserving model with the
# v-parameterisation (lesson 6); Wan, LTX-Video and HunyuanVideo are **flow-matching** models. And
# those three give each token its own timestep, so a replaced frame can be marked "already clean";
# CogVideoX has one timestep for every token, so cogviz's replacement writes the image latent
# *noised to the step's timestep* instead — an analogue, not the same mechanism.
#
# cogviz can run each mechanism on one model — the embedded CogVideoX — as ablations, with the
# same noise, so the differences are the mechanism's alone:
#
# * `replace_frame(start, end)`: latent frame 0 of `z_t` replaced, as each step begins, by the
#   image latent noised to that step's timestep, and by the clean latent after the last step
#   (RePaint-style replacement). With `zero_image`, replacement **alone**.
# * `end_image(image)`: a second image's latent on the **last** latent frame of `z_img` (keyframes).
# * `image_guidance(scale, scale_end)`: SVD's per-frame ramp of image guidance.
# * `noise_image(sigma, "latent", schedule="timestep")`: image noise that grows with the timestep,
#   an **inference-time analogue** of the TimeNoise that the conditional-image-leakage paper
#   (arXiv 2406.15735) applies *during training* (its own inference-time remedy is different: start
#   from an earlier timestep, with Analytic-Init).
#
# All but the ramp lie **outside** what CogVideoX was trained on: the lesson measures what the
# model does anyway, and says why.

# %% tags=["parameters"]
STEPS = 20
SCENES = [1_000_000_031, 1_000_000_032]   # held-out scenes (training used seeds < 1e9)

# %%
import numpy as np

import cogviz
from cogviz import ablations as A
from cogviz import anchor_metrics, psnr, viz
from cogviz.toy import prompt_for, render_scene, sample_scene

pipe = cogviz.load_pipeline("toy")
scenes = [sample_scene(s) for s in SCENES]
truths = [render_scene(s) for s in scenes]  # each scene's true video: frame 0 is the image
VARIANTS = {
    "concatenation (stock)": None,
    "replacement alone": [A.ZeroImage(), A.ReplaceFrame()],
    "both": A.ReplaceFrame(),
    "no image": A.ZeroImage(),
    "end frame": None,  # filled per scene below: that scene's true last frame
    "guidance 2": A.ImageGuidance(2.0),
    "guidance ramp 1->3": A.ImageGuidance(1.0, scale_end=3.0),
    "latent noise 0.5": A.NoiseImage(0.5, "latent"),
    "timestep noise 0.5": A.NoiseImage(0.5, "latent", schedule="timestep"),
}
runs = {k: [] for k in VARIANTS}
for scene, truth in zip(scenes, truths):  # every variant of a scene in one batched call, one noise
    variants = [A.EndImage(truth[-1]) if k == "end frame" else v for k, v in VARIANTS.items()]
    for k, g in zip(VARIANTS, cogviz.generate_variants(pipe, truth[0], prompt_for(scene), variants, steps=STEPS,
                                                       progress=False)):
        runs[k].append(g)
tables = {k: [anchor_metrics(g.frames, g.fitted) for g in gs] for k, gs in runs.items()}
print(f"{len(VARIANTS)} variants x {len(scenes)} scenes, {STEPS} steps each")


def strip(keys, picks=(0, 4, 8, 12, 16), scene=0):
    """Frames of one scene under each variant, one row per variant, its name over the first frame."""
    rows = [viz.frame_strip(runs[k][scene].frames, list(picks), zoom=2,
                            titles=[f"{k}, frame {f}" if i == 0 else f"frame {f}" for i, f in enumerate(picks)])
            for k in keys]
    return viz.picture(np.concatenate(rows), width=960)


def mean(key, column, frames=slice(None)):
    """A metric over some frames, averaged over the scenes (motion has no value at frame 0)."""
    return float(np.mean([np.nanmean(t[column].to_numpy()[frames]) for t in tables[key]]))


# %% [markdown]
# ## 1. Concatenation, replacement, both
#
# The stock model reads the image through its 16 image channels. Replacement alone zeroes those
# and instead *writes* the image into latent frame 0 of the video latent at every step; "both"
# does the two at once; "no image" is neither.

# %%
family = ["concatenation (stock)", "replacement alone", "both", "no image"]
strip(family)

# %%
for k in family:
    print(f"{k:24s} frame 0 {mean(k, 'psnr', slice(0, 1)):5.1f} dB   later frames (8-16) SSIM {mean(k, 'ssim', slice(8, None)):.3f}")
later = {k: mean(k, "ssim", slice(8, None)) for k in family}
# what the prose below reads off these numbers, held to them
assert mean("replacement alone", "psnr", slice(0, 1)) < mean("concatenation (stock)", "psnr", slice(0, 1))
assert later["replacement alone"] <= later["no image"] + 0.02, "replacement alone keeps more than no image"
assert abs(later["both"] - later["concatenation (stock)"]) < 0.02, "'both' differs from the stock model"

# %% [markdown]
# (The cell above asserts what this paragraph reads off its numbers.) Replacement pins frame 0 by
# construction: its last step writes the clean image latent into
# latent frame 0. Frame 0 still lands under the stock model: the VAE decoder decodes the latent
# frames in chunks (the first three together, diffusers' `AutoencoderKLCogVideoX._decode`) and its
# group norms mix the frames of a chunk, so the decoded frame 0 also depends on latent frames 1-2, which
# replacement alone leaves unanchored. The later frames tell the story: with
# replacement **alone** they keep no more of the image than with no image at all. This model
# reads its anchor through the image channels; a latent frame written into `z_t` is, to it, just
# another frame to denoise, and what the later frames learn from it is not the image. "Both"
# behaves like the stock model: the replacement adds nothing the channels did not already give.

# %% [markdown]
# ## 2. An end frame
#
# Keyframe conditioning puts a second image on the **last** latent frame of `z_img`. Here it is
# each scene's true last frame. CogVideoX was trained with the image on latent frame 0 only, so
# the last latent frame's image channels were always zero: this is far outside its training
# distribution.

# %%
strip(["concatenation (stock)", "end frame"])

# %%
last = {k: np.mean([psnr(g.frames[-1], t[-1]) for g, t in zip(runs[k], truths)]) for k in ("concatenation (stock)", "end frame")}
print({k: f"{v:.1f} dB" for k, v in last.items()}, "- the last frame against the scene's true last frame")
assert last["end frame"] > last["concatenation (stock)"], "the end image did not pull the last frame towards it"

# %% [markdown]
# Out of distribution does not mean ignored: on this model the last frame moves towards the end
# image. The image channels of every latent frame go through the same first layer, so a latent
# there is read as "the image of this frame", even though training never put one there. How far
# that carries to a large model, and whether the frames between follow a sensible path, is what
# a sweep on a real checkpoint would show.

# %% [markdown]
# ## 3. Image guidance: one scale or a ramp
#
# SVD guides on the image with a scale that grows over the frames. `image_guidance(1.0,
# scale_end=3.0)` does that on CogVideoX's latent frames (mean 2), against one scale of 2.

# %%
strip(["concatenation (stock)", "guidance 2", "guidance ramp 1->3"])

# %% [markdown]
# ## 4. Image noise: constant or growing with the timestep
#
# Noise on the image latent weakens the anchor. Constant noise weakens it at every step; timestep
# noise (`sigma x t / 1000`, drawn afresh each step) only while the video is still noisy, when
# the model would otherwise copy the image most — and not at all at the end, when details form.

# %%
strip(["concatenation (stock)", "latent noise 0.5", "timestep noise 0.5"])

# %%
for k in ("concatenation (stock)", "latent noise 0.5", "timestep noise 0.5"):
    print(f"{k:24s} mean SSIM to the image {mean(k, 'ssim'):.3f}   motion {mean(k, 'motion'):.2f} px/frame")
assert abs(mean("timestep noise 0.5", "ssim") - mean("concatenation (stock)", "ssim")) < 0.02
assert mean("latent noise 0.5", "ssim") < mean("concatenation (stock)", "ssim") - 0.2

# %% [markdown]
# Constant latent noise of 0.5 is far outside what the model saw (its training noises pixels, by
# about 0.05): the noise itself becomes the video. The same sigma scaled by the timestep leaves
# the video close to the stock one: at the steps where the details form, `t` is small and so is
# the noise. On this small model there is no over-reliance for it to cure; the paper's claim is
# about large models that copy the image too early.

# %% [markdown]
# ## 5. Every mechanism on the anchor-decay curves and the fidelity–motion plane
#
# The SSIM to the image frame by frame (the band spans the scenes), then each run as a point:
# mean motion against mean SSIM to the image.

# %%
viz.anchor_decay(tables, "ssim", title="anchor decay: SSIM to the image per frame")

# %%
viz.fidelity_motion(tables, title="fidelity vs motion")

# %% [markdown]
# ## 6. Exercise: predict, then measure
#
# The ramp gives the **last** latent frame an image-guidance scale of 3, the single scale gives
# it 2. Which of the two keeps the last four frames (13-16) closer to the image (higher SSIM,
# mean over the scenes)? Write `"ramp"` or `"constant"`.

# %% tags=["answer"]
my_prediction = None   # "ramp" or "constant"

# %%
from cogviz.lessons import check

late = {k: mean(k, "ssim", slice(13, None)) for k in ("guidance 2", "guidance ramp 1->3")}
measured = "ramp" if late["guidance ramp 1->3"] > late["guidance 2"] else "constant"
print({k: round(v, 3) for k, v in late.items()})
check({"my_prediction": my_prediction}, lambda: None if my_prediction == measured else f"measured: {measured} - see the numbers above",
      f"the {measured} guidance keeps the last frames closer to the image: " + (
          "the ramp runs linearly from 1 (plain CFG) to 3 over the latent frames, so it pulls towards the image less "
          "than the constant 2 on the first half of them and more only on the last; the later frames build on the "
          "earlier ones, and that early weakness is not made up at the end" if measured == "constant" else
          "the ramp's extra pull on the last latent frames, where the image is furthest, outweighs its weaker start"));

# %% [markdown]
# ## What one model can and cannot say
#
# These runs compare mechanisms on a model trained for one of them. Replacement and end frames
# are outside its training distribution, so a weak result says how much CogVideoX depends on its
# own way of reading the image, not how well replacement works in a model trained for it (LTX-Video
# and Wan 2.2 TI2V learn to treat a replaced frame as given). The same calls run unchanged on
# `THUDM/CogVideoX-5b-I2V` with a GPU: `cogviz sweep` with these kinds gives the curves at full
# size.

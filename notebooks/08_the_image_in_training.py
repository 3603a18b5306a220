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
# # Lesson 8 — The image in training: noise, dropout, and why zeros along time
#
# Lessons 3 to 7 used `z_img` as the sampler builds it: the clean image, encoded, on latent frame 0,
# zeros after. Training built it differently, and the difference explains what the model does at
# sampling time. This lesson reads the training recipe from its source, measures what the model
# does across the training distribution, and asks what the zeros after frame 0 mean.
#
# The source is THUDM/CogVideo's SAT code: `sat/diffusion_video.py` (`add_noise_to_first_frame`,
# the image dropout) and the I2V configs `sat/configs/cogvideox_5b_i2v.yaml` and
# `cogvideox1.5_5b_i2v.yaml`. The CogVideoX paper (arXiv 2408.06072) describes text-to-video and
# gives no I2V conditioning detail, so the code is the authority.
#
# Prerequisites: lessons 3 (encoding) and 7 (ablations as data, `anchor_metrics`).

# %% tags=["parameters"]
SCENE_SEED = 1_000_000_017          # a held-out scene (training used seeds < 1e9)
STEPS = 20
SIGMAS = [0.0, 0.02, 0.05, 0.13, 0.3]   # pixel noise on the image in [-1, 1], before encoding

# %%
import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats

import cogviz
from cogviz import ablations as A
from cogviz import viz
from cogviz.toy import prompt_for, render_scene, sample_scene

pipe = cogviz.load_pipeline("toy")
scene = sample_scene(SCENE_SEED)
image, prompt = render_scene(scene)[0], prompt_for(scene)

# %% [markdown]
# ## 1. What training fed the model
#
# For every training clip, SAT's `add_noise_to_first_frame` draws **one** noise level
# $\sigma = e^{n}$, $n \sim \mathcal N(-3, 0.5^2)$, adds $\sigma\,\varepsilon$ to the first frame's
# pixels (in $[-1, 1]$) and encodes the result; with probability `noised_image_dropout: 0.05` the
# image latent is zeroed instead, and with `ucg_rate: 0.1` the text is dropped. At sampling time
# both diffusers and SAT encode the **clean** image: $\sigma = 0$, the far low tail of what training
# saw. (Stable Video Diffusion does it the other way round: it adds noise at sampling too,
# `noise_aug_strength`, and tells the model how much as a conditioning input. The 1.5 config's
# `augmentation_dropout: 0.15` is read by no public code.)
#
# Why augment at all? Without noise the model can copy the first frame's exact pixels and learn
# little about what they show; with it, the conditioning is "a slightly degraded picture of the
# first frame", which also bridges real photographs and video frames.

# %%
sigma = stats.lognorm(s=0.5, scale=np.exp(-3))          # sigma = exp(n), n ~ N(-3, 0.5^2)
lo, med, hi = sigma.ppf([0.023, 0.5, 0.977])
print(f"training's sigma: median {med:.3f}; 95 % of clips between {lo:.3f} and {hi:.3f}; "
      f"P(sigma < 0.01) = {sigma.cdf(0.01):.1e}. Sampling uses sigma = 0.")
xs = np.linspace(1e-4, 0.35, 500)
fig = Figure(figsize=(8, 2.4), layout="constrained")
ax = fig.subplots()
ax.plot(xs, sigma.pdf(xs), label="training: one sigma per clip")
ax.axvline(0, color="C3", lw=2, label="sampling: sigma = 0")
for s in SIGMAS[1:]:
    ax.axvline(s, color="0.7", ls=":", lw=1)
ax.set(xlabel="pixel noise sigma on the image ([-1, 1] units)", ylabel="density",
       title="the image's noise: training against sampling (dotted: this lesson's sweep)")
ax.legend(frameon=False)
viz.picture(fig)

# %% [markdown]
# ## 2. Exercise: is "no image" the same as "a black or grey image"?
#
# After frame 0, `z_img` holds zeros. Zero is also what dropout writes when there is no image at
# all. Before the next section measures it: is the VAE latent of a flat **mid-grey** frame close
# to zero (as small, next to a real image's latent, as 10 % of its size), or not?

# %% tags=["answer"]
my_prediction = None   # "zero" or "not zero"

# %%
from cogviz.lessons import check

grey = np.full_like(image, 128)
z_grey = cogviz.encode_image(pipe, grey, sample=False)[0, 0]
z_real = cogviz.encode_image(pipe, image, sample=False)[0, 0]
ratio = (z_grey.norm() / z_real.norm()).item()
truth = "zero" if ratio < 0.1 else "not zero"


def wrong():
    if my_prediction not in ("zero", "not zero"):
        return 'answer "zero" or "not zero"'
    return None if my_prediction == truth else f"the grey frame's latent is {ratio:.2f} times the size of the image's"


why = ("so a zero latent frame is not 'a grey frame': it is a value the VAE never produces, which the model "
       "learned to read as 'no image here'" if truth == "not zero" else
       "so on this VAE a zero latent frame is close to 'a grey frame'")
check({"my_prediction": my_prediction}, wrong,
      f"{truth}: the grey frame's latent is {ratio:.2f} times the size of the image's, {why}.");

# %% [markdown]
# ## 3. The model across the training noise
#
# `ablations.NoiseImage(sigma, space="pixel")` is exactly the training augmentation, at a chosen
# $\sigma$. Every variant below shares the initial noise and the posterior draw; `ZeroImage` is
# the dropout case, and `FillFrames` puts the image latent on **every** latent frame (what SVD and
# DynamiCrafter do, and SAT's unused `noised_image_all_concat` flag).

# %%
variants = {f"sigma {s:g}": A.NoiseImage(s, space="pixel") if s else None for s in SIGMAS}
variants["z_img zeroed (dropout)"] = A.ZeroImage()
variants["image on every frame"] = A.FillFrames()
gens = cogviz.generate_variants(pipe, image, prompt, list(variants.values()), steps=STEPS, progress=False)
tables = {name: cogviz.anchor_metrics(g.frames, image) for name, g in zip(variants, gens)}
for name, t in tables.items():
    print(f"{name:24s} frame 0 {t.psnr.iloc[0]:5.1f} dB   later frames' SSIM to the image {t.ssim.iloc[1:].mean():.3f}")

fig = Figure(figsize=(8, 2.6), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
sweep = [tables[f"sigma {s:g}"] for s in SIGMAS]
ax1.plot(SIGMAS, [t.psnr.iloc[0] for t in sweep], "o-")
ax2.plot(SIGMAS, [t.ssim.iloc[1:].mean() for t in sweep], "o-")
for ax, key in ((ax1, "psnr"), (ax2, "ssim")):
    zero = tables["z_img zeroed (dropout)"]
    ax.axhline(zero.psnr.iloc[0] if key == "psnr" else zero.ssim.iloc[1:].mean(), color="C3", ls="--",
               label="z_img zeroed")
    ax.axvspan(lo, hi, color="0.9", zorder=0, label="95 % of training's sigma")
    ax.set(xlabel="pixel noise sigma")
ax1.set(ylabel="frame 0 PSNR to the image (dB)")
ax2.set(ylabel="later frames' SSIM to the image")
ax2.legend(frameon=False, fontsize=8)
viz.picture(fig)

# %%
base, top = tables["sigma 0"], tables[f"sigma {SIGMAS[-1]:g}"]
inside = [s for s in SIGMAS if lo <= s <= hi]
spread = max(tables[f"sigma {s:g}"].psnr.iloc[0] for s in inside) - min(tables[f"sigma {s:g}"].psnr.iloc[0] for s in inside)
print(f"Within training's range (sigma {', '.join(f'{s:g}' for s in inside)}) frame 0 moves by {spread:.1f} dB; "
      f"at sigma {SIGMAS[-1]:g}, beyond it, frame 0 is {base.psnr.iloc[0] - top.psnr.iloc[0]:.1f} dB further from the "
      f"image than at sigma 0. With the image on every frame, the later frames' SSIM is "
      f"{tables['image on every frame'].ssim.iloc[1:].mean():.3f} against {base.ssim.iloc[1:].mean():.3f}.")

# %% [markdown]
# ## 4. Why zeros along time, and the alternatives
#
# CogVideoX puts the image on latent frame 0 and zeros after it. The zeros carry two meanings at
# once: "no image" (the 5 % dropout zeroes frame 0 too) and "a later frame". The model can still
# tell frame 0 from the rest because every token also carries its position (learned and rotary
# embeddings on 1.0, rotary on 1.5: lesson 9). The exercise showed that zero is not the latent of a
# flat frame. Other models made other choices:
#
# - **repeat** the image latent on every frame: Stable Video Diffusion, DynamiCrafter (section 3's
#   `FillFrames`, off-distribution for CogVideoX);
# - **pad in pixel space, then encode**: Wan encodes *[image, zero pixel frames]*, so its later
#   latent frames are the VAE's encoding of flat frames, not zeros (the cell below builds it on the
#   toy's VAE);
# - **mask channels** that say which frames hold the image: Wan (4 channels), HunyuanVideo-I2V's
#   `latent_concat` (1 channel);
# - **replacement**: LTX-Video and Wan 2.2 TI2V write the clean latent into the first frame itself
#   (lesson 12).

# %%
clip = np.concatenate([image[None], np.zeros((16, *image.shape), np.uint8)])           # image, then black frames
with torch.no_grad():
    x = torch.from_numpy(clip).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]     # (1, 3, 17, 64, 96)
    wan_style = pipe.vae.encode(x).latent_dist.mode()[0].transpose(0, 1) * pipe.vae.config.scaling_factor
cog_style = cogviz.encode_image(pipe, image, sample=False)[0]
for f in range(wan_style.shape[0]):
    print(f"latent frame {f}: CogVideoX-style |z_img| {cog_style[f].norm():6.2f}   "
          f"[image, black frames] encoded {wan_style[f].norm():6.2f}")

# %% [markdown]
# ## Summary
#
# - Training noised the image's pixels with one $\sigma = e^{n}$, $n \sim \mathcal N(-3, 0.5^2)$,
#   per clip, zeroed the image latent 5 % of the time and dropped the text 10 % of the time;
#   sampling feeds $\sigma = 0$.
# - Section 3's sweep shows how much of the anchor survives across and beyond that range, with
#   the dropout case as the floor.
# - Zeros after frame 0 mean both "no image" and "a later frame"; they are not the latent of a
#   flat frame. Repetition, pixel-space padding, mask channels and replacement are the
#   alternatives other families chose.

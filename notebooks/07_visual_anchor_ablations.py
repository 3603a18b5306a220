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
# # Lesson 7 — The visual anchor, measured: ablations of the image conditioning
#
# Lessons 4 and 5 showed *where* the image enters CogVideoX I2V: its latent `z_img` is
# concatenated with the noisy video latent on the channel axis at every denoising step. This
# lesson asks **how much** the video depends on it, and **when**. We change the conditioning —
# remove it, swap it, add noise, hide a region, move it, feed it only at some steps, blur it,
# guide towards it — and measure how strongly the frames stay anchored to the image.
#
# Two rules make the comparisons fair:
#
# * **Everything else is held fixed.** Each ablation keeps the initial noise, the prompt and the
#   posterior draw of `z_img`; only the conditioning changes.
# * **An ablation is data.** Each one is a small frozen object that serializes to JSON, is
#   applied for one `generate` call only, and is recorded in the trace's metadata.
#
# We also keep track of which ablations stay **inside the training distribution**. CogVideoX I2V
# was trained with the image latent dropped (zeroed) 5% of the time and with small pixel noise on
# the image, $\sigma = e^{n},\ n \sim \mathcal N(-3, 0.5^2)$ in $[-1, 1]$ units (THUDM/CogVideo
# `sat/diffusion_video.py`, `sat/configs/cogvideox_5b_i2v.yaml`; lesson 8 takes this apart);
# anything else asks the model a question it never saw.

# %% tags=["parameters"]
SCENES = (1_000_000_011, 1_000_000_012, 1_000_000_013)  # held-out scenes of shapes world
STEPS = 30
GUIDANCE = 6.0

# %%
import json

import numpy as np
import pandas as pd
from IPython.display import display

import cogviz
from cogviz import ablations as A
from cogviz import anchor_metrics, generate_variants, summarize, viz
from cogviz.toy import prompt_for, render_scene, sample_scene

pipe = cogviz.load_pipeline("toy")
scenes = [sample_scene(s) for s in SCENES]
images = [render_scene(s)[0] for s in scenes]   # the conditioning images: first frames


def run(*ablations, scene=0, **knobs):
    """One controlled generation: the same scene, seed and steps; only the conditioning changes."""
    return cogviz.generate(pipe, images[scene], prompt_for(scenes[scene]), steps=STEPS, guidance=GUIDANCE,
                           seed=scene, progress=False, ablations=list(ablations), **knobs)


def variants(named, scene=0):
    """Several ablations of one scene at once: {name: Generation}. `generate_variants` keeps them
    controlled exactly as separate `run` calls would (same noise, same draw of z_img) and feeds
    their rows to the transformer in one batched forward per step (benchmarks/bench_sweep.py times it).
    Results equal separate calls up to float rounding (the kernels sum in another order)."""
    gens = generate_variants(pipe, images[scene], prompt_for(scenes[scene]), list(named.values()), steps=STEPS,
                             guidance=GUIDANCE, seed=scene, progress=False)
    return dict(zip(named, gens))


# %% [markdown]
# ## 1. Measuring the anchor
#
# `anchor_metrics(frames, image)` measures every frame against the fitted conditioning image,
# and against the previous frame:
#
# | column | what it measures |
# |---|---|
# | `psnr`, `ssim` | pixel fidelity and structural similarity to the image (scikit-image) |
# | `palette` | distance between the CIELAB colour histograms (0 = same colours) |
# | `layout` | correlation of the coarse light/dark layout (12 x 18 cells) |
# | `flicker` | VBench's $1 - \text{mean}|f_t - f_{t-1}|/255$ (1 = nothing changes) |
# | `motion` | mean optical-flow magnitude to the previous frame (pixels) |
#
# Frame 0 should match the image closely; later frames drift as the shape moves.

# %%
base = run()
table = anchor_metrics(base.frames, base.fitted)
display(table.head(5).round(3))
picks = [0, 4, 8, 12, 16]
viz.frame_strip(base.frames, picks, titles=[f"frame {f}" for f in picks], zoom=2)

# %% [markdown]
# ## 2. Ablations are data
#
# Every kind is a frozen dataclass with a `to_dict()`; `from_dict` turns the dict back into the
# ablation. A list is applied in order. The everyday knobs of `generate` —
# `image_strength`, `image_noise`, `image_window`, `image_guidance` — build the same objects.

# %%
for kind, cls in A.KINDS.items():
    print(f"{kind:16s} in distribution? {cls.in_distribution}")
a = A.NoiseImage(0.05, space="pixel")
print(json.dumps(a.to_dict()), "->", A.from_dict(json.loads(json.dumps(a.to_dict()))))
same = run(image_noise=0.05)
print("image_noise=0.05 equals ablations=[NoiseImage(0.05)]:", np.array_equal(same.frames, run(a).frames))
print("recorded in the trace:", same.trace.meta["ablations"])

# %% [markdown]
# ## 3. Remove it, or swap it
#
# `zero_image` sets `z_img` to zeros — the in-distribution dropout: the model must invent frame
# 0 from the text alone. `swap_image` feeds another image's latent (with the same posterior draw
# and the same initial noise): if the image is the anchor, frame 0 should now look like the
# *other* image.

# %%
zero = run(A.ZeroImage())
other = images[1]
swap = run(A.SwapImage(other))
f0 = {name: anchor_metrics(g.frames[:1], images[0])["psnr"][0] for name, g in
      (("baseline", base), ("zero_image", zero), ("swap_image", swap))}
print({k: f"{v:.1f} dB" for k, v in f0.items()}, "(frame 0 against the conditioning image)")
print(f"swap_image frame 0 against the swapped-in image: {anchor_metrics(swap.frames[:1], other)['psnr'][0]:.1f} dB")
viz.rgb_tiles([images[0], base.frames[0], zero.frames[0], other, swap.frames[0]],
              ["image", "baseline f0", "zeroed f0", "swapped-in", "swapped f0"], zoom=2)

# %% [markdown]
# ## 4. Noise: in pixels before encoding, or in the latent
#
# Pixel noise before the VAE is CogVideoX's own training augmentation (median $\sigma$ 0.05);
# the VAE partly averages it away. The same $\sigma$ added to the latent hits the model
# directly. We run each on all scenes and draw the **anchor-decay curves**: SSIM to the image,
# frame by frame (mean over the scenes, band = min to max). Look for the baseline: at
# $\sigma$ = 0.05 in pixels the curve lies on top of it (the cell asserts it).
#
# From here on a section's ablations of one scene run together: `variants` hands them to
# `generate_variants`, which batches them through the transformer (lesson 13's sweeps do the same).

# %%
def over_scenes(named):
    """Each named ablation on every scene: {name: [its metrics table on each scene]}."""
    tables = {name: [] for name in named}
    for k in range(len(scenes)):
        for name, g in variants(named, scene=k).items():
            tables[name].append(anchor_metrics(g.frames, g.fitted))
    return tables


noise = {"baseline": None}   # None: the baseline, no ablation
for sigma in (0.05, 0.5):
    noise[f"pixel sigma={sigma}"] = A.NoiseImage(sigma, space="pixel")
    noise[f"latent sigma={sigma}"] = A.NoiseImage(sigma, space="latent")
noise_runs = over_scenes(noise)


def later_ssim(name):
    return np.mean([t["ssim"][1:].mean() for t in noise_runs[name]])


assert abs(later_ssim("pixel sigma=0.05") - later_ssim("baseline")) < 0.02, "training's median pixel noise moved the curve"
viz.anchor_decay(noise_runs, "ssim", title="noise on the image: pixel space vs latent space")

# %% [markdown]
# ## 5. Which parts of the image anchor what: mask, shift, flip
#
# `mask_image` removes a box of the latent (or keeps only it), `shift_image` moves the latent by
# whole cells (8 pixels), `flip_image` mirrors it. None of these were trained: they test whether
# the model copies what is *there* in the latent, wherever it is.

# %%
h, w = base.fitted.size
spatial = {"baseline": base, **variants({
    "left half removed": A.MaskImage((0, 0, w // 2, h)),
    "left half kept": A.MaskImage((0, 0, w // 2, h), keep=True),
    "shifted 24 px right": A.ShiftImage(24, 0),
    "flipped": A.FlipImage(),
})}
viz.picture(np.concatenate([viz.frame_strip(g.frames, [0, 8, 16], titles=[f"{name}: {f}" for f in (0, 8, 16)],
                                            zoom=2) for name, g in spatial.items()]))

# %% [markdown]
# ## 6. Exercise: predict, then measure
#
# The next section feeds the image in only the first 30% of the steps, or only in the last 70%.
# Which keeps **frame 0** closer to the conditioning image (higher PSNR, mean over the scenes)?
# Write `"early"` or `"late"` below before running it; the check comes after the measurement.

# %% tags=["answer"]
my_prediction = None   # "early" (steps 0-30%) or "late" (steps 30-100%)

# %% [markdown]
# ## 7. When does the model read the image? Step windows
#
# `step_window(start, end)` keeps the image channels only for that fraction of the denoising
# steps and zeros them elsewhere (ComfyUI's start/end percent). Early steps decide the coarse
# layout and colours; late steps refine detail. Which half of the schedule carries the anchor?
#
# `low_pass_image(factor, until)` blurs the latent for the first steps only (a published recipe
# for CogVideoX-5b-I2V uses 0.25 for the first 4% of steps to free motion: ALG, arXiv 2506.08456,
# its `configs/cogvideox_alg.yaml`), and
# `image_guidance(scale)` adds a third guidance branch with the image removed, pushing the
# prediction further towards the image (scale > 1), less towards it (0 < scale < 1), or away from
# it (scale < 0); lesson 6 writes the formula out.

# %%
window_runs = {"baseline": noise_runs["baseline"], **over_scenes({
    "image in steps 0-30%": A.StepWindow(0.0, 0.3),
    "image in steps 30-100%": A.StepWindow(0.3, 1.0),
    "low-pass 0.25 until 30%": A.LowPassImage(0.25, 0.3),
    "image guidance 3": A.ImageGuidance(3.0),
    "image guidance 0.5": A.ImageGuidance(0.5),
})}
viz.anchor_decay(window_runs, "psnr", title="when the image is read: step windows, low-pass, image guidance")

# %% [markdown]
# ## 8. The trade-off users tune blind: fidelity against motion
#
# Every run becomes one point: mean SSIM to the image (up = anchored) against mean motion
# (right = moving). Image noise and strength are usually raised to "unfreeze" a video; the plane
# shows what each costs in fidelity.
#
# `summarize` condenses each run; its **anchor half-life** is the frame at which SSIM to the
# image has lost half of frame 0's excess over a floor — here the mean SSIM of the runs with the
# image zeroed, i.e. what an unanchored video scores against this image (`inf`: the anchor holds
# to the last frame).

# %%
plane = {**noise_runs, **{k: v for k, v in window_runs.items() if k != "baseline"},
         **over_scenes({"strength 0.5": A.ScaleImage(0.5), "zero_image": A.ZeroImage()})}
floor = np.mean([t["ssim"].mean() for t in plane["zero_image"]])  # the SSIM of an unanchored video
summary = pd.DataFrame([summarize(t, floor=floor).rename(k) for k, tables in plane.items() for t in tables])
display(summary.groupby(level=0, sort=False)[["frame0_psnr", "mean_ssim", "half_life", "motion"]].mean().round(3))
viz.fidelity_motion(plane)

# %% [markdown]
# ## 9. Exercise: the measurement
#
# Your prediction from section 6, against the step windows of section 7.

# %%
from cogviz.lessons import check

frame0 = {k: np.mean([t["psnr"][0] for t in window_runs[k]]) for k in ("image in steps 0-30%", "image in steps 30-100%")}
measured = "early" if frame0["image in steps 0-30%"] > frame0["image in steps 30-100%"] else "late"
print({k: f"{v:.1f} dB" for k, v in frame0.items()})
check({"my_prediction": my_prediction}, lambda: None if my_prediction == measured else f"measured: {measured} - see the numbers above",
      f"'{measured}' keeps frame 0 closer. " + (
          "On this model the image is read until the last steps: without it there, frame 0's details are "
          "re-invented, however well the early steps laid it out." if measured == "late" else
          "On this model the first steps lay frame 0 out from the image, and the later steps keep that layout "
          "without reading the image again."));

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
# # Lesson 5 — Image-to-video generation, one named step at a time
#
# The diffusers pipeline hides the step this toolkit exists to teach: the image latent `z_img`
# is built inside `prepare_latents` and concatenated with the noisy video latent inside the
# denoising loop, where no callback can see or change it. `cogviz.generate` runs the **same
# computation** over the pipeline's own modules (the tests prove it equal to
# `CogVideoXImageToVideoPipeline.__call__`, bit for bit on the CPU), but every stage has a name,
# can be recorded, and can be replaced.
#
# This lesson uses the embedded toy model (a real CogVideoX I2V architecture, 17 frames of
# 64 x 96); the last section runs the same cell on a real checkpoint when one is available.

# %% tags=["parameters"]
SCENE_SEED = 1_000_000_005          # a held-out scene of shapes world (training used seeds < 1e9)
STEPS = 50
GUIDANCE = 6.0
SEED = 0
REAL_CHECKPOINT = None              # e.g. "THUDM/CogVideoX-5b-I2V" or a local folder, on a machine with a GPU

# %%
import inspect
import tempfile
from pathlib import Path

import numpy as np
import torch

import cogviz
from cogviz import NAMES, Intervention, concat_condition, sample_path, video, viz
from cogviz.toy import prompt_for, render_scene, sample_scene

# %% [markdown]
# ## 1. Generate, with progress
#
# A held-out scene gives us a conditioning image (its first frame) and a prompt that states the
# motion. `generate` fits the image to the model's size, encodes it, denoises for `STEPS` steps
# with classifier-free guidance and decodes the result. `record` picks which named stages to
# keep: here every step's 32-channel input as well as the cheap defaults.

# %%
pipe = cogviz.load_pipeline("toy")
scene = sample_scene(SCENE_SEED)
truth = render_scene(scene)
prompt = prompt_for(scene)
print("prompt:", prompt)

g = cogviz.generate(pipe, truth[0], prompt, steps=STEPS, guidance=GUIDANCE, seed=SEED,
                    record=("image.fitted", "z_img", "prompt_embeds", "step/*/z_t", "step/*/input",
                            "step/*/pred", "latents.final", "frames"))
print(g.frames.shape, g.frames.dtype)

# %% [markdown]
# ## 2. The trace and its names
#
# Every stage has one stable name, listed in `cogviz.NAMES` (`{i}` is the step). A trace
# is a dictionary of CPU copies: recording never keeps tensors on the GPU. It saves to
# safetensors with its settings as JSON metadata (never pickle).

# %%
print("names:", NAMES)
for name in ["image.fitted", "z_img", "prompt_embeds", "step/0/z_t", "step/0/input", "step/0/pred",
             "latents.final", "frames"]:
    t = g.trace[name]
    print(f"{name:15s} {str(tuple(t.shape)):24s} {t.dtype}")
print(f"recorded {len(g.trace.names())} tensors, {g.trace.nbytes() / 1e6:.1f} MB")

# %% [markdown]
# The names are checked before any compute. A record pattern, an intervention's point or a CFG
# `half` that matches nothing in this call is an error that names the closest valid names: a typo
# never returns an unablated video that looks like a result.

# %%
try:
    cogviz.generate(pipe, truth[0], prompt, steps=STEPS, record=("z_image",))
except cogviz.PointError as e:
    print("PointError:", e)

# %% [markdown]
# `z_img` has the layout of the video latent, `[B, F, C, h, w]`: 5 latent frames for 17 video
# frames (the first frame alone, then groups of four), 16 channels, 8x smaller in space. Only
# latent frame 0 holds the image; the later latent frames are zeros.

# %%
z_img = g.trace["z_img"]
print("per latent frame |z_img| mean:", [round(float(z_img[0, f].abs().mean()), 3) for f in range(z_img.shape[1])])

# %% [markdown]
# ## 3. The concatenation itself
#
# This is the whole of CogVideoX's image conditioning, one line in a function named for it:

# %%
print(inspect.getsource(concat_condition))

# %% [markdown]
# Under classifier-free guidance the transformer reads a batch of two: the negative prompt first,
# then the prompt. Both halves carry the **same** `z_img` in channels 16-31, while channels 0-15
# hold the noisy latent `z_t`. The trace lets us check this at every step:

# %%
for i in range(STEPS):
    x = g.trace.at("input", i)                         # step i's input, (2, F, 32, h, w)
    assert x.shape[2] == 32
    assert torch.equal(x[1, :, :16], g.trace.at("z_t", i)[0])   # channels 0-15: z_t (DDIM scales by 1)
    assert torch.equal(x[0, :, 16:], z_img[0]) and torch.equal(x[1, :, 16:], z_img[0])
print(f"all {STEPS} steps: input = concat(z_t, z_img) on channels, z_img the same in both CFG halves")

# %% [markdown]
# ## 4. Watch and export the video
#
# `video.show` embeds H.264 in a `<video>` tag (it survives saving the notebook as HTML);
# `video.save` writes mp4, gif or a PNG strip. Beside it, the scene the prompt describes.

# %%
video.show(video.grid({"generated": g.frames, "scene (truth)": truth}), width=400)
out = Path(tempfile.mkdtemp()) / "generated.mp4"
video.save(g.frames, out)
print(out.name, out.stat().st_size, "bytes")

# %% [markdown]
# ## 5. An intervention: take the image away
#
# An `Intervention` names a point (`"z_img"`, `"step/*/input"`, `"step/3/pred"`, ...) and a
# function that returns the tensor to use instead. Replacing `z_img` by zeros gives the
# transformer nothing in channels 16-31: the text still says what moves, but the image no longer
# says what it looks like or where it starts. The intervention lives for one call; the pipeline
# is untouched afterwards.

# %%
zeroed = cogviz.generate(pipe, truth[0], prompt, steps=STEPS, guidance=GUIDANCE, seed=SEED,
                         interventions=[Intervention("z_img", lambda z, ctx: torch.zeros_like(z))])

from cogviz import psnr  # PSNR in dB (capped at 100 for identical frames); the one cogviz uses

with_image, without_image = psnr(g.frames[0], truth[0]), psnr(zeroed.frames[0], truth[0])
print(f"frame 0 vs the conditioning image: {with_image:.1f} dB with z_img, {without_image:.1f} dB with z_img = 0")
video.show(video.grid({"z_img": g.frames, "z_img = 0": zeroed.frames}), width=400)

# %%
picks = [0, 4, 8, 12, 16]
viz.picture(np.concatenate([viz.frame_strip(g.frames, picks, titles=[f"with z_img, frame {f}" for f in picks]),
                            viz.frame_strip(zeroed.frames, picks, titles=[f"z_img = 0, frame {f}" for f in picks])]),
            width=1000)

# %% [markdown]
# ## 6. GenerateUI
#
# The same function behind a widget: choose an image (an `ImageFitter`), type a prompt, set
# steps, guidance, seed and frame count, and press **Run** (moving a slider never starts the
# model). During the steps the preview shows the clean frame 0 the model currently predicts,
# through a linear latent -> RGB map fitted to the model's own decoder (no VAE decode per step);
# then a player with a frame scrubber shows the video. `ui.generation` holds the last result.

# %%
from cogviz.widgets import GenerateUI, ImageFitter

ui = GenerateUI(pipe, ImageFitter(sample="shapes"), prompt="a red circle moves right", steps=STEPS)
ui

# %%
ui.run()   # what the Run button does
print(ui.generation.frames.shape, "| progress", ui.progress.value, "/", ui.progress.max)

# %% [markdown]
# ## 7. Exercise
#
# Under classifier-free guidance the prediction is `uncond + w * (cond - uncond)` with `w = 6`.
# Suppose `z_img` is zeroed in the **conditional half only**
# (`Intervention("z_img", zero, half="cond")`): the unconditional half still sees the image, the
# conditional half does not. Will frame 0 end up *further* from the conditioning image than in
# section 5 (zeroed in both halves), or *closer*? Think about the sign of `cond - uncond`, set
# your answer, then run the check.

# %% tags=["answer"]
my_answer = None      # "further" or "closer"

# %% [markdown]
# The measurement:

# %%
flipped = cogviz.generate(pipe, truth[0], prompt, steps=STEPS, guidance=GUIDANCE, seed=SEED, progress=False,
                          interventions=[Intervention("z_img", lambda z, ctx: torch.zeros_like(z), half="cond")])
measured = psnr(flipped.frames[0], truth[0])
truth_is = "further" if measured < without_image else "closer"
print(f"frame 0 PSNR: {with_image:.1f} dB normally, {without_image:.1f} dB with z_img = 0 in both halves, "
      f"{measured:.1f} dB with z_img = 0 in the conditional half only")
viz.rgb_tiles([truth[0], zeroed.frames[0], flipped.frames[0]], ["image", "z_img = 0", "cond half = 0"], zoom=2)

# %%
from cogviz.lessons import check

check({"my_answer": my_answer}, lambda: None if my_answer == truth_is else f"the measurement says {truth_is!r}",
      f"{truth_is}: " + ("guidance amplifies (cond - uncond), which now points away from the image" if truth_is == "further"
                         else "the unconditional half still carries the image, and here its pull outweighs the "
                              "amplified (cond - uncond) that points away from it"));

# %% [markdown]
# ## 8. The same cell on a real checkpoint
#
# Nothing above is specific to the toy model. With a GPU and the weights on disk, set
# `REAL_CHECKPOINT` in the parameters cell (for example to `"THUDM/CogVideoX-5b-I2V"` or the
# folder you downloaded it to) and this cell runs the same function at 49 x 480 x 720. Recording
# per-step tensors costs memory: the defaults keep only the cheap stages.

# %%
if REAL_CHECKPOINT is not None and torch.cuda.is_available():
    real = cogviz.load_pipeline(REAL_CHECKPOINT, memory=["vae_tiling", "vae_slicing"])
    big = cogviz.generate(real, sample_path("lighthouse"), "waves roll towards a lighthouse at dusk",
                          steps=STEPS, guidance=GUIDANCE, seed=SEED)
    video.show(big.frames, width=720)
else:
    print("REAL_CHECKPOINT not set or no GPU: the toy model stood in for it above")

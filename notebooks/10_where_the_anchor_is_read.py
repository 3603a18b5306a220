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
# # Lesson 10 — Where the anchor is read: inside the transformer
#
# Lessons 4 to 9 changed the image conditioning at the transformer's input and watched the frames
# at its output. This lesson opens the path between. CogVideoX's attention is full 3D attention
# over *[text tokens, video tokens]*; the video tokens come token frame by token frame, and only
# the first token frame holds the image latent `z_img`. So the later frames can read the image
# **through attention to the image frame's tokens** — and by a second road: CogVideoX updates the
# text tokens in every block, so a text token can read the image frame in one block and be read by
# the later frames in the next. If the direct road carries the anchor, cutting it should leave
# frame 0 looking like the image while the later frames lose it, as if `z_img` had been zeroed for
# them; `attention_knockout(queries="text")` cuts the second road, `queries=["text", "later"]` both
# (the inside guide gives what the embedded model measures for each).
#
# cogviz makes each step a line of code, as data like every other ablation:
#
# * `attention_knockout(layers, queries, keys, start, end)`: in those blocks and that fraction of
#   the steps, `queries` tokens cannot attend to `keys` tokens (masked before the softmax);
# * `scale_attention(factor, ...)`: that attention multiplied by `factor` and renormalized;
# * `patch_activations(source, layers, frames, ...)`: a block's hidden states for some frames'
#   tokens replaced by the ones the same call computes for another image;
# * block points `step/{i}/block/{l}/hidden`: any block's output, recorded or changed.

# %% tags=["parameters"]
STEPS = 20
SCENES = [900_011, 900_012]

# %%
import numpy as np
from IPython.display import display

import cogviz
from cogviz import ablations as A
from cogviz import viz
from cogviz import block_map, map_picture
from cogviz import anchor_metrics, psnr
from cogviz.toy import prompt_for, render_scene, sample_scene

pipe = cogviz.load_pipeline("toy")
scenes = [sample_scene(s) for s in SCENES]
firsts = [render_scene(s)[0] for s in scenes]
blocks = len(pipe.transformer.transformer_blocks)
print(f"the embedded model: {blocks} blocks; {STEPS} steps")

# %% [markdown]
# ## 1. Knock out the road to the image
#
# Three variants of the same call, batched and sharing their noise: the baseline, the later
# frames' attention to the image frame knocked out in every block and step, and `z_img` zeroed.

# %%
variants = {"baseline": None, "knockout": A.AttentionKnockout(), "z_img zeroed": A.ZeroImage()}
runs = {k: [] for k in variants}
for scene, first in zip(scenes, firsts):
    gens = cogviz.generate_variants(pipe, first, prompt_for(scene), list(variants.values()), steps=STEPS,
                                    progress=False)
    for k, g in zip(variants, gens):
        runs[k].append(g)
picks = [0, 4, 8, 16]
viz.picture(np.concatenate([viz.frame_strip(runs[k][0].frames, picks, titles=[f"{k}: {f}" for f in picks])
                            for k in variants], axis=0), width=640)

# %% [markdown]
# Frame 0 stays the image under the knockout (its own tokens still read `z_img`), while the later
# frames drift as they do without the image. The SSIM to the image, frame by frame:

# %%
tables = {k: [anchor_metrics(g.frames, g.fitted) for g in gs] for k, gs in runs.items()}
for k, ts in tables.items():
    print(f"{k:22s} frame 0 {np.mean([t['psnr'][0] for t in ts]):5.1f} dB, "
          f"later frames' SSIM {np.mean([t['ssim'][8:].mean() for t in ts]):.3f}")
viz.anchor_decay(tables, "ssim", title="SSIM to the image per frame (mean over the scenes)")

# %% [markdown]
# ## 2. Which blocks, which steps? The map
#
# One knockout per block and per half of the steps, batched with its baseline (`block_map`): the
# change of the later frames' SSIM against the baseline. A dark cell is where the anchor is read.

# %%
table = block_map(pipe, firsts[0], prompt_for(scenes[0]), windows=[(0.0, 0.5), (0.5, 1.0)], steps=STEPS)
display(table[table["figure"] == "later_ssim"].pivot_table(index="block", columns="window", values="change")
        .round(3))
map_picture(table, "later_ssim")

# %% [markdown]
# ## 3. Patching: where is the picture decided?
#
# Now the image frame's tokens themselves: after block *l*, replace their hidden states by the
# ones the same call computes for a second image. Patched in one block at a time, how close does
# frame 0 come to the second image? (dB of PSNR to the second image minus to the first: above 0,
# frame 0 shows the second image.)

# %%
second = render_scene(sample_scene(900_013))[0]
patches = [A.PatchActivations(second, layers=[b]) for b in range(blocks)] + [A.PatchActivations(second)]
gens = cogviz.generate_variants(pipe, firsts[0], prompt_for(scenes[0]), patches, steps=STEPS, progress=False)
lean = [psnr(g.frames[0], second) - psnr(g.frames[0], firsts[0]) for g in gens]
for b, v in enumerate(lean[:-1]):
    print(f"patched after block {b}: {v:+6.2f} dB towards the second image")
print(f"patched after every block: {lean[-1]:+6.2f} dB")
assert min(lean) > 0, "a single block's patch did not bring frame 0 towards the second image"
viz.rgb_tiles([firsts[0], second, gens[0].frames[0], gens[blocks - 1].frames[0], gens[-1].frames[0]],
              ["image", "second image", "patch block 0", f"patch block {blocks - 1}", "patch every block"], zoom=2)

# %% [markdown]
# Patched after *any* single block, frame 0 leans to the second image (the cell above prints
# each block's lean and asserts it is above 0 for every block): the image frame's picture rides in its own tokens' residual stream from the first block to the last, and
# each block passes it on. It is not decided in one block; it is carried.
#
# ## 4. Inside one block: the image frame against the later frames
#
# A block point records a block's output for the video tokens, `(rows, token frames, h, w,
# channels)`. How similar is each token frame to the image frame, block by block? (Cosine
# similarity of the token frames' mean hidden state, last step, prompt row.) In the first blocks the
# later frames differ most from the image frame; block by block they grow alike, as they read it.

# %%
g = cogviz.generate(pipe, firsts[0], prompt_for(scenes[0]), steps=STEPS, progress=False,
                    record=("step/*/block/*/hidden",))
last = STEPS - 1
sims = []
for b in range(blocks):
    h = g.trace.at(f"block/{b}/hidden", last)[1].float()      # (F', h, w, D), the prompt row
    m = h.mean(dim=(1, 2))                                     # (F', D): one vector per token frame
    sims.append((m @ m[0] / (m.norm(dim=1) * m[0].norm())).numpy())
viz.heatmap(np.array(sims), row_labels=[f"block {b}" for b in range(blocks)],
            col_labels=[f"f{f}" for f in range(len(sims[0]))], title="cos to the image frame")

# %% [markdown]
# ## 5. Exercise: predict, then measure
#
# Knock the later frames' attention to the image frame out in **all** blocks, but only in the
# first half of the steps (`end=0.5`) or only in the second half (`start=0.5`). Which costs the
# later frames more of the anchor (lower SSIM to the image)? Write `"early"` or `"late"`.

# %% tags=["answer"]
my_prediction = None   # "early" (steps 0-50%) or "late" (steps 50-100%)

# %%
from cogviz.lessons import check

windows = {"early": A.AttentionKnockout(end=0.5), "late": A.AttentionKnockout(start=0.5)}
later = {k: [] for k in windows}
for scene, first in zip(scenes, firsts):
    gs = cogviz.generate_variants(pipe, first, prompt_for(scene), list(windows.values()), steps=STEPS,
                                  progress=False)
    for k, gk in zip(windows, gs):
        later[k].append(anchor_metrics(gk.frames, gk.fitted)["ssim"][8:].mean())
ssim = {k: float(np.mean(v)) for k, v in later.items()}
measured = min(ssim, key=ssim.get)
print({k: round(v, 3) for k, v in ssim.items()})
check({"my_prediction": my_prediction}, lambda: None if my_prediction == measured else f"measured: {measured} - see the numbers above",
      f"cutting the road in the {measured} steps costs the later frames more.");

# %% [markdown]
# ## What the toy shows, and what it cannot say
#
# On the embedded model the later frames read the image through attention to the image frame's
# tokens: cut that road and they lose about as much as with `z_img` zeroed, while frame 0 keeps
# the image. The map and the patching say *where* that happens on **this** 8-block model trained
# on shapes and photographs at 64 x 96. CogVideoX-5b-I2V has 42 blocks, 48 heads, 13 latent
# frames and was trained on millions of videos: the same calls run on it unchanged
# (`load_pipeline("THUDM/CogVideoX-5b-I2V")`), but which blocks matter there is a question for
# that model, not an answer this lesson can give.

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
SCENES = [1_000_000_021, 1_000_000_022]   # held-out scenes (training used seeds < 1e9)

# %%
import numpy as np
from IPython.display import display

import cogviz
from cogviz import ablations as A
from cogviz import anchor_metrics, block_map, map_picture, psnr, viz
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
# The knockout is a **masked softmax**. In every head of the edited blocks, with $S = QK^\top/\sqrt d$
# over *[text, video]* tokens,
#
# $$A = \operatorname{softmax}(S + M), \qquad M_{ij} = \begin{cases} -\infty & i \in \text{later frames},\ j \in \text{image frame} \\ 0 & \text{otherwise,} \end{cases}$$
#
# so each later query's weights on the remaining keys are its old weights renormalised,
# $A_{ij} = a_{ij} / \sum_{j' \notin \text{image}} a_{ij'}$; `ScaleAttention(s)` uses $M_{ij} = \log s$
# instead ($s = 0$ is the knockout, $s = 1$ the baseline). cogviz adds $M$ as a one-row bias that
# broadcasts, never a token x token mask. The cell checks the renormalisation identity with
# `torch.softmax`, then the sampler at both ends of $\log s$: `ScaleAttention(1)` must give the
# baseline's final latent and `ScaleAttention(0)` the knockout's.

# %%
import torch

S = torch.randn(6, 10, generator=torch.Generator().manual_seed(0))
image_keys = torch.zeros(10, dtype=torch.bool)
image_keys[2:5] = True
M = torch.where(image_keys, float("-inf"), 0.0).expand(4, 10)            # queries 2..5 are "later"
masked = torch.softmax(S[2:] + M, dim=-1)
a = torch.softmax(S[2:], dim=-1)
renormalised = torch.where(image_keys, 0.0, a) / a[:, ~image_keys].sum(-1, keepdim=True)
print(f"softmax(S + M) vs the renormalised weights: largest difference {(masked - renormalised).abs().max():.1e}")
assert torch.allclose(masked, renormalised, atol=1e-6)

ends = cogviz.generate_variants(pipe, firsts[0], prompt_for(scenes[0]),
                                [None, A.ScaleAttention(1.0), A.AttentionKnockout(), A.ScaleAttention(0.0)],
                                steps=4, decode_video=False, progress=False)
final = [g.trace["latents.final"] for g in ends]
print(f"ScaleAttention(1) vs baseline: {(final[1] - final[0]).abs().max():.1e}; "
      f"ScaleAttention(0) vs knockout: {(final[3] - final[2]).abs().max():.1e}; "
      f"knockout vs baseline: {(final[2] - final[0]).abs().max():.2f}")
assert torch.allclose(final[1], final[0], atol=1e-5) and torch.allclose(final[3], final[2], atol=1e-5)

# %% [markdown]
# ## 2. Exercise: predict, then measure
#
# Before the next section maps the knockout block by block and window by window: knock the later frames' attention to the image frame out in **all** blocks, but only in the
# first half of the steps (`end=0.5`) or only in the second half (`start=0.5`). Which costs the
# later frames more of the anchor (lower SSIM to the image)? Write `"early"` or `"late"`.

# %% tags=["answer"]
my_prediction = None   # "early" (steps 0-50%) or "late" (steps 50-100%)

# %% [markdown]
# ## 3. Which blocks, which steps? The map
#
# One knockout per block and per half of the steps, batched with its baseline (`block_map`): the
# change of the later frames' SSIM against the baseline. A dark cell is where the anchor is read.

# %%
table = block_map(pipe, firsts[0], prompt_for(scenes[0]), windows=[(0.0, 0.5), (0.5, 1.0)], steps=STEPS)
display(table[table["figure"] == "later_ssim"].pivot_table(index="block", columns="window", values="change")
        .round(3))
map_picture(table, "later_ssim")

# %% [markdown]
# ## 4. Patching: where is the picture decided?
#
# Now the image frame's tokens themselves: after block *l*, replace their hidden states by the
# ones the same call computes for a second image. Patched in one block at a time, how close does
# frame 0 come to the second image? (dB of PSNR to the second image minus to the first: above 0,
# frame 0 shows the second image.)

# %%
second = render_scene(sample_scene(1_000_000_023))[0]
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
# ## 5. Inside one block: the image frame against the later frames
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
# ## 6. Exercise: the measurement
#
# Your prediction from section 2: the knockout in all blocks, early against late, over the scenes.

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
      f"cutting the road in the {measured} steps costs the later frames more: " + (
          "the later frames take the image's content early, while the video's layout is decided, and cannot "
          "recover it afterwards (lesson 11 measures when the video is decided)" if measured == "early" else
          "the later frames keep reading the image until the last steps, so cutting it late loses more"));

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

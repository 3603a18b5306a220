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
# # Lesson 11 — Where each frame looks, and when the video is decided
#
# Lesson 10 cut the road from the image to the later frames and watched them lose the image. This
# lesson looks along the road. Inside every block, each video token's attention is a softmax over
# all keys, text and video:
#
# $$\mathrm{attn}(q_i) = \sum_j a_{ij}\, v_j, \qquad a_{ij} = \frac{\exp(q_i \cdot k_j / \sqrt{d})}{\sum_{j'} \exp(q_i \cdot k_{j'} / \sqrt{d})}.$$
#
# The weights $a_{ij}$ on the keys $j$ of the image frame (token frame 0) say **where in the image**
# token $i$ reads. cogviz computes them beside the attention, in chunks of queries, never holding
# the whole matrix, and records them as named points:
#
# * `step/{i}/block/{l}/readmap`: each token frame's weights on each image token, per head;
# * `step/{i}/block/{l}/readtokens`: the same for every video token (mean over heads);
# * `step/{i}/block/{l}/words`: every video token's weight on each text token;
# * `step/{i}/block/{l}/concepts`: each text token's attention *output* dotted with each video
#   token's (ConceptAttention's output-space maps, Helbling et al., arXiv 2502.04320);
# * `step/{i}/x0` and `step/{i}/block/{l}/lens`: what the model believes the finished video is, at
#   each step and after each block.
#
# The embedded model's scenes have a known motion, so what the maps say can be checked.

# %% tags=["parameters"]
STEPS = 20
SCENE = 1_000_000_001
BLOCK = 3

# %%
import numpy as np
import torch
from IPython.display import display

import cogviz
from cogviz import ablations as A
from cogviz import (
    anchor_metrics,
    argmax_flow,
    belief_curve,
    belief_frames,
    belief_strip,
    belief_table,
    concept_map,
    decided_at,
    decode_latents,
    head_table,
    viz,
    word_map,
    x0_of,
)
from cogviz.toy import displacement, prompt_for, render_scene, sample_scene, shape_tokens

pipe = cogviz.load_pipeline("toy")
scene = sample_scene(SCENE)
image, prompt = render_scene(scene, frames=[0])[0], prompt_for(scene)
g = cogviz.generate(pipe, image, prompt, steps=STEPS, seed=1, progress=False,
                    record=("frames", "step/*/x0", "step/*/z_t", "step/*/pred", f"step/*/block/{BLOCK}/readmap",
                            f"step/*/block/{BLOCK}/readtokens", f"step/*/block/{BLOCK}/words",
                            "step/*/block/2/concepts", "step/*/block/*/readmap", f"step/{STEPS // 2}/block/*/lens"))
print(f"'{prompt}': {g.frames.shape[0]} frames; the trace holds {len(g.trace.names())} tensors")

# %% [markdown]
# ## 1. Where each frame reads the image
#
# Block 3's read map in the middle of sampling, the prompt's row: each later token frame's
# attention on the image frame's tokens, over the image. One colour scale for all panels.

# %%
mid = STEPS // 2
viz.read_map_picture(g.trace.row(f"step/{mid}/block/{BLOCK}/readmap"), g.fitted,
                     title=f"block {BLOCK}, step {mid}: where each later frame reads the image")

# %% [markdown]
# ## 2. Correspondence: from where in the image does each token read?
#
# For every token of a later frame, the image token it attends to most; the arrow goes from there
# to the token (cyan). The shape moves, so its tokens should read the image's shape: their arrows
# should match the shape's true displacement (yellow). How far are they, in tokens, against a field
# that says "nothing moved"?

# %%
true = torch.tensor(np.stack([displacement(scene, 4 * j) for j in range(5)]))  # latent frame j ends on frame 4j
arrows = argmax_flow(g.trace.row(f"step/{mid}/block/{BLOCK}/readtokens"))
display(viz.arrows_picture(arrows, g.frames, true=true))
on_shape = [torch.tensor(shape_tokens(scene, 4 * j)) for j in range(5)]
error = np.mean([(arrows[j][on_shape[j]] - true[j]).norm(dim=-1).mean().item() for j in range(1, 5)])
still = np.mean([true[j].norm().item() for j in range(1, 5)])
print(f"on the shape's tokens the arrows are {error:.2f} tokens from the true displacement; a field that says "
      f"'nothing moved' is {still:.2f} tokens from it")

# %% [markdown]
# The background stays put (arrows of length 0), the shape's tokens point back to where the shape
# was: attention reads the image as a correspondence, the observation DiffTrack makes of
# CogVideoX. (`benchmarks/bench_readmaps.py` measures it per block over held-out scenes.)
#
# ## 3. When is the video decided?
#
# At step $i$ the model predicts a velocity $v$; with $\bar\alpha_t$ the noise schedule, the clean
# latent it implies is
#
# $$\hat x_0 = \sqrt{\bar\alpha_t}\, z_t - \sqrt{1 - \bar\alpha_t}\, v,$$
#
# the scheduler's own `pred_original_sample`, recorded as `step/{i}/x0`. Decoded, it is the model's
# belief about the finished video at that step.

# %%
steps_shown = [0, STEPS // 4, STEPS // 2, STEPS - 1]
beliefs = belief_frames(pipe, g.trace, steps_shown)
display(belief_strip(beliefs, frames=(0, 12), zoom=2))
i, t = STEPS // 2, pipe.scheduler.timesteps[STEPS // 2]
a = pipe.scheduler.alphas_cumprod[int(t)]
by_hand = a.sqrt() * g.trace[f"step/{i}/z_t"] - (1 - a).sqrt() * g.trace[f"step/{i}/pred"]
gap = (by_hand - g.trace[f"step/{i}/x0"]).abs().max().item()
print(f"x0 = sqrt(a) z_t - sqrt(1 - a) v at step {i}, by hand against the sampler's: largest difference {gap:.1e}")

# %%
table = belief_table(pipe, g.trace, g.fitted)
display(belief_curve(table, frames=(0, 12)))
for f in (0, 12):
    print(f"frame {f} is decided (SSIM to its final look >= 0.9 from then on) at step {decided_at(table, f)}")

# %% [markdown]
# ## 4. The block lens: what each block would predict
#
# Block $l$'s output, sent through the model's own final norm and projection, is the prediction the
# model would make if it stopped there; through the formula above it becomes a belief per block.
# At the last block it is the model's output.

# %%
z = g.trace[f"step/{mid}/z_t"]
t = pipe.scheduler.timesteps[mid]
lens_frames = []
for b in range(len(pipe.transformer.transformer_blocks)):
    lens = g.trace.row(f"step/{mid}/block/{b}/lens")[None]         # (1, F, 16, h, w), the prompt's row
    x0 = x0_of(pipe.scheduler, z, lens, t)
    with torch.no_grad():
        video = decode_latents(pipe, x0)[0]
    lens_frames.append((video[12].numpy() * 255).round().astype(np.uint8))
viz.rgb_tiles(lens_frames, [f"block {b}" for b in range(len(lens_frames))], zoom=2)

# %% [markdown]
# ## 5. Words on the video
#
# Every video token's attention on the prompt's colour word, over the frames: where the word sits.

# %%
colour = word_map(g.trace.row(f"step/{mid}/block/{BLOCK}/words"), pipe.tokenizer, prompt, scene.colour)
viz.map_over_frames(colour, g.frames, frames=[1, 2, 3, 4], title=f"'{scene.colour}' on the video, block {BLOCK}",
                    label=f"attention on '{scene.colour}'")

# %% [markdown]
# Attention weights are one view of a word; ConceptAttention reads words in the attention's
# *output* space instead: the score of word $c$ at video token $i$ is $o_c \cdot o_i$, the dot product
# of their attention outputs, softmaxed over the words compared. Its CogVideoX port adds concept
# tokens that read the video without being read; here the prompt's own tokens already sit in the
# joint attention, so their outputs serve and the call is unchanged. The colour word against the
# shape word, block 2:

# %%
versus = concept_map(g.trace.row(f"step/{mid}/block/2/concepts"), pipe.tokenizer, prompt, [scene.colour, scene.shape])
viz.map_over_frames(versus[0], g.frames, frames=[1, 2, 3, 4], vmin=0.0, vmax=1.0,
                    title=f"'{scene.colour}' against '{scene.shape}' in output space, block 2",
                    label=f"share of '{scene.colour}'")

# %% [markdown]
# ## 6. Heads
#
# Per head and block, the later frames' share of attention on the image frame (mean over steps):
# does one head carry the anchor?

# %%
heads = head_table(g.trace).groupby(["head", "block"])["image_share"].mean().unstack()
viz.change_map(heads.to_numpy(), row_labels=[f"head {h}" for h in heads.index],
               col_labels=[f"{b}" for b in heads.columns], centred=False, xlabel="block", ylabel="head",
               label="later frames' share on the image frame", title="the anchor, head by block")

# %% [markdown]
# ## 7. Exercise: two roads — predict, then measure
#
# The later frames can reach the image directly (their attention to the image frame) or through
# the text tokens, which read the image frame in one block and are read in the next.
# `AttentionKnockout(queries="later")` cuts the first road, `AttentionKnockout(queries="text")`
# the second. Which cut costs the later frames more of the anchor (SSIM to the image)? Write
# `"direct"` or `"text"`.

# %% tags=["answer"]
my_prediction = None   # "direct" or "text"

# %%
from cogviz.lessons import check

roads = {"none": None, "direct": A.AttentionKnockout(), "text": A.AttentionKnockout(queries="text"),
         "both": A.AttentionKnockout(queries=["text", "later"])}
gens = cogviz.generate_variants(pipe, image, prompt, list(roads.values()), steps=STEPS, seed=1, progress=False)
later = {k: float(anchor_metrics(x.frames, x.fitted)["ssim"][1:].mean()) for k, x in zip(roads, gens)}
print({k: round(v, 3) for k, v in later.items()})
costs = {k: later["none"] - later[k] for k in ("direct", "text")}
measured = max(costs, key=costs.get)
check({"my_prediction": my_prediction},
      lambda: None if my_prediction == measured else
      f"measured: cutting the {measured} road costs {costs[measured]:+.3f} SSIM, the other {costs[my_prediction]:+.3f}",
      f"the {measured} road costs {costs[measured]:+.3f} SSIM when cut, the other {min(costs.values()):+.3f}; "
      "closing both costs what the numbers above show.");

# %% [markdown]
# ## What the toy shows, and what it cannot say
#
# On this 8-block model the maps are sharp enough to check against the truth: the moving shape's
# tokens read the image's shape, the arrows follow the motion in some blocks more than others, and
# the belief at each step shows when each frame settles. The text road exists in the architecture
# (the inside guide's test shows it moving the later frames in a two-block model) and carries no
# measurable part of this model's anchor. On CogVideoX-5b-I2V the same calls run unchanged; what they
# show there is that model's answer.

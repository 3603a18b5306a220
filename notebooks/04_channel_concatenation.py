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
# # Lesson 4 — Channel concatenation: 16 + 16 = 32
#
# At every denoising step CogVideoX I2V feeds its transformer
# `concat(z_t, z_img, dim=channels)`: the 16 channels of the noisy video latent `z_t` and the
# 16 channels of the image latent `z_img`. This lesson records one generation of the toy model
# and looks at the two halves before and after the concatenation, across latent frames and
# steps, at how the first layer weighs them, and at how the anchor spreads through attention.

# %% tags=["parameters"]
SCENE_SEED = 1_000_000_005
STEPS = 20
SEED = 0

# %%
import numpy as np
import torch
from IPython.display import display
from matplotlib.figure import Figure

import cogviz
from cogviz import contribution_maps, patch_embed_split, video, viz
from cogviz.toy import prompt_for, render_scene, sample_scene

pipe = cogviz.load_pipeline("toy")
scene = sample_scene(SCENE_SEED)
truth = render_scene(scene)
g = cogviz.generate(pipe, truth[0], prompt_for(scene), steps=STEPS, seed=SEED,
                    record=("z_img", "step/*/z_t", "step/*/input", "step/*/pred", "latents.final", "frames"),
                    attention_layers="all")


def show(img, title=None, width=900):
    display(viz.picture(img, title=title, width=width))  # a viz.Picture shows itself as a PNG


print(prompt_for(scene), "|", len(g.trace.names()), "tensors recorded")

# %% [markdown]
# ## 1. Before: `z_t` and `z_img`
#
# Both have the video latent's shape `(F, 16, h, w)`. At the first step `z_t` is pure noise;
# `z_img` is the encoded image on latent frame 0.

# %%
z_t0 = g.trace["step/0/z_t"][0]
z_img = g.trace["z_img"][0]
print("z_t", tuple(z_t0.shape), "| z_img", tuple(z_img.shape))
show(np.concatenate([viz.channel_mosaic(z_t0[0], zoom=4, title="z_t, step 1, latent frame 0"),
                     viz.channel_mosaic(z_img[0], zoom=4, title="z_img, latent frame 0")], axis=1))

# %% [markdown]
# ## 2. After: the 32-channel input
#
# The transformer's input at step `i` is recorded as `step/{i}/input`. Channels 0-15 are `z_t`,
# channels 16-31 are `z_img`, the band between them is where `torch.cat` joined them.

# %%
print("input", tuple(g.trace["step/0/input"].shape), "rows:", g.trace.rows())  # (2, F, 32, h, w)
x = g.trace.row("step/0/input")        # the prompt's row, by its role: (F, 32, h, w)
assert torch.equal(x[:, :16], z_t0) and torch.equal(x[:, 16:], z_img)
show(viz.channel_mosaic(x[0], split=16, zoom=4, title="step 1, latent frame 0: concat(z_t, z_img)"))

# %% [markdown]
# ## 3. Exercise: predict before the next sections show it
#
# In the first layer, which latent frames receive a non-zero contribution from the image
# channels, at any step? Give the list of frame indices, then check it against the
# contribution maps of every step.

# %% tags=["answer"]
my_frames = None      # a list of latent frame indices

# %%
from cogviz.lessons import check

receiving = set()
for i in range(STEPS):
    m = contribution_maps(pipe, g.trace.row(f"step/{i}/input"))["image"]
    receiving |= {f for f in range(m.shape[0]) if m[f].max() > 0}
check({"my_frames": my_frames}, lambda: None if sorted(my_frames) == sorted(receiving) else f"the maps say {sorted(receiving)}",
      f"only {sorted(receiving)}: the later latent frames' image channels are zeros, so the image half of the "
      "first layer adds nothing there; the later frames learn about the image through attention (lesson 10)");

# %% [markdown]
# ## 4. The zero padding over latent frames
#
# `z_img` only fills latent frame 0; every later latent frame of channels 16-31 is zero. The
# frames x channels overview makes the pattern visible: a full left half, and on the right a
# single row that carries the image.

# %%
show(viz.frames_overview(x, split=16, tile=16), "input at step 1: rows = latent frames")

# %% [markdown]
# ## 5. One moves, the other does not
#
# Over the steps `z_t` travels from noise to the clean video latent, while `z_img` is the same
# tensor at every step: the model re-reads the same anchor each time. The film shows both on one
# fixed colour scale; the numbers below measure how much each changes from step to step.

# %%
film = viz.denoising_film(g.trace)
video.show(film, fps=4, width=800)
x = g.trace.stack("input")[:, 1]  # every step's input, prompt half: (steps, F, 32, h, w)
noise, image = x[:, :, :16], x[:, :, 16:]
moves = [float((noise[i + 1] - noise[i]).norm() / noise[i].norm()) for i in range(STEPS - 1)]
fixed = [float((image[i + 1] - image[i]).norm()) for i in range(STEPS - 1)]
print("relative change of z_t per step:", np.round(moves, 3))
print("change of z_img per step:      ", fixed)
assert max(fixed) == 0 and min(moves) > 0
viz.stats_figure(g.trace)  # a matplotlib figure drawn into a Picture (the figure is on .figure)

# %% [markdown]
# ## 6. How the first layer weighs the two halves
#
# The transformer's first layer, `patch_embed.proj`, turns each 2 x 2 patch of the 32 channels
# into one token. Its weights split into the part that reads `z_t` and the part that reads
# `z_img`. Their norms say how strongly each input channel *can* enter; the contribution maps
# `|W_img * patch(z_img)|` and `|W_noise * patch(z_t)|` say how strongly each half *does*
# enter each token, frame by frame and step by step.

# %%
split = patch_embed_split(pipe)
fig = Figure(figsize=(8, 2.5), layout="constrained")  # a plain Figure: no pyplot state involved
ax = fig.subplots()
ax.bar(np.arange(16) - 0.2, split["noise"], width=0.4, label="weights reading z_t (0-15)")
ax.bar(np.arange(16) + 0.2, split["image"], width=0.4, label="weights reading z_img (16-31)")
ax.set(xlabel="channel within its half", ylabel="weight norm")
ax.legend(fontsize=8)
display(viz.picture(fig))

for step in (0, STEPS - 1):
    maps = contribution_maps(pipe, g.trace.row(f"step/{step}/input"))
    hi = float(max(maps["image"].max(), maps["noise"].max()))  # one colour scale for both rows
    rows = [viz.rgb_tiles([viz.colourise(maps[key][f], vmax=hi) for f in range(maps[key].shape[0])],
                          [f"{key}, f{f}" for f in range(maps[key].shape[0])], zoom=20) for key in ("noise", "image")]
    show(np.concatenate(rows), f"step {step + 1}: per-token contribution (one scale)")
    print(f"step {step + 1}: mean image contribution on frame 0 {maps['image'][0].mean():.2f}, "
          f"later frames {maps['image'][1:].mean():.2f}; mean noise contribution {maps['noise'].mean():.2f}")

# %% [markdown]
# ## 7. Anchor attention: how the image spreads through time
#
# Only tokens of latent frame 0 receive the image directly. Every other frame learns about it
# through attention. With `attention_layers="all"` the trace records, per layer and step, the
# share of attention that the tokens of each latent frame pay to each key frame; the column for
# frame 0 is the anchor.

# %%
layers = range(pipe.transformer.config.num_layers)
anchor = np.stack([g.trace.row(f"step/{STEPS - 1}/block/{l}/attention")[:, 1].numpy() for l in layers])
show(viz.heatmap(anchor, row_labels=[f"layer {l}" for l in layers], col_labels=[f"f{i}" for i in range(5)],
                 title="share of attention on latent frame 0, last step"), width=480)
uniform = 1 / (1 + anchor.shape[1])
print(f"a uniform spread would give each key frame about {uniform:.2f} (text counted as one group)")

# %% [markdown]
# ## 8. LatentExplorer
#
# All of the above behind sliders: tensor, step, latent frame (press Play to step through
# frames), channel subset, normalisation and view. Every picture is rendered from the recorded
# trace; moving a slider never runs the model.

# %%
from cogviz.widgets import LatentExplorer

explorer = LatentExplorer(g, pipe=pipe)
explorer

# %%
explorer.view.value = "contribution"
explorer.step.value = STEPS - 1
print(explorer.info.value)

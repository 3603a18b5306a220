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
# # Lesson 9 — How the first layer reads 32 channels, in CogVideoX 1.0 and 1.5
#
# Lesson 4 concatenated `z_t` and `z_img` into 32 channels. The transformer's first layer, the
# **patch embedding**, turns them into tokens, and it is where CogVideoX 1.0 and 1.5 differ most:
# 1.0 reads a 2 x 2 patch of one latent frame, 1.5 a 2 x 2 patch of **two** latent frames. This
# lesson opens that layer on the trained toy (a 1.0 model) and on small random 1.0 and 1.5 models
# built from the same diffusers classes, and lists what else changed between the families.
#
# Sources: diffusers' `CogVideoXPatchEmbed` (`models/embeddings.py`), the image-to-video pipeline
# (`pipeline_cogvideox_image2video.py`), THUDM/CogVideo's SAT sampler (`sat/sample_video.py`) and
# configs, and cogviz's one home for the family rules, `cogviz.FAMILIES`.
#
# Prerequisites: lessons 3 (the latent, its scaling) and 4 (the 32 channels).

# %% tags=["parameters"]
SCENE_SEED = 1_000_000_019

# %%
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import cogviz
from cogviz import viz
from cogviz.toy import render_scene, sample_scene

toy = cogviz.load_pipeline("toy")
tiny = {"1.0": cogviz.tiny_random_pipeline("1.0"), "1.5": cogviz.tiny_random_pipeline("1.5")}
image = render_scene(sample_scene(SCENE_SEED))[0]

# %% [markdown]
# ## 1. Exercise: how much does one token read?
#
# A 1.0 token reads a 2 x 2 patch of the 32-channel input on one latent frame: $2 \cdot 2 \cdot 32$
# numbers. A 1.5 token reads a 2 x 2 patch on **two** consecutive latent frames. How many input
# numbers does one CogVideoX 1.5 token read?

# %% tags=["answer"]
my_numbers = None   # input numbers per 1.5 token

# %%
from cogviz.lessons import check

proj15 = tiny["1.5"].transformer.patch_embed.proj
check({"my_numbers": my_numbers},
      lambda: None if my_numbers == proj15.in_features else f"the 1.5 patch embedding reads {proj15.in_features}",
      f"{proj15.in_features} = 2 (latent frames) x 2 x 2 (pixels of the latent) x 32 (channels): the 1.5 "
      f"patch embedding is a Linear({proj15.in_features} -> {proj15.out_features}) over flattened patches, "
      "where 1.0 has a 2 x 2 convolution.");

# %% [markdown]
# ## 2. The two families side by side
#
# The table is read from the models and from `cogviz.FAMILIES`, not typed.

# %%
def row(name, pipe):
    cfg, proj = pipe.transformer.config, pipe.transformer.patch_embed.proj
    fam = cogviz.family_of(pipe)
    return {"family": fam.name, "patch embedding": f"{type(proj).__name__}{tuple(proj.weight.shape)}",
            "latent frames per token": fam.patch_size_t, "frames": f"{fam.frame_multiple}k+1",
            "learned positions": cfg.use_learned_positional_embeddings, "rotary positions": cfg.use_rotary_positional_embeddings,
            "image latent gain": f"x {fam.latent_gain(pipe.vae.config.scaling_factor):.3f}",
            "ofs input": fam.ofs, "model": name}


pd.DataFrame([row("the toy (trained)", toy), row("tiny 1.0 (random)", tiny["1.0"]),
              row("tiny 1.5 (random)", tiny["1.5"])]).set_index("model")

# %% [markdown]
# What the rows mean, with their sources:
#
# - **Positions.** 5b-I2V adds a *learned* positional table fixed to 49 frames of 480 x 720 and
#   also uses rotary embeddings; 1.5 uses rotary positions only, so it takes other sizes (short
#   side 768, long side up to 1360 in multiples of 16: diffusers PR #9877; the SAT 1.5 sampler).
# - **Frames.** 1.0 takes 8k+1 frames at 8 fps, 1.5 16k+1 at 16 fps (two latent frames a token).
# - **The image latent's gain.** 1.0 multiplies the raw latent by the VAE's factor; on 1.5
#   diffusers divides by it while the official SAT sampler feeds it unscaled (lesson 3).
# - **`ofs`.** 1.5 adds a constant `ofs = 2.0` embedding to the time embedding (diffusers
#   `pipeline_cogvideox_image2video.py`; SAT `sample_video.py`); what it stands for is documented
#   nowhere public.
# - **Text length.** diffusers pads the prompt to 226 tokens; the SAT 1.5 config reads 224.
#
# ## 3. Concatenation then a linear map is a sum of two embeddings
#
# The 1.0 patch embedding is a convolution $W * x + b$ with $W$ of shape (D, 32, 2, 2). Split
# $W$ into the 16 channels that read $z_t$ and the 16 that read $z_\text{img}$:
#
# $$W * \operatorname{concat}(z_t, z_\text{img}) + b = W_{:, :16} * z_t + W_{:, 16:} * z_\text{img} + b .$$
#
# On the later latent frames $z_\text{img} = 0$, so the image half adds nothing there: only latent
# frame 0's tokens receive the image directly. The cell checks the identity on the toy's own
# weights with `torch.cat` and `F.conv2d`.

# %%
z_img = cogviz.encode_image(toy, image, generator=0)[0]                  # (F, 16, h, w)
z_t = torch.randn(z_img.shape, generator=torch.Generator().manual_seed(0))
conv = toy.transformer.patch_embed.proj
with torch.no_grad():
    whole = conv(torch.cat([z_t, z_img], dim=1))
    halves = F.conv2d(z_t, conv.weight[:, :16], stride=2) + F.conv2d(z_img, conv.weight[:, 16:], stride=2) \
        + conv.bias[None, :, None, None]
    image_part = F.conv2d(z_img, conv.weight[:, 16:], stride=2)
print(f"conv(concat) vs the two halves: largest difference {(whole - halves).abs().max():.1e}")
print("image half's contribution per latent frame:", [round(v, 2) for v in image_part.flatten(1).norm(dim=1).tolist()])
assert torch.allclose(whole, halves, atol=1e-5)

# %% [markdown]
# How much weight does the trained toy put on each input channel? The norm of $W$'s slice for
# each of the 32 input channels: the left half reads the noisy latent, the right half the image.
# (The tiny models are random, so only the trained toy's weights say anything.)

# %%
norms = conv.weight.detach().flatten(2).norm(dim=(0, 2)).numpy()
fig = Figure(figsize=(8, 2.4), layout="constrained")
ax = fig.subplots()
ax.bar(range(16), norms[:16], color="C0", label="z_t channels 0-15")
ax.bar(range(16, 32), norms[16:], color="C1", label="z_img channels 16-31")
ax.set(xlabel="input channel", ylabel="weight norm", title="the toy's patch embedding, per input channel")
ax.legend(frameon=False)
print(f"total weight on the image half / on the noise half: {np.linalg.norm(norms[16:]) / np.linalg.norm(norms[:16]):.2f}")
viz.picture(fig)

# %% [markdown]
# ## 4. CogVideoX 1.5: the image shares a token with a later latent frame
#
# 1.5's transformer reads two latent frames per token, so the latent count is padded to even. The
# padding frame goes **in front**, the image latent sits **on that padding frame**, and the
# pipeline drops it before decoding (diffusers `latents[:, additional_frames:]`; SAT
# `decode_first_stage` with `z[:, :, 1:]`). So the first *decoded* frame comes from latent frame 1,
# whose image channels are zero but which shares its token with the image frame. The cell reads all
# of that off a tiny 1.5 model.

# %%
p15 = tiny["1.5"]
n_latent, pad = cogviz.FAMILIES["1.5"].latent_frames(17)
z15 = cogviz.encode_image(p15, image, num_frames=17, sample=False, size=(32, 32))
holding = [f for f in range(z15.shape[1]) if z15[0, f].abs().sum() > 0]
g15 = cogviz.generate(p15, image, "a test", num_frames=17, steps=2, size=(32, 32), progress=False)
print(f"17 frames -> {n_latent} latent frames ({pad} padding frame in front); the image latent on latent frame(s) "
      f"{holding}; latents.final has {g15.trace['latents.final'].shape[1]} latent frames and the video "
      f"{len(g15.frames)} frames")
print("token frame of each latent frame:", [cogviz.family_of(p15).token_frame(f) for f in range(n_latent)])

# %% [markdown]
# Where in a 1.5 token's 256 inputs are the image channels? diffusers flattens a patch as
# (channel, latent frame, row, column), channel outermost (`CogVideoXPatchEmbed.forward`). The
# cell checks it: a one-hot input on image channel 16 at latent frame 0, position (0, 0), must
# come out as column $16 \cdot 8$ of the Linear's weight (plus its bias).

# %%
x = torch.zeros(1, n_latent, 32, 4, 4)
x[0, 0, 16, 0, 0] = 1.0
pe = p15.transformer.patch_embed
text = torch.zeros(1, 1, pe.text_proj.in_features)
with torch.no_grad():
    token = pe(text, x)[0, 1]                      # the first video token (after the one text token)
    column = pe.proj.weight[:, 16 * 8] + (pe.proj.bias if pe.proj.bias is not None else 0)
print(f"token vs column 128 (+ bias): largest difference {(token - column).abs().max():.1e}; "
      f"patch bias: {pe.proj.bias is not None}")
assert torch.allclose(token, column, atol=1e-5)

# %% [markdown]
# ## Summary
#
# - The patch embedding is where the 32 channels meet: a convolution on 1.0, a Linear over two
#   latent frames on 1.5. Concatenation followed by it is a sum of a noise embedding and an image
#   embedding, and the image half adds nothing where `z_img` is zero.
# - On 1.5 the image sits on a padding frame in front, shares its token with latent frame 1, and
#   is dropped before decoding.
# - Positions, frame rules, the latent gain and `ofs` differ too; cogviz keeps each of these rules
#   in one place, `cogviz.FAMILIES`.
# - How the 32-channel weights were initialised from the text-to-video model is not documented
#   publicly.

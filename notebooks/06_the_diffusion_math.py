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
# # Lesson 6 — The diffusion math, beside the code that computes it
#
# Lesson 5 ran the sampler step by step. This lesson writes down what each step computes: the
# forward process and the **v**-prediction CogVideoX is trained on, how the clean latent is
# recovered from it, classifier-free guidance on the text and on the image, one DDIM step, one
# DPM++ step and dynamic CFG. Every equation is followed by a cell that computes it by hand from
# the scheduler's table and checks it against what `cogviz.generate` recorded on the embedded toy
# model. CogVideoX is a variance-preserving (DDPM-family) model with the v-parameterisation — not a
# flow-matching model like Wan, LTX-Video or HunyuanVideo (lesson 12). The sources are diffusers'
# `CogVideoXDDIMScheduler` and `CogVideoXDPMScheduler` and THUDM/CogVideo's SAT code
# (`sat/sgm/modules/diffusionmodules/denoiser_scaling.py`, `VideoScaling`).
#
# Prerequisites: lessons 4 (the 32-channel input) and 5 (named points, `record`).

# %% tags=["parameters"]
SCENE_SEED = 1_000_000_006          # a held-out scene (training used seeds < 1e9)
STEPS = 10
GUIDANCE = 6.0
IMAGE_GUIDANCE = 2.0
SEED = 0
NEGATIVE = "still, blurry"     # the negative prompt of every guided run below

# %%
import math

import numpy as np
import torch
from diffusers import CogVideoXDPMScheduler
from matplotlib.figure import Figure

import cogviz
from cogviz import ablations as A
from cogviz import viz
from cogviz.toy import prompt_for, render_scene, sample_scene

pipe = cogviz.load_pipeline("toy")
scene = sample_scene(SCENE_SEED)
image, prompt = render_scene(scene)[0], prompt_for(scene)
RECORD = ("step/*/z_t", "step/*/pred", "step/*/x0", "z_img")


def run(**kw):
    """One generation on the toy that keeps every step's z_t, guided prediction and x0 (no video)."""
    kw = {"steps": STEPS, "guidance": GUIDANCE, "seed": SEED, "negative_prompt": NEGATIVE, **kw}
    return cogviz.generate(pipe, image, prompt, record=RECORD, decode_video=False, progress=False, **kw)


def close(a, b) -> float:
    """The largest difference between two tensors, relative to the larger's scale."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


g = run()
sched = pipe.scheduler
abar = sched.alphas_cumprod.double()          # the table every formula below reads: abar_t, t = 0..999
timesteps = [int(t) for t in sched.timesteps]  # the steps this run took (trailing spacing)
print("timesteps:", timesteps)

# %% [markdown]
# ## 1. The forward process and the v target
#
# Training takes a clean video latent $x_0$, draws noise $\varepsilon \sim \mathcal N(0, I)$ and a
# timestep $t \in \{0, \dots, 999\}$, and mixes them with the scheduler's cumulative product
# $\bar\alpha_t$:
#
# $$z_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon .$$
#
# The transformer does not predict the noise but the **velocity**
#
# $$v = \sqrt{\bar\alpha_t}\,\varepsilon - \sqrt{1-\bar\alpha_t}\,x_0 ,$$
#
# (SAT's `VideoScaling` writes the same thing as $c_\text{skip} = \sqrt{\bar\alpha}$,
# $c_\text{out} = -\sqrt{1-\bar\alpha}$). Both lines are the scheduler's `add_noise` and
# `get_velocity`; the cell computes them by hand and compares.

# %%
x0 = g.trace["z_img"][:, :1]                 # any clean latent will do: the image's
eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
t = torch.tensor([600])
a = abar[600]
z_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
v = a.sqrt() * eps - (1 - a).sqrt() * x0
print(f"z_t by hand vs scheduler.add_noise:    {close(z_t, sched.add_noise(x0, eps, t)):.1e} relative difference")
print(f"v by hand vs scheduler.get_velocity:   {close(v, sched.get_velocity(x0, eps, t)):.1e}")
assert close(z_t, sched.add_noise(x0, eps, t)) < 1e-5 and close(v, sched.get_velocity(x0, eps, t)) < 1e-5

# %% [markdown]
# $\bar\alpha_t$ is not the textbook table: CogVideoX's schedulers shift the signal-to-noise ratio
# (`snr_shift_scale=0.5`) and rescale it to **zero terminal SNR** (`rescale_betas_zero_snr=True`),
# so at $t = 999$ the latent holds no signal at all. The plot shows $\bar\alpha_t$ and the
# log-SNR $\lambda_t = \log\sqrt{\bar\alpha_t / (1-\bar\alpha_t)}$ that DPM++ steps in.

# %%
ts = np.arange(1000)
fig = Figure(figsize=(8, 2.6), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
ax1.plot(ts, abar.numpy())
ax1.set(xlabel="timestep t", ylabel=r"$\bar\alpha_t$", title="signal kept")
ax2.plot(ts[:-1], 0.5 * np.log(abar[:-1].numpy() / (1 - abar[:-1].numpy())))
ax2.set(xlabel="timestep t", ylabel=r"$\lambda_t$", title="log-SNR (minus infinity at t = 999)")
for ax in (ax1, ax2):
    for s in timesteps:
        ax.axvline(s, color="0.85", lw=0.8, zorder=0)
viz.picture(fig)

# %% [markdown]
# ## 2. Exercise: what does the first step see?
#
# The first timestep of every run is 999, where $\bar\alpha_{999}$ is the value the next cell
# prints. Before reading on: solving the two lines above for $x_0$ gives
# $\hat x_0 = a\,z_t + b\,v$. At the first step, what is the coefficient $b$ in front of $v$?
# (So: where must the first prediction of the clean video come from?)

# %%
print(f"abar_999 = {abar[999].item():.3g}")

# %% tags=["answer"]
my_b = None   # the coefficient of v in the clean-latent estimate at t = 999

# %%
from cogviz.lessons import check

first_t = timesteps[0]
b_true = -math.sqrt(1 - abar[first_t].item())
ratio = (g.trace["step/0/x0"] / g.trace["step/0/pred"]).median().item()


def wrong():
    if abs(my_b - b_true) < 1e-3:
        return None
    return f"b = -sqrt(1 - abar_999) = {b_true:.3f}; the sampler's x0 / v at step 0 is {ratio:.3f}"


check({"my_b": my_b}, wrong,
      f"b = {b_true:.3f}, and the sampler agrees: x0 / v = {ratio:.3f} at step 0. With zero terminal SNR "
      "z_t carries nothing at the first step, so x0 = -v: the first picture of the video comes entirely from "
      "what the transformer reads besides z_t — the image channels and the text.");

# %% [markdown]
# ## 3. Recovering the clean latent
#
# Eliminating $\varepsilon$ from the two lines of section 1:
#
# $$\hat x_0 = \sqrt{\bar\alpha_t}\,z_t - \sqrt{1-\bar\alpha_t}\,\hat v .$$
#
# This is what the sampler records as `step/{i}/x0`, what GenerateUI's live preview decodes, and
# what lesson 11's "when is the video decided" reads. The cell applies it to every recorded step.

# %%
worst = 0.0
for i, t in enumerate(timesteps):
    a = abar[t]
    by_hand = a.sqrt() * g.trace.at("z_t", i) - (1 - a).sqrt() * g.trace.at("pred", i)
    worst = max(worst, close(by_hand, g.trace.at("x0", i)))
print(f"x0 by hand vs the sampler's, over {len(timesteps)} steps: at most {worst:.1e} relative difference")
assert worst < 1e-5

# %% [markdown]
# ## 4. Classifier-free guidance on the text, and on the image
#
# Under CFG the transformer runs twice per step on the same 32-channel input: once with the
# negative prompt, once with the prompt. **Both rows carry `z_img`**, so CFG guides the *text*
# only:
#
# $$\hat v = \hat v(\text{neg}, \text{img}) + w\,\big(\hat v(\text{txt}, \text{img}) - \hat v(\text{neg}, \text{img})\big).$$
#
# Image guidance adds a third row with the image channels zeroed, $\hat v(\text{neg}, \varnothing)$,
# and a scale $s$ on the image's contribution ($s = 1$ is plain CFG; $0 < s < 1$ weakens the pull
# to the image, $s < 0$ reverses it):
#
# $$\hat v = \hat v(\text{neg}, \varnothing) + s\,\big(\hat v(\text{neg}, \text{img}) - \hat v(\text{neg}, \varnothing)\big) + w\,\big(\hat v(\text{txt}, \text{img}) - \hat v(\text{neg}, \text{img})\big).$$
#
# The check needs the single branches: with `guidance=1` (no CFG, one row) the prediction at step 0
# *is* $\hat v(\text{prompt}, \cdot)$, and step 0's $z_t$ is the same for every run of this seed.

# %%
def branch(text: str, image_on: bool) -> torch.Tensor:
    """v(text, image or no image) at step 0, from a one-row run (guidance 1: no CFG)."""
    abl = [] if image_on else [A.ZeroImage()]
    out = cogviz.generate(pipe, image, text, steps=STEPS, guidance=1.0, seed=SEED, ablations=abl,
                          record=("step/0/pred",), decode_video=False, progress=False)
    return out.trace["step/0/pred"].double()


v_txt, v_neg, v_free = branch(prompt, True), branch(NEGATIVE, True), branch(NEGATIVE, False)
cfg_by_hand = v_neg + GUIDANCE * (v_txt - v_neg)
print(f"CFG by hand vs the sampler's step-0 prediction: {close(cfg_by_hand, g.trace.at('pred', 0)):.1e}")
gi = run(image_guidance=IMAGE_GUIDANCE)
ig_by_hand = v_free + IMAGE_GUIDANCE * (v_neg - v_free) + GUIDANCE * (v_txt - v_neg)
print(f"image guidance (s = {IMAGE_GUIDANCE}) by hand vs the sampler: {close(ig_by_hand, gi.trace.at('pred', 0)):.1e}")
assert close(cfg_by_hand, g.trace.at("pred", 0)) < 1e-4 and close(ig_by_hand, gi.trace.at("pred", 0)) < 1e-4

# %% [markdown]
# ## 5. One DDIM step
#
# DDIM (deterministic, $\eta = 0$) keeps the predicted noise direction and moves to the next
# timestep $t'$:
#
# $$z_{t'} = \sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\; z_t + \Big(\sqrt{\bar\alpha_{t'}} - \sqrt{\bar\alpha_t}\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\Big)\,\hat x_0 .$$
#
# diffusers' `CogVideoXDDIMScheduler` takes $t' = t - 1000/S$ (a fixed stride; with trailing
# spacing that is exact at 10, 20 or 50 steps, and off by one timestep on some steps at counts
# that do not divide 1000, diffusers PR #13125). DDIM is diffusers' default for CogVideoX-5b-I2V;
# the official recipe (THUDM/CogVideo `inference/cli_demo.py`, the SAT sampler config) is DPM++
# with dynamic CFG — the next two sections.

# %%
worst = 0.0
for i, t in enumerate(timesteps[:-1]):
    tp = t - 1000 // STEPS
    a, ap = abar[t], (abar[tp] if tp >= 0 else torch.tensor(1.0, dtype=torch.float64))
    c = ((1 - ap) / (1 - a)).sqrt()
    by_hand = c * g.trace.at("z_t", i) + (ap.sqrt() - a.sqrt() * c) * g.trace.at("x0", i)
    worst = max(worst, close(by_hand, g.trace.at("z_t", i + 1)))
print(f"DDIM step by hand vs the sampler's next z_t, over {len(timesteps) - 1} steps: {worst:.1e}")
landed = all(t - 1000 // STEPS == tn for t, tn in zip(timesteps, timesteps[1:]))
print(f"the fixed stride lands on the next timestep of the run at every step: {landed}")
assert worst < 1e-4

# %% [markdown]
# ## 6. One DPM++ step
#
# `CogVideoXDPMScheduler` is the stochastic (SDE) variant of DPM-Solver++(2M). In log-SNR, with
# $h = \lambda_{t'} - \lambda_t$:
#
# $$z_{t'} = \sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\,e^{-h}\,z_t + \sqrt{\bar\alpha_{t'}}\,\big(1-e^{-2h}\big)\,D + \sqrt{1-\bar\alpha_{t'}}\,\sqrt{1-e^{-2h}}\;\xi,\qquad \xi \sim \mathcal N(0, I),$$
#
# where $D = \hat x_0$ at the first step and, after it, the second-order mix
# $D = (1 + \tfrac{1}{2r})\,\hat x_0 - \tfrac{1}{2r}\,\hat x_0^\text{prev}$ with $r = h_\text{prev}/h$.
# The fresh noise $\xi$ is drawn inside the scheduler, so the check solves for it: if the
# deterministic part is right, what is left over, divided by its coefficient, is a standard normal
# draw.

# %%
ddim = pipe.scheduler
pipe.scheduler = CogVideoXDPMScheduler.from_config(ddim.config)
try:
    d = run()
finally:
    pipe.scheduler = ddim


def lam(t: int) -> torch.Tensor:
    return 0.5 * (abar[t] / (1 - abar[t])).log()


i = 2                                   # a second-order step: it needs steps i - 1 and i
t, tp, tb = timesteps[i], timesteps[i] - 1000 // STEPS, timesteps[i - 1]
a, ap = abar[t], abar[tp]
h, r = lam(tp) - lam(t), (lam(t) - lam(tb)) / (lam(tp) - lam(t))
D = (1 + 1 / (2 * r)) * d.trace.at("x0", i) - 1 / (2 * r) * d.trace.at("x0", i - 1)
mean = ((1 - ap) / (1 - a)).sqrt() * (-h).exp() * d.trace.at("z_t", i) + ap.sqrt() * (1 - (-2 * h).exp()) * D
xi = (d.trace.at("z_t", i + 1) - mean) / ((1 - ap).sqrt() * (1 - (-2 * h).exp()).sqrt())
print(f"step {i}: h = {h.item():.3f}, r = {r.item():.3f}; the left-over noise has mean {xi.mean().item():+.3f} "
      f"and std {xi.std().item():.3f} over {xi.numel()} numbers (a standard normal: 0 and 1)")
assert abs(xi.mean().item()) < 0.1 and abs(xi.std().item() - 1) < 0.1

# %% [markdown]
# ## 7. Dynamic CFG
#
# With `dynamic_cfg=True` the text scale changes with the timestep. diffusers and SAT compute
#
# $$w(t) = 1 + w\;\frac{1 - \cos\!\big(\pi\,((S - t)/S)^{5}\big)}{2},$$
#
# with $t$ on the 0-999 scale and $S$ the number of steps. Because $t$ is up to 1000/S times
# larger than $S$, $((S-t)/S)^5$ is a large negative number and the cosine swings from step to
# step: the scale jumps between about 1 and $1 + w$ rather than rising smoothly. A CogVideo author
# called that wave "a coincidence" that they keep on purpose (zai-org/CogVideo#267); diffusers
# #9641 discusses it. The cell computes $w(t)$ by hand and checks it at step 0 against the scale
# the sampler used — read off its prediction: $w = \langle \hat v - v_\text{neg},\, v_\text{txt} -
# v_\text{neg}\rangle / \lVert v_\text{txt} - v_\text{neg}\rVert^2$.

# %%
def w_dynamic(t: int, steps: int, w: float = GUIDANCE) -> float:
    return 1 + w * (1 - math.cos(math.pi * ((steps - t) / steps) ** 5.0)) / 2


dyn = run(dynamic_cfg=True)
diff = (v_txt - v_neg).flatten()
w_used = ((dyn.trace.at("pred", 0).double().flatten() - v_neg.flatten()) @ diff / (diff @ diff)).item()
print(f"step 0 (t = {timesteps[0]}): w(t) by hand {w_dynamic(timesteps[0], STEPS):.4f}, used by the sampler {w_used:.4f}")
assert abs(w_used - w_dynamic(timesteps[0], STEPS)) < 1e-3

fig = Figure(figsize=(8, 2.4), layout="constrained")
ax = fig.subplots()
fifty = type(sched).from_config(sched.config)
fifty.set_timesteps(50)                                       # the timesteps of a 50-step run
sched50 = [int(t) for t in fifty.timesteps]
ax.plot(range(50), [w_dynamic(t, 50) for t in sched50], "o-", ms=3)
ax.axhline(GUIDANCE, color="0.6", ls="--", lw=1)
ax.set(xlabel="step (of 50)", ylabel="text scale w(t)", title=f"dynamic CFG at 50 steps, w = {GUIDANCE:g}")
viz.picture(fig)

# %% [markdown]
# ## Summary
#
# - $z_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$; the model predicts
#   $v$, and $\hat x_0 = \sqrt{\bar\alpha_t}\,z_t - \sqrt{1-\bar\alpha_t}\,\hat v$.
# - Zero terminal SNR makes the first step's $\hat x_0 = -\hat v$: the first guess of the video is
#   built from the image channels and the text alone.
# - CFG mixes two rows that both carry `z_img` (text guidance); image guidance needs a third row.
# - DDIM and DPM++ are two ways to move from $t$ to $t'$ given $\hat x_0$; CogVideoX's DPM++
#   draws fresh noise at every step.
# - Dynamic CFG, as implemented, oscillates from step to step.
#
# Going further: set `STEPS = 30` and read section 5's last line: the step still equals the
# formula (it *is* the formula), but the stride no longer lands on the timestep the next step
# evaluates the model at.

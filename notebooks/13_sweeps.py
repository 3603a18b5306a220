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
# # Lesson 13 — Many controlled runs: sweeps that batch, survive interruption and resume
#
# Lesson 7 changed the image conditioning one run at a time. One ablation on one seed proves
# little: a claim about the visual anchor needs many seeds (and images, and prompts), each
# variant compared with its baseline **under identical noise**. With a real checkpoint a video
# takes minutes on a GPU, so such a sweep runs for hours, gets interrupted, and must resume
# without redoing or mixing anything.
#
# `cogviz.sweep` runs the product *images x prompts x seeds x variants* and writes each run into
# a results folder as it finishes. This lesson runs one on the toy model, interrupts it on
# purpose, resumes it, reads the results, and opens them in the `AblationLab` widget.

# %% tags=["parameters"]
STEPS = 20
SEEDS = [0, 1, 2]
STOP_AFTER = 7  # runs written before we interrupt the first attempt

# %%
import tempfile
from pathlib import Path

from IPython.display import display

import cogviz
from cogviz import ablations as A
from cogviz import sample_path, viz
from cogviz.sweep import SweepResult, plan, sweep

pipe = cogviz.load_pipeline("toy")
image = str(sample_path("shapes"))
prompt = "a red circle moves left"
variants = [A.ZeroImage(), A.NoiseImage(0.3), A.StepWindow(0.0, 0.5), A.ImageGuidance(2.0)]
out = Path(tempfile.mkdtemp(prefix="cogviz-lesson07-"))  # a fresh folder each time the lesson runs

# %% [markdown]
# ## 1. The plan: every run named by what it is
#
# Before any model compute, `plan` loads and fits the image, checks every setting and ablation,
# and lists the runs. Each run's id is a content hash of the model (name and a fingerprint of
# its weights), the image's pixels, the prompt, the seed, the settings and the ablations: the
# same run always gets the same id, and a changed setting gets a new one. The baseline is added.

# %%
runs, _, settings = plan(pipe, [image], [prompt], variants, SEEDS, steps=STEPS)
print(f"{len(runs)} runs = 1 image x 1 prompt x {len(SEEDS)} seeds x {len(variants) + 1} variants")
for r in runs[:5]:
    print(f"  seed {r.seed}  {r.run_id}  {r.label}")

# %% [markdown]
# ## 2. Controlled and batched
#
# The variants of one (image, prompt, seed) run **together**: one call of
# `cogviz.generate_variants`. They share the initial noise and the posterior draw of
# `z_img`; the prompt is encoded once, the image once, and at every step the transformer reads
# the rows of all variants in one forward (as many as fit the device's memory): two rows per
# variant under classifier-free guidance, plus one for image guidance's extra branch. The cell
# counts them.

# %%
rows = []
hook = pipe.transformer.register_forward_hook(lambda m, args, kw, o: rows.append(kw["hidden_states"].shape[0]),
                                              with_kwargs=True)
gens = cogviz.generate_variants(pipe, image, prompt, [None, *variants], steps=STEPS, seed=0, progress=False)
hook.remove()
print(f"{len(rows)} transformer forwards of {set(rows)} rows for {len(gens)} videos "
      f"(2 x {len(gens)} under CFG + 1 image-free row = {2 * len(gens) + 1})")
for k in (3, 4):  # step_window and image_guidance leave z_img itself alone
    print(f"{gens[k].trace.meta['ablations'][0]['kind']:15s} z_img equals the baseline's bit for bit:",
          bool((gens[k].z_img == gens[0].z_img).all()))

# %% [markdown]
# ## 3. Interrupted on purpose
#
# Each run is built in a temporary folder and renamed into `runs/<run_id>/` only when its video,
# per-frame metrics (Parquet) and record (JSON, with the SHA-256 of every file) are complete.
# We stop the sweep after `STOP_AFTER` runs by raising `KeyboardInterrupt` from its progress callback —
# what pressing the stop button does. A kill (`SIGKILL`, a lost node) behaves the same: what was
# written stays; only the runs in flight (the variants being generated together) are lost.

# %%
def stop_after(n):
    def callback(done, total):
        if done >= n:
            raise KeyboardInterrupt(f"stopped after {done} of {total} runs")
    return callback


try:
    sweep(pipe, [image], [prompt], variants, SEEDS, out_dir=out, steps=STEPS, progress=False,
          callback=stop_after(STOP_AFTER))
except KeyboardInterrupt as e:
    print("interrupted:", e)
partial = SweepResult.load(out)
print(f"on disk: {len(partial)} finished runs; temporary leftovers: {len(list((out / 'runs').glob('.*')))}")

# %% [markdown]
# ## 4. Resumed: only the missing runs run
#
# The same call again. Finished runs (same id, files intact) are skipped; the rest run. We count
# the transformer's forwards to see that nothing finished is recomputed.

# %%
forwards, reports = [], []
hook = pipe.transformer.register_forward_hook(lambda *a: forwards.append(1))
result = sweep(pipe, [image], [prompt], variants, SEEDS, out_dir=out, steps=STEPS, progress=False,
               callback=lambda done, total: reports.append(done))
hook.remove()
print(f"resumed with {reports[0]} of {len(result)} runs already done; {len(forwards)} forwards "
      f"= {len(forwards) // STEPS} batched generations of {STEPS} steps")
again = []
hook = pipe.transformer.register_forward_hook(lambda *a: again.append(1))
sweep(pipe, [image], [prompt], variants, SEEDS, out_dir=out, steps=STEPS, progress=False)
hook.remove()
print(f"and once more, finished: {len(again)} forwards")

# %% [markdown]
# ## 5. The results
#
# `SweepResult.load(folder)` needs no model. `.runs` has one row per run (its id, image, prompt,
# seed, the ablation's parameters as columns, the summary metrics, the paths of its files);
# `.frames` one row per run and frame. The runs are **paired**: a variant and the baseline of
# the same image, prompt and seed share everything but the ablation. So the question "what did
# the ablation do?" has a direct answer per pair, the difference $d_i = y_i^{\text{variant}} -
# y_i^{\text{baseline}}$ of a figure $y$, and the effect is their mean
# $\hat\Delta = \frac{1}{n}\sum_{i=1}^{n} d_i$. How sure we are of it comes from resampling the
# pairs (a bootstrap: draw $n$ of the $d_i$ with replacement, many times, and read the spread of
# the means; within each image when there are several). `result.effects` gives the effect on each
# run's mean SSIM to the image, its 95 % interval, and whether the interval excludes 0:

# %%
effects = result.effects("mean_ssim")
display(effects[["label", "effect", "low", "high", "n", "excludes_zero", "baseline_mean", "variant_mean"]].round(3))

# %% [markdown]
# The anchor-decay curves (SSIM to the image, frame by frame; the band spans the seeds) and the
# fidelity–motion plane (each run a point, each variant's mean ringed). A variant that keeps the
# video on the image sits high on both; one that frees the motion moves right and down.

# %%
result.plot_decay()

# %%
result.plot_tradeoff()

# %% [markdown]
# And the videos themselves: baseline and variants of one seed side by side (`result.grid`
# returns the video; `cogviz.video.show` plays it). Frames 0, 8 and 16:

# %%
video = result.grid(seed=0)
viz.picture(viz.frame_strip(video, [0, 8, 16], titles=["frame 0", "frame 8", "frame 16"]))

# %% [markdown]
# ## 6. Exercise: predict, then measure
#
# The folder now holds the runs above (`len(result)` of them). Extend the sweep: one more seed (`3`) and one more
# variant (`A.ScaleImage(0.5)`, the image latent at half strength), same image, prompt and steps.
# How many runs will the extended sweep **compute**, and how many will it find **already done**?
# Think about which (seed, variant) pairs are new (the baseline is a variant too), then measure.

# %% tags=["answer"]
my_computed = None   # runs the extended sweep computes
my_skipped = None    # runs it finds already done

# %%
from cogviz.lessons import check

seen = []
extended = sweep(pipe, [image], [prompt], [*variants, A.ScaleImage(0.5)], [*SEEDS, 3], out_dir=out, steps=STEPS,
                 progress=False, callback=lambda done, total: seen.append(done))
skipped = seen[0]
computed = len(extended) - skipped
print(f"{len(extended)} runs in the extended sweep: {skipped} already done, {computed} computed")
check({"my_computed": my_computed, "my_skipped": my_skipped},
      lambda: None if (my_computed, my_skipped) == (computed, skipped) else f"measured {computed} computed, {skipped} done",
      f"{computed} computed ({len(SEEDS)} seeds x the new variant, then seed 3 x all "
      f"{len(variants) + 2} variants with its baseline), {skipped} skipped");

# %% [markdown]
# ## 7. AblationLab
#
# The same, as a widget: an image (chained to an `ImageFitter`), prompt, seeds, a row per
# ablation with its parameters (add, remove, change), and **Run**. Pointed at a folder that
# already holds results it shows them at once, computing nothing: the runs table, the video grid
# with a frame scrubber, the decay curves and the trade-off plane. Add a row and press Run: only
# the new runs are computed.

# %%
from cogviz.widgets import AblationLab

lab = AblationLab(pipe, prompt=prompt, seeds=SEEDS, ablations=variants, out_dir=out, steps=STEPS)
lab

# %% [markdown]
# ## 8. Conclusions with intervals
#
# The extended sweep holds four seeds of every variant. What can we claim? The forest plot gives
# each variant's paired effect on the later frames' SSIM to the image (frames 1 to 16, averaged
# per run) with its 95 % interval: a filled dot where the interval excludes 0 — a change larger
# than the seed-to-seed noise of these runs —, a hollow one where it holds 0.

# %%
later = extended.effects("ssim", frames="later")
extended.plot_effects("ssim", frames="later", title="paired effects on the later frames' SSIM (4 seeds)")

# %% [markdown]
# Per frame, with a band per frame: where along the video each variant departs from the baseline.

# %%
extended.plot_effects("ssim", title="each variant minus the baseline, per frame (95% bands)")

# %% [markdown]
# The sentences below are printed from the table, not typed: a conclusion carries its interval.
# Four seeds of one image are a pilot; `seeds_needed` says how many pairs would bring each
# interval to a half-width we choose, since the half-width shrinks as $1/\sqrt{n}$:
# $n_\text{needed} = \lceil n\,(h_\text{pilot}/h)^2 \rceil$. (`cogviz.sweep.sweep_until` runs a
# sweep that adds seeds until it gets there.)

# %%
from cogviz import seeds_needed

for row in later.itertuples():
    verdict = "excludes 0" if row.excludes_zero else "holds 0: not distinguishable from the baseline here"
    print(f"{row.label:36s} {row.effect:+.3f} [{row.low:+.3f}, {row.high:+.3f}] over {row.n} seeds — {verdict}")
need = seeds_needed(later, half_width=0.02)
print("\nseeds of this image for a half-width of 0.02:", dict(zip(need["label"], need["n_needed"])))

# %% [markdown]
# Finally, the whole sweep as one file to share: `extended.report()` (or `cogviz report FOLDER`
# in a terminal) writes the settings, this effects table, the plots and the video grids into one
# self-contained HTML file that opens in any browser, offline.

# %%
path = extended.report()
print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, {path.read_text().count('<img')} pictures inside")

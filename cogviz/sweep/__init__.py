"""Step 6 of the flow: sweeps — many controlled runs, batched, persisted as they finish, resumable.

A sweep is the product ``images x prompts x seeds x variants`` (a variant is one ablation, a
list of ablations applied in order, or none: the baseline). The variants of one (image, prompt,
seed) are one :func:`cogviz.sampler.generate_variants` call; each run gets
:func:`cogviz.metrics.anchor_metrics`.

**Controlled.** Every variant of one (image, prompt, seed) shares the initial noise and the
posterior draw of ``z_img`` (pixel-space ablations are encoded with the generator in the same
state; random ablations use their own seed). Differences between variants are the ablations' doing.

**Cheap.** Each prompt is encoded once per sweep, each image once per (image, seed), and the
variants' rows go through the transformer together, as many per forward as fit the device's
memory (``batch="auto"``; an int sets it). Batched rows equal separate runs up to float rounding
(toy: latents within 1e-4, frames within 2/255, per-frame metrics within the tolerances
``tests/test_sweep.py`` states).

**Durable.** ``out_dir`` holds ``manifest.json`` (the sweep's settings) and ``runs/<run_id>/``
per finished run: ``frames.parquet`` (per-frame metrics, pyarrow), ``video.mp4``, optionally
``latents.safetensors``, and ``run.json`` (its configuration, summary and the SHA-256 of each
file). A run is built in a temporary folder and renamed into place when complete, so a SIGKILL
loses at most the runs in flight (the variants of one batched generation); a file whose hash no
longer matches is detected and the run redone. ``run_id`` is a content hash of the model (id +
weights fingerprint), the image's pixels, the prompt, the seed, the settings and the ablations:
a re-run skips what is done, and a changed configuration gets new ids — old rows are kept and
told apart, never overwritten. Nothing is pickled.

**Shared.** :meth:`SweepResult.effects` gives each variant's paired effect with its confidence
interval (:mod:`cogviz.effects`), and :func:`report` (``cogviz report DIR``) writes the settings,
effects, plots and video grids into one self-contained HTML file that opens offline.
:func:`sweep_until` adds seeds until every effect's interval is as narrow as asked.
"""
from __future__ import annotations

from ..errors import SweepError
from .config import load_config
from .driver import sweep
from .identity import image_fingerprint, model_fingerprint, plan, run_id
from .report import report
from .results import SweepResult
from .until import sweep_until

__all__ = ["sweep", "sweep_until", "SweepResult", "report", "plan", "load_config", "model_fingerprint", "image_fingerprint", "run_id",
           "SweepError"]

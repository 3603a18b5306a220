"""The GPU path at full size: every memory and speed preset against the bare diffusers pipeline.

The full-size CogVideoX-5b-I2V (49 x 480 x 720) and CogVideoX1.5-5B-I2V architectures with random
weights (:func:`cogviz.testing.full_size_random_pipeline`: compute and memory do not depend on
weight values), saved once to a folder and loaded through ``cogviz.load_pipeline(folder,
memory=..., speed=...)`` for each configuration, exactly as a user loads a checkpoint. Per
configuration: seconds per denoising step (from per-step timestamps, so the first step's warm-up
and the VAE are excluded), end-to-end seconds including the VAE decode, peak GPU memory, and for
presets that change numbers, the PSNR of the frames against the plain bf16 run on the same seed.
One table, ratios against the bare pipeline call, also written as JSON.

    python benchmarks/bench_gpu.py [--steps 50] [--models 5b,1.5] [--frames-15 33] [--json out.json]
    python benchmarks/bench_gpu.py --tiny        (the same code on tiny random pipelines, CPU, < 1 min)

Configurations: ``bare`` (the diffusers pipeline call), ``generate`` (cogviz.generate, default
recording), each memory preset (``sequential_offload`` only with ``--slow``: about 20 minutes a
video at full size), each speed preset, and ``sweep4`` (4 ablation variants batched through
``generate_variants``; time per variant). Under ``--tiny`` the ``compile`` preset uses the
``eager`` backend (inductor's compile time would dominate a one-minute check) and presets that need
a GPU or torchao are reported as not run, with the reason.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

MEMORY = ["model_offload", "group_offload", "vae_tiling", "vae_slicing", "sequential_offload"]
SPEED = ["fused", "compile", "cache_fbc", "cache_pab", "cache_faster", "cache_taylorseer", "int8", "fp8"]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


class _Clock:
    """Per-step timestamps (synchronized on CUDA) for the bare pipeline's and cogviz's callbacks."""

    def __init__(self, device):
        self.cuda = torch.device(device).type == "cuda"
        self.stamps: list[float] = []

    def tick(self, *args, **kwargs):
        if self.cuda:
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())
        return args[-1] if len(args) == 4 else None  # diffusers' callback_on_step_end returns its kwargs dict

    def per_step(self) -> float:
        s = self.stamps
        return (s[-1] - s[0]) / max(len(s) - 1, 1)


def _frames_u8(frames) -> np.ndarray:
    a = np.asarray(frames)
    return a if a.dtype == np.uint8 else (np.clip(a, 0, 1) * 255).round().astype(np.uint8)


def measure(name, pipe, call, device, repeats: int) -> dict:
    """Time ``call(clock)`` (returns uint8 frames): a warm-up run (compile time), then the median."""
    cuda = torch.device(device).type == "cuda"
    runs, frames = [], None
    for _ in range(repeats + 1):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        clock = _Clock(device)
        t = time.perf_counter()
        frames = call(clock)
        if cuda:
            torch.cuda.synchronize()
        runs.append((time.perf_counter() - t, clock.per_step(),
                     torch.cuda.max_memory_allocated() / 2**30 if cuda else None))
    warm, rest = runs[0], runs[1:]
    return {"config": name, "end_to_end_s": statistics.median(r[0] for r in rest),
            "s_per_step": statistics.median(r[1] for r in rest),
            "peak_gb": max((r[2] for r in rest), default=None) if cuda else None,
            "first_call_extra_s": round(warm[0] - statistics.median(r[0] for r in rest), 3),
            "frames": frames}


def bench_model(folder: Path, label: str, args, device, image, num_frames, size) -> list[dict]:
    import cogviz
    import cogviz.ablations as A
    from cogviz.errors import CogvizError
    from cogviz.experiment import generate, generate_variants

    height, width = size
    prompt = "a red circle moves right"
    rows = []

    def bare(pipe):
        def call(clock):
            out = pipe(image=image, prompt=prompt, height=height, width=width, num_frames=num_frames,
                       num_inference_steps=args.steps, guidance_scale=6.0,
                       max_sequence_length=int(pipe.transformer.config.max_text_seq_length),
                       generator=torch.Generator(device=pipe._execution_device).manual_seed(0),
                       callback_on_step_end=clock.tick, output_type="np")
            return _frames_u8(out.frames[0])
        return call

    def cogviz_call(pipe):
        def call(clock):
            return generate(pipe, image, prompt, steps=args.steps, guidance=6.0, seed=0, num_frames=num_frames,
                            size=size, progress=False, callback=lambda info: clock.tick()).frames
        return call

    def sweep4(pipe):
        variants = [None, A.ZeroImage(), A.ScaleImage(0.5), A.NoiseImage(0.1, "latent", 0)]

        def call(clock):
            gens = generate_variants(pipe, image, prompt, variants, steps=args.steps, guidance=6.0, seed=0,
                                     num_frames=num_frames, size=size, progress=False,
                                     callback=lambda info: clock.tick())  # a tick per variant and step
            return gens[0].frames
        return call

    def load(**kw):
        return cogviz.load_pipeline(folder, device=device, dtype=args.dtype, **kw)

    def add(row, note=""):
        row["model"], row["note"] = label, note
        rows.append(row)
        extra = "" if row.get("peak_gb") is None else f", peak {row['peak_gb']:.1f} GB"
        print(f"  {label:9s} {row['config']:20s} {row['s_per_step']:8.3f} s/step {row['end_to_end_s']:8.2f} s"
              f"{extra} {note}", flush=True)

    def skip(config, why):
        rows.append({"config": config, "model": label, "skipped": why})
        print(f"  {label:9s} {config:20s} not run: {why}", flush=True)

    pipe = load()
    ref = measure("bare", pipe, bare(pipe), device, args.repeats)
    add(ref)
    reference = ref["frames"]
    add(measure("generate", pipe, cogviz_call(pipe), device, args.repeats))
    row = measure("sweep4", pipe, sweep4(pipe), device, args.repeats)
    row["end_to_end_s"] /= 4  # per variant; s/step is per variant already (4 ticks a step)
    add(row, "per variant (4 batched)")
    del pipe
    for mem in MEMORY:
        if mem == "sequential_offload" and not args.slow:
            skip(mem, "about 20 minutes a video at full size: pass --slow")
            continue
        if mem == "vae_tiling" and args.tiny:
            skip(mem, "diffusers' VAE tiles are half the model's sample size: 16 px tiles break a 32 px VAE")
            continue
        try:
            p = load(memory=mem)
        except CogvizError as e:
            skip(mem, str(e).split(";")[0])
            continue
        add(measure(mem, p, bare(p), device, args.repeats), "bare call")
        del p
    for speed in SPEED:
        try:
            kw = {"compile_kwargs": {"backend": "eager"}} if (speed == "compile" and args.tiny) else {}
            p = load(speed=speed, **kw)
        except CogvizError as e:
            skip(speed, str(e).split(";")[0])
            continue
        row = measure(speed, p, cogviz_call(p), device, args.repeats)
        row["psnr_vs_bare_db"] = round(_psnr(row["frames"], reference), 2)
        note = f"PSNR vs plain {row['psnr_vs_bare_db']} dB"
        if speed == "compile":
            note += f", compile {row['first_call_extra_s']:.1f} s" + (" (eager backend)" if args.tiny else "")
        add(row, note)
        del p
    base = ref["s_per_step"], ref["end_to_end_s"]
    for r in rows:
        r.pop("frames", None)
        if "s_per_step" in r:
            r["step_ratio_vs_bare"] = round(r["s_per_step"] / base[0], 3)
            r["end_to_end_ratio_vs_bare"] = round(r["end_to_end_s"] / base[1], 3)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | config | s/step | x bare | end to end (s) | x bare | peak GB | PSNR vs plain | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['config']} | - | - | - | - | - | - | not run: {r['skipped']} |")
            continue
        peak = "-" if r.get("peak_gb") is None else f"{r['peak_gb']:.1f}"
        lines.append(f"| {r['model']} | {r['config']} | {r['s_per_step']:.3f} | {r['step_ratio_vs_bare']:.2f} | "
                     f"{r['end_to_end_s']:.2f} | {r['end_to_end_ratio_vs_bare']:.2f} | {peak} | "
                     f"{r.get('psnr_vs_bare_db', '-')} | {r.get('note', '')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny random pipelines on the CPU (the test suite runs this)")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default 50; 4 with --tiny)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs after the warm-up (median)")
    ap.add_argument("--models", default="5b,1.5", help="which architectures: 5b, 1.5 or both")
    ap.add_argument("--frames-15", type=int, default=33,
                    help="frames for 1.5-5B-I2V at 768 x 1360 (16k+1; default 33 fits with the bare call)")
    ap.add_argument("--slow", action="store_true", help="also sequential_offload at full size")
    ap.add_argument("--json", help="write the rows here too")
    args = ap.parse_args(argv)
    args.steps = args.steps or (4 if args.tiny else 50)
    from PIL import Image

    from cogviz.samples import load_sample
    from cogviz.testing import full_size_random_pipeline, tiny_random_pipeline

    if args.tiny:
        torch.set_num_threads(2)
        device, args.dtype = "cpu", torch.float32
    else:
        if not torch.cuda.is_available():  # `make bench` runs every benchmark: say so, do not fail it
            print("bench_gpu.py measures a CUDA GPU and none is visible here: nothing measured "
                  "(--tiny runs the same code on tiny pipelines on the CPU)")
            return 0
        device, args.dtype = "cuda", torch.bfloat16
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label in [m.strip() for m in args.models.split(",")]:
            family = {"5b": "1.0", "1.5": "1.5"}[label]
            folder = Path(tmp) / label
            if args.tiny:
                pipe = tiny_random_pipeline(family, num_layers=4)
                size, num_frames = (32, 32), 9 if family == "1.0" else 17
            else:
                pipe = full_size_random_pipeline("cpu", torch.bfloat16, family=family)  # saved, then loaded per config
                size, num_frames = ((480, 720), 49) if family == "1.0" else ((768, 1360), args.frames_15)
            pipe.save_pretrained(folder, safe_serialization=True)
            del pipe
            image = load_sample("shapes").resize(size[::-1], Image.BICUBIC)
            print(f"== {label}: {num_frames} x {size[0]} x {size[1]}, {args.steps} steps, CFG 6, "
                  f"{'CPU fp32 (tiny)' if args.tiny else 'CUDA bf16'}", flush=True)
            rows += bench_model(folder, label, args, device, image, num_frames, size)
    print()
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": args.steps, "tiny": args.tiny, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

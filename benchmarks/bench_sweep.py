"""What a sweep costs, against baselines measured in the same run.

1. **Batched variants.** An 8-variant sweep (1 image, 1 prompt, 1 seed; the baseline and seven
   ablations) on the toy model against 8 independent diffusers pipeline calls with the same
   settings, interleaved (pipeline x 8, sweep, pipeline x 8, ...) so that machine drift hits both
   alike; medians compared (after one warm-up sweep: a process's first loads the compiled metrics
   and the video encoder). Target: the sweep >= 3x faster. Also printed: the sweep's compute alone
   (``generate_variants``, no metrics, no files; target: the whole sweep <= 1.15x of it, at 20
   steps as issue 45 measured) and one variant per forward (``batch=1``).
2. **Resuming a finished sweep.** A 32-run sweep (4 seeds x 8 variants), run once, then again
   into the same folder: the second call's time (the pipeline is already loaded) and its
   transformer calls. Target: no model compute, <= 2 s.
3. **Ray.** The same 16 runs (2 seeds x 8 variants) on the local backend (one process, 2 threads)
   and on a local Ray with 2 actors (1 thread each), each into a fresh folder; actors' start-up
   and pipeline loading counted, Ray's own start-up (``ray.init``) not. Target: Ray's throughput
   >= 0.8x local, the same run ids, rows equal within the batching tolerance.

    python benchmarks/bench_sweep.py [--repeats 3] [--steps 50] [--no-ray]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--no-ray", action="store_true", help="skip part 3")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    import cogviz.ablations as A
    import cogviz.models as M
    from cogviz.experiment import generate_variants
    from cogviz.fit import fit_image
    from cogviz.samples import load_sample, sample_path
    from cogviz.sweep import sweep

    pipe = M.load_pipeline("toy", device="cpu")
    image = str(sample_path("shapes"))
    fitted = fit_image(load_sample("shapes"), "cogviz-toy")
    prompt = "a red circle moves right"
    variants = [A.ZeroImage(), A.ScaleImage(0.5), A.NoiseImage(0.3), A.NoiseImage(0.5, space="latent"),
                A.StepWindow(0.0, 0.5), A.FlipImage(), A.LowPassImage(0.25, 0.04)]  # + the baseline: 8

    calls = []
    pipe.transformer.register_forward_hook(lambda *a: calls.append(1))

    def diffusers_x8():
        for _ in range(8):
            pipe(image=fitted.image, prompt=prompt, negative_prompt="", num_frames=17, height=64, width=96,
                 num_inference_steps=args.steps, guidance_scale=6.0, max_sequence_length=M.max_sequence_length(pipe),
                 generator=torch.Generator().manual_seed(0), output_type="np")

    def a_sweep(batch="auto"):
        with tempfile.TemporaryDirectory() as out:
            r = sweep(pipe, [image], [prompt], variants, [0], out_dir=out, steps=args.steps, progress=False,
                      batch=batch)
            assert len(r) == 8

    def compute_only():
        generate_variants(pipe, fitted, prompt, [None, *variants], steps=args.steps, progress=False)

    fns = {"8 diffusers pipeline calls": diffusers_x8, "sweep, 8 variants": a_sweep,
           "  of which compute (generate_variants)": compute_only,
           "sweep, batch=1 (one variant per forward)": lambda: a_sweep(1)}
    times = {k: [] for k in fns}
    a_sweep()  # warm-up: a process's first sweep loads the compiled metrics and the video encoder once
    for _ in range(args.repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["8 diffusers pipeline calls"]
    print(f"1. toy, 17x64x96, {args.steps} steps, CFG, {torch.get_num_threads()} threads, median of {args.repeats}")
    for k, v in med.items():
        print(f"   {k:42s} {v:7.2f} s   {base / v:5.2f}x faster than the pipeline calls")
    ratio = base / med["sweep, 8 variants"]
    judged = "" if args.steps == 50 else " (judged at the default 50 steps: at fewer steps the decode, which batching does not speed, weighs more)"
    print(f"   target: sweep >= 3x faster: {'met' if ratio >= 3 else 'NOT met'} ({ratio:.2f}x){judged}")
    cost = med["sweep, 8 variants"] / med["  of which compute (generate_variants)"]
    print(f"   target: the sweep (metrics, videos, files overlapped with compute) <= 1.15x its compute: "
          f"{'met' if cost <= 1.15 else 'NOT met'} ({cost:.2f}x)")

    # 1b. four groups (4 seeds x 8 variants): the background writer overlaps each run's writes with the later decodes and the next compute
    def four_groups():
        with tempfile.TemporaryDirectory() as out:
            assert len(sweep(pipe, [image], [prompt], variants, [0, 1, 2, 3], out_dir=out, steps=args.steps,
                             progress=False)) == 32

    def four_computes():
        for seed in range(4):
            generate_variants(pipe, fitted, prompt, [None, *variants], steps=args.steps, seed=seed, progress=False)

    t4 = {"sweep": [], "compute": []}
    for _ in range(args.repeats):
        for k, fn in (("sweep", four_groups), ("compute", four_computes)):
            t = time.perf_counter()
            fn()
            t4[k].append(time.perf_counter() - t)
    cost4 = statistics.median(t4["sweep"]) / statistics.median(t4["compute"])
    print(f"1b. 4 seeds x 8 variants: sweep {statistics.median(t4['sweep']):.2f} s, its compute "
          f"{statistics.median(t4['compute']):.2f} s: {cost4:.2f}x (target <= 1.15: {'met' if cost4 <= 1.15 else 'NOT met'})")

    # 2. resuming a finished 32-run sweep
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        sweep(pipe, [image], [prompt], variants, [0, 1, 2, 3], out_dir=out, steps=4, progress=False)
        first = time.perf_counter() - t
        calls.clear()
        t = time.perf_counter()
        again = sweep(pipe, [image], [prompt], variants, [0, 1, 2, 3], out_dir=out, steps=4, progress=False)
        rerun = time.perf_counter() - t
    print(f"2. a finished 32-run sweep (4 steps) run again: {rerun:.2f} s, {len(calls)} transformer calls, "
          f"{len(again)} runs read back (its first run: {first:.1f} s)")
    print(f"   target: no model compute, <= 2 s: {'met' if not calls and rerun <= 2 else 'NOT met'}")

    if args.no_ray:
        return 0
    # 3. Ray, 2 local actors, against the local backend
    import ray

    steps = max(4, args.steps // 2)
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - t
    try:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            t = time.perf_counter()
            local = sweep(pipe, [image], [prompt], variants, [0, 1], out_dir=a, steps=steps, progress=False)
            t_local = time.perf_counter() - t
            t = time.perf_counter()
            remote = sweep(pipe, [image], [prompt], variants, [0, 1], out_dir=b, steps=steps, progress=False,
                           backend="ray", ray_options={"num_actors": 2})
            t_ray = time.perf_counter() - t
            same_ids = sorted(local.runs["run_id"]) == sorted(remote.runs["run_id"])
            cols = ["psnr", "ssim", "palette", "layout", "flicker", "motion"]
            x = local.frames.sort_values(["run_id", "frame"]).reset_index(drop=True)
            y = remote.frames.sort_values(["run_id", "frame"]).reset_index(drop=True)
            worst = float(np.nanmax(np.abs(x[cols].to_numpy() - y[cols].to_numpy())))
    finally:
        ray.shutdown()
    n = len(local)
    print(f"3. {n} runs ({steps} steps): local {n / t_local:.2f} runs/s ({t_local:.1f} s), Ray 2 actors "
          f"{n / t_ray:.2f} runs/s ({t_ray:.1f} s; ray.init took {ray_start:.1f} s more)")
    print(f"   throughput ratio {t_local / t_ray:.2f}x; same run ids: {same_ids}; largest per-frame metric "
          f"difference {worst:.1e} (tolerance 5e-3)")
    print(f"   target: >= 0.8x, rows equal: {'met' if t_local / t_ray >= 0.8 and same_ids and worst <= 5e-3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

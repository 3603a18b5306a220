"""One toy video end to end (17 x 64 x 96, 50 steps, CFG) on the CPU: target <= 3 s.

The baseline measured in the same run is the same call with 1 step, which isolates the fixed cost
(text encoding, image encoding, VAE decoding) from the 50 transformer steps. ``--baseline DIR``
also times another pipeline folder (e.g. an earlier toy model) interleaved with this one and
prints the ratio, so that a retrained model is compared on the same machine in the same run.

    python benchmarks/bench_toy.py [--repeats 5] [--json PATH] [--model DIR] [--baseline DIR]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--model", default="toy", help="the pipeline to time (default: the shipped toy)")
    ap.add_argument("--baseline", help="a second pipeline folder to time in the same run")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    import cogviz.models as M
    from cogviz.fit import fit_image
    from cogviz.samples import load_sample

    pipe = M.load_pipeline(args.model, device="cpu")
    base = M.load_pipeline(args.baseline, device="cpu") if args.baseline else None
    image = fit_image(load_sample("shapes"), "cogviz-toy").image

    def run(steps, pipe=pipe):
        return pipe(image=image, prompt="a red circle moves right", num_frames=17, num_inference_steps=steps,
                    guidance_scale=6.0, height=64, width=96, max_sequence_length=M.max_sequence_length(pipe),
                    generator=torch.Generator().manual_seed(0), output_type="np").frames

    def median(steps):
        run(steps)  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            run(steps)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    versus = {}
    if base is not None:  # interleaved, so that machine drift hits both alike
        run(50), run(50, base)
        mine, theirs = [], []
        for _ in range(args.repeats):
            for p, out in ((pipe, mine), (base, theirs)):
                t = time.perf_counter()
                run(50, p)
                out.append(time.perf_counter() - t)
        a, b = statistics.median(mine), statistics.median(theirs)
        print(f"{args.model}: {a:.3f} s, baseline {args.baseline}: {b:.3f} s per video (median of "
              f"{args.repeats}, interleaved): ratio {a / b:.3f} (target <= 1.2: {'met' if a / b <= 1.2 else 'NOT met'})")
        versus = {"baseline": str(args.baseline), "baseline_s": round(b, 3), "model_s": round(a, 3),
                  "ratio_to_baseline": round(a / b, 3)}
    t50, t1 = median(50), median(1)
    figures = {"end_to_end_50_steps_s": round(t50, 3), "one_step_s": round(t1, 3),
               "per_step_ms": round((t50 - t1) / 49 * 1000, 2), "threads": torch.get_num_threads(),
               "target_s": 3.0, "ratio_to_target": round(t50 / 3.0, 3), **versus}
    print(f"toy video 17x64x96, 50 steps with CFG, median of {args.repeats}: {t50:.2f} s "
          f"(target <= 3 s: {'met' if t50 <= 3 else 'NOT met'})")
    print(f"  1 step (fixed cost: text, image encode, VAE decode): {t1:.2f} s; "
          f"per transformer step (CFG batch of 2): {figures['per_step_ms']:.1f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

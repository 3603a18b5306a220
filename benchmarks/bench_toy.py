"""One toy video end to end (17 x 64 x 96, 50 steps, CFG) on the CPU: target <= 3 s.

The baseline measured in the same run is the same call with 1 step, which isolates the fixed cost
(text encoding, image encoding, VAE decoding) from the 50 transformer steps.

    python benchmarks/bench_toy.py [--repeats 5] [--json PATH]
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
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    import cogviz.models as M
    from cogviz.samples import load_sample
    from cogviz.fit import fit_image

    pipe = M.load_pipeline("toy", device="cpu")
    image = fit_image(load_sample("shapes"), "cogviz-toy").image

    def run(steps):
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

    t50, t1 = median(50), median(1)
    figures = {"end_to_end_50_steps_s": round(t50, 3), "one_step_s": round(t1, 3),
               "per_step_ms": round((t50 - t1) / 49 * 1000, 2), "threads": torch.get_num_threads(),
               "target_s": 3.0, "ratio_to_target": round(t50 / 3.0, 3)}
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

"""What an ablation costs.

1. ``generate`` on the toy model with one ablation of each kind against the plain call, same
   inputs, measured in one run with the calls interleaved (plain, ablated, plain, ...) so that
   machine drift hits both alike; medians compared. Targets: every latent-space ablation
   <= 1.05x the plain call; ``image_guidance`` <= 1.6x (it adds a transformer branch).
(What measuring the anchor costs: ``benchmarks/bench_metrics.py``.)

    python benchmarks/bench_ablations.py [--repeats 7] [--steps 50]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def interleaved(fns: dict, repeats: int) -> dict:
    times = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    import cogviz.ablations as A
    import cogviz.models as M
    from cogviz.experiment import generate
    from cogviz.toy.scenes import prompt_for, render_scene, sample_scene

    pipe = M.load_pipeline("toy", device="cpu")
    scene = sample_scene(1_000_000_021)
    image, prompt = render_scene(scene)[0], prompt_for(scene)
    other = render_scene(sample_scene(1_000_000_022))[0]
    kinds = [A.ZeroImage(), A.ScaleImage(0.5), A.NoiseImage(0.5, space="latent"), A.MaskImage((0, 0, 48, 64)),
             A.ShiftImage(16, 8), A.FlipImage(), A.StepWindow(0.0, 0.5), A.FillFrames(), A.LowPassImage(0.25, 0.04),
             A.NoiseImage(0.05, space="pixel"), A.SwapImage(other), A.ImageGuidance(2.0)]

    def call(*ablations):
        return lambda: generate(pipe, image, prompt, steps=args.steps, seed=0, progress=False,
                                ablations=list(ablations))

    print(f"toy, 17x64x96, {args.steps} steps, CFG, {torch.get_num_threads()} threads, median of {args.repeats}, "
          "interleaved with the plain call")
    print(f"{'ablation':44s} {'plain s':>8s} {'ablated s':>9s} {'ratio':>6s}  target")
    ok = True
    for a in kinds:
        t = interleaved({"plain": call(), "ablated": call(a)}, args.repeats)
        ratio = t["ablated"] / t["plain"]
        target = 1.6 if isinstance(a, A.ImageGuidance) else 1.05 if a.kind != "swap_image" else None
        met = target is None or ratio <= target
        ok &= met
        print(f"{a.label()[:44]:44s} {t['plain']:8.3f} {t['ablated']:9.3f} {ratio:6.3f}  "
              f"{f'<= {target:.2f} ' + ('met' if met else 'MISSED') if target else '(pixel space: fits a 2nd image)'}")

    print("all targets met" if ok else "some targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

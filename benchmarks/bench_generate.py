"""cogviz.generate (default recording) vs the diffusers pipeline call: same model, inputs, seed.

Target on the toy model on the CPU: time ratio <= 1.03. Runs alternate (pipeline, cogviz, ...) so
that drift in machine load hits both alike; medians are compared. Also prints the memory a full
recording (every step's z_t, input and prediction) takes.

    python benchmarks/bench_generate.py [--repeats 9] [--steps 50]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    import cogviz.models as M
    from cogviz.fit import fit_image
    from cogviz.samples import load_sample
    from cogviz.sampler import generate

    pipe = M.load_pipeline("toy", device="cpu")
    fitted = fit_image(load_sample("shapes"), "cogviz-toy")
    prompt = "a red circle moves right"

    def diffusers_call():
        return pipe(image=fitted.image, prompt=prompt, negative_prompt="", num_frames=17, height=64, width=96,
                    num_inference_steps=args.steps, guidance_scale=6.0, max_sequence_length=M.max_sequence_length(pipe),
                    generator=torch.Generator().manual_seed(0), output_type="np").frames

    def cogviz_call():
        return generate(pipe, fitted, prompt, steps=args.steps, seed=0, progress=False)

    diffusers_call(), cogviz_call()  # warm-up
    t_pipe, t_ours = [], []
    for _ in range(args.repeats):
        for fn, sink in ((diffusers_call, t_pipe), (cogviz_call, t_ours)):
            t = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - t)
    mp, mo = statistics.median(t_pipe), statistics.median(t_ours)
    full = generate(pipe, fitted, prompt, steps=args.steps, seed=0, progress=False, record="*")
    default = generate(pipe, fitted, prompt, steps=args.steps, seed=0, progress=False)
    print(f"toy, 17x64x96, {args.steps} steps, CFG, median of {args.repeats} (alternating), {torch.get_num_threads()} threads")
    print(f"  diffusers pipeline call : {mp:.3f} s")
    print(f"  cogviz.generate         : {mo:.3f} s   ratio {mo / mp:.3f} (target <= 1.03: {'met' if mo / mp <= 1.03 else 'NOT met'})")
    print(f"  recording: default {default.trace.nbytes() / 1e6:.2f} MB, everything (record='*') "
          f"{full.trace.nbytes() / 1e6:.2f} MB on the CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""cogviz.generate (default recording) vs the diffusers pipeline call: same model, inputs, seed.

Target on the toy model on the CPU: time ratio <= 1.03. Runs alternate (pipeline, cogviz, ...) so
that drift in machine load hits both alike; medians are compared. Also prints the memory a full
recording (every step's z_t, input and prediction) takes.

    python benchmarks/bench_generate.py [--repeats 9] [--steps 50]
    python benchmarks/bench_generate.py --full-5b [--steps 4] [--repeats 3]     (needs a CUDA GPU)

``--full-5b``: the full-size CogVideoX-5b-I2V architecture with random weights
(:func:`cogviz.testing.full_size_random_pipeline`, bf16; compute identical to the checkpoint) at
49 x 480 x 720 for a few steps. Target: ratio <= 1.01; prints s/step and peak GPU memory of both.
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
    ap.add_argument("--full-5b", action="store_true", help="full-size 5b-I2V, random weights, on a CUDA GPU")
    args = ap.parse_args(argv)
    if args.full_5b:
        return full_5b(args)
    torch.set_num_threads(2)

    import cogviz.models as M
    from cogviz.experiment import generate
    from cogviz.fit import fit_image
    from cogviz.samples import load_sample

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


def full_5b(args) -> int:
    if not torch.cuda.is_available():
        print("--full-5b needs a CUDA GPU (the 5.6 B-parameter transformer in bf16 takes 11 GB); none here")
        return 2
    from cogviz.experiment import generate
    from cogviz.samples import load_sample
    from cogviz.testing import full_size_random_pipeline

    steps = args.steps if args.steps != 50 else 4
    pipe = full_size_random_pipeline("cuda", torch.bfloat16)
    pipe.vae.enable_tiling()
    image = load_sample("lighthouse")
    from cogviz.fit import fit_image

    fitted = fit_image(image, "CogVideoX-5b-I2V")
    prompt = "a red circle moves right"

    def timed(fn):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - t, torch.cuda.max_memory_allocated() / 2**30

    def diffusers_call():
        return pipe(image=fitted.image, prompt=prompt, negative_prompt="", num_frames=49, height=480, width=720,
                    num_inference_steps=steps, guidance_scale=6.0, max_sequence_length=226,
                    generator=torch.Generator("cuda").manual_seed(0), output_type="latent").frames

    def cogviz_call():  # latents only on both sides: the loop is what is compared, not the decode
        return generate(pipe, fitted, prompt, steps=steps, seed=0, progress=False, record=("latents.final",),
                        decode_video=False)

    timed(diffusers_call), timed(cogviz_call)  # warm-up
    runs = {"pipeline": [], "cogviz": []}
    for _ in range(args.repeats):
        runs["pipeline"].append(timed(diffusers_call))
        runs["cogviz"].append(timed(cogviz_call))
    print(f"full-size 5b-I2V (random weights, bf16), 49x480x720, {steps} steps, CFG, median of {args.repeats}, "
          f"{torch.cuda.get_device_name()}")
    med = {k: statistics.median(t for t, _ in v) for k, v in runs.items()}
    for k, v in runs.items():
        print(f"  {k:9s}: {med[k]:.2f} s ({med[k] / steps:.2f} s/step), peak {max(m for _, m in v):.1f} GiB")
    ratio = med["cogviz"] / med["pipeline"]
    print(f"  ratio {ratio:.3f} (target <= 1.01: {'met' if ratio <= 1.01 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

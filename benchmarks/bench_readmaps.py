"""What seeing where the image is read costs, and what it finds (the toy model, 2 CPU threads).

1. Recording one block's read maps (``record=("step/*/block/3/readmap",)``) against the plain call,
   interleaved, medians. Target: <= 1.30x.
2. Memory: the attention reader holds at most ``budget_bytes`` of weights at a time (query chunks);
   what it keeps grows linearly in the tokens. Measured here: how much one reader call raises the
   process's peak resident memory at 4 sizes (a fresh process each), against the token count.
3. On held-out toy scenes (12 steps, every block): the later frames' shape tokens' read mass per
   token on the image frame's shape against its background, and the correspondence arrows' error
   (argmax of the per-token maps) against the shape's true displacement, in tokens, beside the
   error of "no motion".

    python benchmarks/bench_readmaps.py [--repeats 5] [--steps 20] [--scenes 4]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_ablations import interleaved


def _cost(pipe, image, prompt, args) -> bool:
    import cogviz

    def call(record):
        return lambda: cogviz.generate(pipe, image, prompt, steps=args.steps, seed=0, progress=False, record=record)

    t = interleaved({"plain": call(("frames",)), "readmap": call(("frames", "step/*/block/3/readmap"))}, args.repeats)
    ratio = t["readmap"] / t["plain"]
    print(f"1. read maps of one block, every step: {t['readmap']:.3f} s vs plain {t['plain']:.3f} s, ratio "
          f"{ratio:.3f} (target <= 1.30: {'met' if ratio <= 1.30 else 'MISSED'})")
    return ratio <= 1.30


_PEAK = """
import resource, sys, psutil, torch
from cogviz.readmaps import READS, AttentionReader
n_frames = int(sys.argv[1]); tpf, text = 64, 16
n = text + n_frames * tpf
q, k = torch.randn(2, 4, n, 32), torch.randn(2, 4, n, 32)
reader = AttentionReader(tpf, (8, 8), READS, budget_bytes=8 * 2**20)
reader.read(q, k, text)  # the allocator warmed
held = max(psutil.Process().memory_info().rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
out = reader.read(q, k, text)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(n, max(0, peak - held), sum(x.numel() * x.element_size() for x in out.values()))
"""


def _memory() -> None:
    import subprocess
    import sys

    print("2. one reader call recording all four (2 rows, 4 heads, 64 tokens a frame, budget 8 MiB), in a fresh "
          "process each: what its peak memory grows by, beside what it returns and a full weight matrix:")
    for frames in (8, 16, 32, 64):
        n, grew, kept = map(int, subprocess.run([sys.executable, "-c", _PEAK, str(frames)], capture_output=True,
                                                text=True, check=True).stdout.split())
        print(f"   {n:5d} tokens: peak +{grew / 2**20:6.1f} MiB, returns {kept / 2**20:5.2f} MiB; the weight matrix "
              f"would be {2 * 4 * n * n * 4 / 2**20:6.1f} MiB")


def _toy_scenes(pipe, args) -> None:
    import cogviz
    from cogviz.readmaps import argmax_flow
    from cogviz.toy.scenes import displacement, prompt_for, render_scene, sample_scene, shape_tokens

    blocks = len(pipe.transformer.transformer_blocks)
    ratio, error, still = {b: [] for b in range(blocks)}, {b: [] for b in range(blocks)}, []
    for s in range(args.scenes):
        scene = sample_scene(1_000_000_000 + s)
        g = cogviz.generate(pipe, render_scene(scene, frames=[0])[0], prompt_for(scene), steps=12, seed=s,
                            progress=False, decode_video=False, record=("step/*/block/*/readtokens",))
        image_shape = torch.tensor(shape_tokens(scene, 0))
        for b in range(blocks):
            for i in range(12):
                maps = g.trace.row(f"step/{i}/block/{b}/readtokens")
                arrows = argmax_flow(maps)
                for j in range(1, maps.shape[0]):
                    q = torch.tensor(shape_tokens(scene, 4 * j))
                    m = maps[j][q]
                    ratio[b].append((m[:, image_shape].mean() / m[:, ~image_shape].mean()).item())
                    true = torch.tensor(displacement(scene, 4 * j))
                    error[b].append((arrows[j][q] - true).norm(dim=-1).mean().item())
                    if b == 0:
                        still.append(true.norm().item())
    print(f"3. {args.scenes} held-out scenes, 12 steps; later frames' shape tokens (error of 'no motion': "
          f"{np.mean(still):.2f} tokens):")
    for b in range(blocks):
        print(f"   block {b}: shape/background read mass per token {np.median(ratio[b]):5.1f}x (median), "
              f"arrow error {np.mean(error[b]):.2f} tokens")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--scenes", type=int, default=4)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    import cogviz.models as M
    from cogviz.toy.scenes import prompt_for, render_scene, sample_scene

    pipe = M.load_pipeline("toy", device="cpu")
    scene = sample_scene(1_000_000_031)
    image, prompt = render_scene(scene)[0], prompt_for(scene)
    print(f"toy, 17x64x96, {args.steps} steps, CFG, {torch.get_num_threads()} threads")
    ok = _cost(pipe, image, prompt, args)
    _memory()
    _toy_scenes(pipe, args)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""What looking and cutting inside the transformer costs (the toy model, 2 CPU threads).

1. Recording one block's hidden states (``record=("step/*/block/3/hidden",)``) against the plain
   call, interleaved, medians. Target: <= 1.10x.
2. The anchor map (8 blocks x 2 step windows x 3 seeds, knockouts) in one batched ``block_map``
   against the same runs made one ``generate`` call at a time, each measured the same way (the
   map's table). Target: >= 2x faster.
3. The knockout's attention: memory it adds. The edited queries are recomputed with a one-row
   bias ``(1, 1, 1, keys)`` that broadcasts (no token x token tensor); the alternative, a dense
   additive mask, is ``tokens^2`` values. Printed at full size (49 x 480 x 720: 13 latent frames of
   30 x 45 tokens = 17,550 video + 226 text tokens) and measured on one attention call here: the
   bytes the knockout allocates beyond the plain call (torch's CPU allocator profile).

    python benchmarks/bench_inside.py [--repeats 5] [--steps 20]
"""
from __future__ import annotations

import argparse
import time

import torch
from bench_ablations import interleaved


def _record_cost(pipe, image, prompt, args) -> bool:
    import cogviz

    def call(record):
        return lambda: cogviz.generate(pipe, image, prompt, steps=args.steps, seed=0, progress=False, record=record)

    t = interleaved({"plain": call(("frames",)), "block 3": call(("frames", "step/*/block/3/hidden"))}, args.repeats)
    ratio = t["block 3"] / t["plain"]
    print(f"1. record one block's hidden states: {t['block 3']:.3f} s vs plain {t['plain']:.3f} s, ratio {ratio:.3f}"
          f" (target <= 1.10: {'met' if ratio <= 1.10 else 'MISSED'})")
    return ratio <= 1.10


def _map_speed(pipe, image, prompt, args) -> bool:
    import cogviz
    from cogviz.anchor_map import _row, block_map, map_ablations

    windows, seeds = [(0.0, 0.5), (0.5, 1.0)], (0, 1, 2)
    t = time.perf_counter()
    block_map(pipe, image, prompt, windows=windows, seeds=seeds, steps=args.steps)
    batched = time.perf_counter() - t
    t = time.perf_counter()
    for seed in seeds:  # the same table, one call per run
        for a in [None, *map_ablations(pipe, windows=windows)]:
            g = cogviz.generate(pipe, image, prompt, steps=args.steps, seed=seed, progress=False,
                                ablations=[] if a is None else [a])
            _row(g.frames, g.fitted, a, seed)
    separate = time.perf_counter() - t
    speedup = separate / batched
    print(f"2. the map, 8 blocks x 2 windows x 3 seeds (+ baselines, {3 * 17} videos): batched {batched:.1f} s, "
          f"separately {separate:.1f} s, {speedup:.2f}x (target >= 2: {'met' if speedup >= 2 else 'MISSED'})")
    return speedup >= 2


def _knockout_memory() -> None:
    from torch.profiler import ProfilerActivity, profile

    from cogviz.family import FAMILIES
    from cogviz.hooks import Forward
    from cogviz.inside import AttentionEdit, SteeredAttention
    from cogviz.testing import tiny_random_pipeline

    full = 13 * 30 * 45 + 226
    print(f"3. full size: {full:,} tokens; a dense additive mask would hold {full ** 2 * 2 / 2**20:,.0f} MiB (bf16) "
          f"per call; the knockout's bias row holds {full * 2 / 1024:.1f} KiB")
    attn = tiny_random_pipeline().transformer.transformer_blocks[0].attn1
    text, tpf, frames = 16, 300, 13  # a mid-size call here: 3,916 tokens
    dim = attn.to_q.in_features
    enc, hid = torch.randn(2, text, dim), torch.randn(2, tpf * frames, dim)
    forward = Forward(steps=1, tokens_per_frame=tpf, frames=frames, family=FAMILIES["1.0"])
    proc = SteeredAttention(0, forward)

    def peak(rows) -> int:
        forward.rows = rows
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as p:
            proc(attn, hid, enc)
        return max(0, sum(e.cpu_memory_usage for e in p.events() if e.cpu_memory_usage > 0))

    plain, knocked = peak([]), peak([((0, 2), [AttentionEdit()], None)])
    n = text + tpf * frames
    print(f"   measured, one call of {n:,} tokens: plain allocates {plain / 2**20:.1f} MiB, the knockout "
          f"{knocked / 2**20:.1f} MiB ({(knocked - plain) / 2**20:+.1f} MiB); a dense mask alone would be "
          f"{n * n * 4 / 2**20:.1f} MiB (fp32)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    import cogviz.models as M
    from cogviz.toy.scenes import prompt_for, render_scene, sample_scene

    pipe = M.load_pipeline("toy", device="cpu")
    scene = sample_scene(1_000_000_031)
    image, prompt = render_scene(scene)[0], prompt_for(scene)
    print(f"toy, 17x64x96, {args.steps} steps, CFG, {torch.get_num_threads()} threads")
    ok = _record_cost(pipe, image, prompt, args)
    ok &= _map_speed(pipe, image, prompt, args)
    _knockout_memory()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

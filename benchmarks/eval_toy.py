"""Evaluate the shipped toy model on held-out scenes and (optionally) write its model card.

    python benchmarks/eval_toy.py [--scenes 32] [--steps 50] [--write-card]

Figures (see cogviz/toy/evaluate.py): median frame-0 PSNR against the conditioning image, the
share of scenes whose shape colour survives to the last frame, the share whose shape moves in the
prompted direction, and the frame-0 PSNR drop when the image latent is zeroed. Bars: >= 24 dB,
>= 90 %, >= 80 %, >= 6 dB.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=32)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=6.0)
    ap.add_argument("--write-card", action="store_true", help="write cogviz/toy/weights/README.md and eval.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    import cogviz.models as M
    from cogviz.toy.evaluate import QUALITY_BAR, evaluate

    pipe = M.load_pipeline("toy", device="cpu")
    t = time.perf_counter()
    report = evaluate(pipe, args.scenes, steps=args.steps, guidance=args.guidance)
    seconds = time.perf_counter() - t
    s = report.summary()
    meets = report.meets()
    print(json.dumps(s, indent=2))
    for k, v in QUALITY_BAR.items():
        print(f"  {k:22s} {s[k]!s:>8} (bar {v}) {'met' if meets[k] else 'NOT met'}")
    print(f"evaluation took {seconds:.0f} s ({args.scenes} scenes x 2 runs)")
    if args.write_card:
        out = M.TOY_DIR / "eval.json"
        out.write_text(json.dumps({**report.to_dict(), "meets": meets, "seconds": round(seconds, 1)}, indent=2) + "\n")
        from cogviz.toy.card import write_model_card

        print("wrote", write_model_card())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Evaluate the toy model on held-out shapes scenes and held-out photographs; write its card.

    python benchmarks/eval_toy.py [--scenes 32] [--steps 50] [--model DIR] [--no-photos] [--write-card]
    python benchmarks/eval_toy.py --transformer RUN/snap_1000.pt --every 2 --no-shapes --json OUT.json

``--transformer`` puts a training checkpoint's transformer (a state dict) on the pipeline, with the
current tokenizer and text encoder (``cogviz.toy.components``): a point of a training curve.
``--every K`` evaluates every K-th held-out photograph view (the same views at every point).

Shapes world (see cogviz/trainer/evaluate.py): median frame-0 PSNR against the conditioning image, the
share of scenes whose shape colour survives to the last frame, the share whose shape moves in the
prompted direction, the frame-0 PSNR drop when the image latent is zeroed, and the share whose
shape stays one piece. Bars (``QUALITY_BAR``: no worse than the shapes-world-only model this one
replaced): >= 30.9 dB, 100 %, 100 %, >= 16 dB, >= 90 %.

Photographs no training stage saw (matplotlib's and scikit-learn's sample images, 24 views fitted
to 64 x 96), each with one camera prompt (the six moves in turn): VAE reconstruction PSNR, frame-0
PSNR and its drop with z_img zeroed, whether the global motion between the first and last frame
(phase correlation + a zoom search) matches the prompt, and whether the last frame still shows the
photo (the photo moved by the measured motion agrees with it to >= 17 dB over the overlap); and,
prompted "the camera holds still", whether the last frame agrees with the photo to >= 20 dB. Bars:
>= 26 dB, >= 24 dB, >= 6 dB, >= 80 %, >= 80 %, >= 80 %. Beside the VAE figure it prints a reference: a
JPEG-like block-DCT code that keeps as many numbers per 8 x 8 block as the latent (16).
"""
from __future__ import annotations

import argparse
import json
import time

import torch


def _print_bar(summary: dict, meets: dict, bar: dict) -> None:
    for k, v in bar.items():
        print(f"  {k:24s} {summary[k]!s:>8} (bar {v}) {'met' if meets[k] else 'NOT met'}")


def _checkpoint_onto(pipe, path: str) -> None:
    from cogviz.toy.components import make_text_encoder, make_tokenizer
    from cogviz.trainer.train import read_weights

    pipe.transformer.load_state_dict(read_weights(path))
    pipe.tokenizer, pipe.text_encoder = make_tokenizer(), make_text_encoder(0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=32)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=6.0)
    ap.add_argument("--model", default="toy", help="a pipeline folder (default: the shipped toy)")
    ap.add_argument("--no-photos", action="store_true", help="shapes world only")
    ap.add_argument("--no-shapes", action="store_true", help="photographs only")
    ap.add_argument("--transformer", help="a transformer state dict (a training checkpoint) to evaluate on --model's pipeline")
    ap.add_argument("--every", type=int, default=1, help="every K-th held-out photograph view (default: all)")
    ap.add_argument("--no-ablate", action="store_true", help="skip the runs with z_img zeroed")
    ap.add_argument("--backgrounds", choices=["muted", "full"], default="muted",
                    help="shapes scenes' backgrounds: muted (the card's) or full (dark and saturated too)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--write-card", action="store_true", help="write cogviz/toy/weights/README.md and eval.json")
    args = ap.parse_args(argv)
    if args.write_card and (args.no_shapes or args.no_photos or args.transformer or args.every != 1 or args.no_ablate
                            or args.backgrounds != "muted"):
        ap.error("--write-card takes the card's whole evaluation: no --no-shapes, --no-photos, --transformer, --every, "
                 "--no-ablate or --backgrounds full")
    torch.set_num_threads(2)

    import cogviz.models as M
    from cogviz.trainer.evaluate import PHOTO_BAR, QUALITY_BAR, evaluate, evaluate_photos

    pipe = M.load_pipeline(args.model, device="cpu")
    if args.transformer:
        _checkpoint_onto(pipe, args.transformer)
    out = {}
    if not args.no_shapes:
        t = time.perf_counter()
        report = evaluate(pipe, args.scenes, steps=args.steps, guidance=args.guidance, ablate=not args.no_ablate,
                          backgrounds=args.backgrounds)
        seconds = time.perf_counter() - t
        s, meets = report.summary(), report.meets()
        print("shapes world:", json.dumps(s, indent=2))
        _print_bar(s, meets, QUALITY_BAR)
        print(f"shapes evaluation took {seconds:.0f} s ({args.scenes} scenes x 2 runs)")
        out = {**report.to_dict(), "meets": meets, "seconds": round(seconds, 1)}
    if not args.no_photos:
        from cogviz.toy.natural import heldout_views

        t = time.perf_counter()
        photos = evaluate_photos(pipe, heldout_views()[::args.every], steps=args.steps, guidance=args.guidance,
                                 ablate=not args.no_ablate)
        ps, pm = photos.summary(), photos.meets()
        print("held-out photographs:", json.dumps(ps, indent=2))
        _print_bar(ps, pm, PHOTO_BAR)
        print(f"  reference: block-DCT with the latent's budget {ps['dct_psnr_median']} dB (VAE {ps['vae_psnr_median']} dB)")
        print(f"photo evaluation took {time.perf_counter() - t:.0f} s")
        out["photos"] = {**photos.to_dict(), "meets": pm}
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps(out, indent=2) + "\n")
    if args.write_card:
        path = M.TOY_DIR / "eval.json"
        path.write_text(json.dumps(out, indent=2) + "\n")
        from cogviz.trainer.card import write_model_card

        print("wrote", write_model_card())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``cogviz`` command line: thin over the same functions the notebooks call.

    cogviz generate --image PATH|URL --prompt TEXT [--model toy|HUB_ID|DIR] [--fit crop] [--frames N]
                    [--steps N] [--guidance G] [--seed N] [--out video.mp4] [--trace trace.safetensors]
                    [--image-strength A] [--image-noise SIGMA] [--image-window START END]
                    [--image-guidance S] [--ablation JSON|FILE.json ...] [--metrics metrics.csv]
    cogviz sweep CONFIG.json|yaml --out DIR [--backend local|ray] [--ray-address ADDR] [--actors N]
                 [--gpus-per-actor G] [--batch N|auto]
    cogviz fit IMAGE [--preset NAME | --size HxW] [--mode crop|pad|stretch] --out PATH
    cogviz train-toy [--run-dir DIR] ...      (same as python -m cogviz.trainer)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    lists_kinds = False  # a command taking ablations: its --help ends with every kind

    def error(self, message):  # one clear line and exit code 2, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)

    def format_help(self):
        if self.lists_kinds:
            self.epilog = _kinds_epilog()
        return super().format_help()


def _kinds_epilog() -> str:
    """Every ablation kind, its parameters and whether it lies inside the model's training
    distribution, read from the registry (imported only when --help is printed)."""
    import dataclasses

    from .ablations import KINDS

    lines = ["ablation kinds (--ablation JSON / a config's ablations), parameters, and in the training "
             "distribution?"]
    for kind, cls in KINDS.items():
        params = ", ".join(f.name for f in dataclasses.fields(cls))
        lines.append(f"  {kind}({params}): {cls.in_distribution}")
    return "\n".join(lines)


def _size(text: str):
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        return (h, w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH like 480x720, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return v


def _ablations(texts) -> list:
    """``--ablation`` values: JSON text (an object or a list of objects) or the path of a .json file."""
    import json
    from pathlib import Path

    from .ablations import from_dict
    from .errors import AblationError

    out = []
    for text in texts or ():
        source = text
        if text.strip().endswith(".json") and not text.lstrip().startswith(("{", "[")):
            try:
                text = Path(text).read_text()
            except OSError as e:
                raise AblationError(f"--ablation {source!r}: cannot read the file ({e.strerror})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise AblationError(f"--ablation {source!r}: not valid JSON ({e.msg} at column {e.colno}); expected e.g. "
                                """'{"kind": "noise_image", "sigma": 0.05}'""") from None
        out += [from_dict(d) for d in (data if isinstance(data, list) else [data])]
    return out


def _generate(args) -> int:
    from pathlib import Path

    from . import video
    from .errors import CogvizError
    from .experiment import generate
    from .models import fps_of, load_pipeline
    from .points import DEFAULT_RECORD

    out = Path(args.out)
    if out.suffix.lower() not in (".mp4", ".gif", ".png"):
        raise CogvizError(f"--out {args.out!r}: use a .mp4, .gif or .png file name")
    if args.trace and not args.trace.endswith(".safetensors"):
        raise CogvizError(f"--trace {args.trace!r}: the trace is a .safetensors file")
    from .image import load_image

    if args.metrics and Path(args.metrics).suffix.lower() not in (".csv", ".parquet"):
        raise CogvizError(f"--metrics {args.metrics!r}: use a .csv or .parquet file name")
    from .ablations import resolve

    ablations = resolve(_ablations(args.ablation), image_strength=args.image_strength, image_noise=args.image_noise,
                        image_window=args.image_window, image_guidance=args.image_guidance)  # bad values fail here
    image = load_image(args.image)  # a bad image fails before the model loads
    pipe = load_pipeline(args.model, memory=args.memory)
    g = generate(pipe, image, args.prompt, num_frames=args.frames, steps=args.steps, guidance=args.guidance,
                 seed=args.seed, fit=args.fit, record=tuple(args.record or DEFAULT_RECORD), ablations=ablations)
    fps = fps_of(pipe)  # the family's rate: 16 for CogVideoX 1.5
    video.save(g.frames, out, fps=fps)
    print(g.fitted.report.summary())
    if ablations:
        from .ablations import label

        print(f"ablations: {label(ablations)}")
    if args.metrics:
        from .metrics import anchor_metrics, summarize

        df = anchor_metrics(g.frames, g.fitted)
        df.to_parquet(args.metrics) if args.metrics.lower().endswith(".parquet") else df.to_csv(args.metrics, index=False)
        s = summarize(df, fps=fps)
        print(f"anchor: frame 0 {s.frame0_psnr:.1f} dB / SSIM {s.frame0_ssim:.3f}, mean SSIM {s.mean_ssim:.3f}, "
              f"half-life {s.half_life:.1f} frames, motion {s.motion:.2f} px/frame; wrote {args.metrics}")
    print(f"wrote {out} ({len(g.frames)} frames, {g.frames.shape[1]}x{g.frames.shape[2]})")
    if args.trace:
        g.trace.save(args.trace)
        print(f"wrote {args.trace} ({len(g.trace.names())} tensors, {g.trace.nbytes() / 1e6:.1f} MB)")
    return 0


def _sweep(args) -> int:
    import pandas as pd

    from .errors import CogvizError
    from .sweep import load_config, sweep

    ray_options = None
    if args.backend == "ray":
        ray_options = {"address": args.ray_address, "num_actors": args.actors, "num_gpus": args.gpus_per_actor,
                       "memory": args.memory}
    elif args.ray_address or args.actors or args.gpus_per_actor is not None:
        raise CogvizError("--ray-address, --actors and --gpus-per-actor need --backend ray")
    config = load_config(args.config)  # a bad config fails here, before the model loads
    model = config.pop("model", "toy")
    sources, prompts = config.pop("images"), config.pop("prompts")
    seeds, ablations = config.pop("seeds", [0]), config.pop("ablations", [])
    from .image import load_image
    from .sweep.identity import _image_name

    # each image loaded once, here (a missing one fails before the model loads), and named by its source
    images = [(_image_name(src, i), load_image(src)) for i, src in enumerate(sources)]
    if args.backend == "ray":  # a wrong address fails in seconds, before the model loads (probed once)
        from .sweep.on_ray import check_address

        check_address(args.ray_address)
    from .models import load_pipeline

    pipe = load_pipeline(model, memory=args.memory)
    result = sweep(pipe, images, prompts, ablations, seeds, out_dir=args.out, backend=args.backend,
                   progress=not args.quiet, batch=args.batch, ray_options=ray_options, **config)
    table = result.summary()
    if len(table) and len(table.columns) > 1:
        with pd.option_context("display.width", 160, "display.max_colwidth", 60):
            print(table.round(3).to_string())
    print(f"{len(result)} runs in {args.out}")
    return 0


def _report(args) -> int:
    from .sweep import SweepResult, report

    path = report(SweepResult.load(args.results), args.out, metric=args.metric, baseline=args.baseline,
                  per_frame=None if args.per_frame == "none" else args.per_frame)
    print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline in any browser)")
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of GPUs >= 0 (fractions allowed, e.g. 0.5)")
    return value


def _batch(text: str):
    if text == "auto":
        return text
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number of variants >= 1, or auto") from None


def build_parser() -> argparse.ArgumentParser:
    from .presets import MEMORY_OPTIONS, PROMPT_HINT

    p = _Parser(prog="cogviz", description="See, run and test CogVideoX image-to-video conditioning.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    g = sub.add_parser("generate", help="image-to-video: the toy model by default, any CogVideoX I2V checkpoint",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Generate a video that starts from IMAGE. With only --image and --prompt it "
                                   "runs the embedded toy model on the CPU in seconds.")
    g.lists_kinds = True
    g.add_argument("--image", required=True, help="path or http(s) URL of the conditioning image")
    g.add_argument("--prompt", required=True, help=f"what should happen, {PROMPT_HINT}")
    g.add_argument("--model", default="toy", help="'toy' (default), a hub id such as THUDM/CogVideoX-5b-I2V, "
                                                  "or a pipeline folder")
    g.add_argument("--fit", choices=["crop", "pad", "stretch"], default="crop", help="how the image is fitted")
    g.add_argument("--frames", type=_positive, help="frame count (8k+1 for 1.0 models, 16k+1 for 1.5); "
                                                    "default: the model's own")
    g.add_argument("--steps", type=_positive, default=50, help="denoising steps (default 50)")
    g.add_argument("--guidance", type=float, default=6.0, help="classifier-free guidance scale (default 6)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--memory", action="append", choices=MEMORY_OPTIONS, help="a memory option (repeatable)")
    g.add_argument("--out", default="video.mp4", help="video file: .mp4, .gif or .png strip (default video.mp4)")
    g.add_argument("--trace", help="also save the trace (safetensors + JSON metadata) here")
    g.add_argument("--image-strength", type=float, metavar="ALPHA",
                   help="multiply the image latent z_img by ALPHA (1: unchanged, 0: no image)")
    g.add_argument("--image-noise", type=float, metavar="SIGMA",
                   help="Gaussian pixel noise on the image before encoding, in [-1, 1] units (training uses ~0.05)")
    g.add_argument("--image-window", type=float, nargs=2, metavar=("START", "END"),
                   help="feed the image only in this fraction of the steps, e.g. 0 0.5 (zeros outside)")
    g.add_argument("--image-guidance", type=float, metavar="SCALE",
                   help="image-only guidance scale, a third CFG branch (1: the usual CFG)")
    g.add_argument("--ablation", action="append", metavar="JSON",
                   help="""an ablation as JSON, e.g. '{"kind": "mask_image", "box": [0, 0, 32, 32]}', or a .json """
                        "file holding one or a list (repeatable; applied in order, before the flags above)")
    g.add_argument("--metrics", help="also measure the anchor per frame and write the table here (.csv or .parquet)")
    g.add_argument("--record", action="append", help="trace names or patterns to record, e.g. 'step/*/input' "
                                                     "(repeatable; default: the cheap ones)")
    s = sub.add_parser("sweep", help="many controlled runs from a JSON/YAML config, resumable, with metrics",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run every image x prompt x seed x ablation of CONFIG into DIR. Finished runs "
                                   "are skipped on a re-run; an interrupted sweep resumes where it stopped.")
    s.lists_kinds = True
    s.add_argument("config", help="JSON or YAML: images, prompts, seeds, ablations, model, steps, guidance, ...")
    s.add_argument("--out", required=True, help="results directory (created; shared storage for a cluster)")
    s.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: this process (default); ray: Ray actors, one pipeline each (pip install "
                        "'cogviz[cluster]')")
    s.add_argument("--ray-address", metavar="ADDR", help="a Ray cluster to join, e.g. auto or ray://head:10001 "
                                                         "(default: start a local Ray)")
    s.add_argument("--actors", type=_positive, metavar="N", help="Ray actors (default: one per GPU, else 2)")
    s.add_argument("--gpus-per-actor", type=_fraction, metavar="G",
                   help="GPUs per Ray actor, fractions allowed, e.g. 0.5 (default: 1 with GPUs, else 0)")
    s.add_argument("--batch", type=_batch, default="auto", metavar="N|auto",
                   help="variants per transformer forward (default auto: as many as fit the device's memory)")
    s.add_argument("--memory", action="append", choices=MEMORY_OPTIONS, help="a memory option (repeatable)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    r = sub.add_parser("report", help="one self-contained HTML report of a sweep's results (effects with "
                                      "intervals, plots, videos)",
                       description="Write RESULTS/report.html (or --out): the settings, each variant's paired "
                                   "effect with its 95% interval, the plots and video grids, in one file that "
                                   "opens offline.")
    r.add_argument("results", help="a sweep's results directory (the --out of cogviz sweep)")
    r.add_argument("--out", help="the HTML file to write (default RESULTS/report.html)")
    r.add_argument("--metric", default="mean_ssim", help="per-run figure for the effects table (default mean_ssim)")
    r.add_argument("--per-frame", default="ssim", help="per-frame metric for the effect curves (default ssim; "
                                                       "none: leave them out)")
    r.add_argument("--baseline", default="baseline", help="the variant effects are measured against")
    f = sub.add_parser("fit", help="load an image (path or URL) and fit it to a model's size")
    f.add_argument("image", help="path or http(s) URL")
    g = f.add_mutually_exclusive_group()
    g.add_argument("--preset", default="CogVideoX-5b-I2V", help="preset name (default CogVideoX-5b-I2V)")
    g.add_argument("--size", type=_size, help="HEIGHTxWIDTH instead of a preset")
    f.add_argument("--mode", choices=["crop", "pad", "stretch"], default="crop")
    f.add_argument("--out", required=True, help="where to write the fitted image (PNG/JPEG by suffix)")
    # listed for --help only: main() hands `train-toy ...` to cogviz.trainer before parsing, so that
    # the other commands (and their errors) never import torch and diffusers just to build this parser
    sub.add_parser("train-toy", help="train the embedded toy model (python -m cogviz.trainer; "
                                     "cogviz train-toy --help lists its options)")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train-toy"]:
        from .trainer.train import main as train_main

        return train_main(argv[1:], prog="cogviz train-toy")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from .errors import CogvizError, one_line

    try:
        if args.command == "generate":
            return _generate(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "report":
            return _report(args)
        if args.command == "fit":
            from PIL import Image

            from .fit import fit_image

            suffix = Path(args.out).suffix.lower()
            if suffix not in Image.registered_extensions():
                raise CogvizError(f"--out {args.out!r}: {suffix or 'no suffix'} is not an image format Pillow "
                                  "writes; use e.g. .png or .jpg")
            fitted = fit_image(args.image, args.size or args.preset, args.mode)
            fitted.image.save(args.out)
            print(fitted.report.summary())
            return 0
    except CogvizError as e:
        sys.stderr.write(f"cogviz: error: {e}\n")
        return 2
    except OSError as e:  # a full disk, a folder without permission: one line, not a traceback
        sys.stderr.write(f"cogviz: error: {one_line(e)}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

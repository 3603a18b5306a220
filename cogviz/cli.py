"""The ``cogviz`` command line: thin over the same functions the notebooks call.

    cogviz fit IMAGE [--preset NAME | --size HxW] [--mode crop|pad|stretch] --out PATH
    cogviz train-toy [--run-dir DIR] ...      (same as python -m cogviz.toy.train)
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line and exit code 2, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _size(text: str):
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        return (h, w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH like 480x720, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cogviz", description="See, run and test CogVideoX image-to-video conditioning.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    f = sub.add_parser("fit", help="load an image (path or URL) and fit it to a model's size")
    f.add_argument("image", help="path or http(s) URL")
    g = f.add_mutually_exclusive_group()
    g.add_argument("--preset", default="CogVideoX-5b-I2V", help="preset name (default CogVideoX-5b-I2V)")
    g.add_argument("--size", type=_size, help="HEIGHTxWIDTH instead of a preset")
    f.add_argument("--mode", choices=["crop", "pad", "stretch"], default="crop")
    f.add_argument("--out", required=True, help="where to write the fitted image (PNG/JPEG by suffix)")
    t = sub.add_parser("train-toy", help="train the embedded toy model (python -m cogviz.toy.train)")
    from .toy.train import build_parser as toy_parser

    toy_parser(t)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from .errors import CogvizError

    try:
        if args.command == "fit":
            from .fit import fit_image

            fitted = fit_image(args.image, args.size or args.preset, args.mode)
            fitted.image.save(args.out)
            print(fitted.report.summary())
            return 0
        if args.command == "train-toy":
            from .toy.train import main as train_main

            return train_main([a for a in (argv if argv is not None else sys.argv[1:]) if a != "train-toy"])
    except CogvizError as e:
        sys.stderr.write(f"cogviz: error: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

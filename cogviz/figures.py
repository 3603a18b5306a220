"""The README's pictures, rendered from the embedded toy model: ``make figures`` (``python -m cogviz.figures``).

Each is a :class:`cogviz.viz.Picture` saved as PNG under ``docs/figures/``; the same seed gives the
same files, so a change that alters what a reader sees shows up in the diff.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

__all__ = ["render_figures", "FIGURES"]

FIGURES = ("fitted.png", "concat_before_after.png", "frames_overview.png", "video_strip.png")


def render_figures(out_dir: str | Path = "docs/figures", *, seed: int = 0, steps: int = 20) -> list[Path]:
    """Render the README's tour: the fitted image with its crop box, z_t | z_img before and after the
    concatenation, the frames overview of the transformer input, a frame strip of a generated video."""
    import torch

    import cogviz
    from cogviz import viz
    from cogviz.family import channels
    from cogviz.samples import load_sample, sample_path

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(pic, name):
        path = out / name
        pic.save(path)
        written.append(path)

    source = load_sample("lighthouse")
    fitted = cogviz.fit_image(source, "CogVideoX-5b-I2V", "crop", focus=(0.5, 0.3))
    save(viz.picture(viz.rgb_tiles([np.asarray(viz.fit_overlay(source, fitted.report, max_side=360)),
                                    np.asarray(viz.thumbnail(fitted.image, 360)[0])],
                                   ["source, crop box outlined", fitted.report.summary()])), FIGURES[0])

    pipe = cogviz.load_pipeline("toy")
    g = cogviz.generate(pipe, sample_path("shapes"), "a red circle moves right", steps=steps, seed=seed,
                        record=("z_img", "step/*/z_t", "step/*/input"), progress=False)
    x = g.trace.row("step/0/input")  # (F, 32, h, w): the prompt's row; latent frames, z_t | z_img channels
    z_t = viz.channel_mosaic(g.trace["step/0/z_t"][0, 0], zoom=4, title="z_t (noise), step 1, latent frame 0")
    z_img = viz.channel_mosaic(g.trace["z_img"][0, 0], zoom=4, title="z_img (the image), latent frame 0")
    before = np.concatenate([z_t, np.full((z_t.shape[0], 16, 3), 255, np.uint8), z_img], axis=1)
    split = channels(pipe)  # where z_img's channels start in the input
    after = viz.channel_mosaic(x[0], split=split, zoom=4, title="concat(z_t, z_img, dim=channels): 32 channels")
    width = max(before.shape[1], after.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)), constant_values=255)  # noqa: E731
    save(viz.picture(np.concatenate([pad(before), np.full((16, width, 3), 255, np.uint8), pad(after)])),
         FIGURES[1])
    save(viz.frames_overview(x, split=split, tile=16), FIGURES[2])
    save(viz.frame_strip(g.frames, [0, 4, 8, 12, 16], zoom=2), FIGURES[3])
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cogviz.figures", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/figures")
    args = ap.parse_args(argv)
    for p in render_figures(args.out):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

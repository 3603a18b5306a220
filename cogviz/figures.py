"""The README's pictures, rendered from the embedded toy model: ``make figures`` (``python -m cogviz.figures``).

Each is a :class:`cogviz.viz.Picture` saved as PNG under ``docs/figures/``; the same seed gives the
same files, so a change that alters what a reader sees shows up in the diff.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

__all__ = ["render_figures", "FIGURES"]

FIGURES = ("held_and_moved.png", "fitted.png", "concat_before_after.png", "frames_overview.png", "video_strip.png")


def render_figures(out_dir: str | Path = "docs/figures", *, seed: int = 0, steps: int = 20) -> list[Path]:
    """Render the README's tour: what the model does well (a photograph held still beside a shape
    moving), the fitted image with its crop box, z_t | z_img before and after the
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

    pipe = cogviz.load_pipeline("toy")
    g = cogviz.generate(pipe, sample_path("shapes"), "a red circle moves right", steps=steps, seed=seed,
                        record=("z_img", "step/*/z_t", "step/*/input"), progress=False)
    save(_held_and_moved(pipe, steps=steps, seed=seed), "held_and_moved.png")

    source = load_sample("lighthouse")
    fitted = cogviz.fit_image(source, "CogVideoX-5b-I2V", "crop", focus=(0.5, 0.3))
    save(viz.picture(viz.rgb_tiles([np.asarray(viz.fit_overlay(source, fitted.report, max_side=360)),
                                    np.asarray(viz.thumbnail(fitted.image, 360)[0])],
                                   ["source, crop box outlined", fitted.report.summary()])), "fitted.png")

    x = g.trace.row("step/0/input")  # (F, 32, h, w): the prompt's row; latent frames, z_t | z_img channels
    z_t = viz.channel_mosaic(g.trace["step/0/z_t"][0, 0], zoom=4, title="z_t (noise), step 1, latent frame 0")
    z_img = viz.channel_mosaic(g.trace["z_img"][0, 0], zoom=4, title="z_img (the image), latent frame 0")
    before = np.concatenate([z_t, np.full((z_t.shape[0], 16, 3), 255, np.uint8), z_img], axis=1)
    split = channels(pipe)  # where z_img's channels start in the input
    after = viz.channel_mosaic(x[0], split=split, zoom=4, title="concat(z_t, z_img, dim=channels): 32 channels")
    width = max(before.shape[1], after.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)), constant_values=255)  # noqa: E731
    save(viz.picture(np.concatenate([pad(before), np.full((16, width, 3), 255, np.uint8), pad(after)])),
         "concat_before_after.png")
    save(viz.frames_overview(x, split=split, tile=16), "frames_overview.png")
    save(viz.frame_strip(g.frames, [0, 4, 8, 12, 16], zoom=2), "video_strip.png")
    return written


def _held_and_moved(pipe, *, steps: int, seed: int, scene_seed: int = 1_000_000_011):
    """What the model does well: a photograph no training stage saw, held still to the last frame,
    beside a held-out shapes-world scene moving as its prompt says (frames 0, 8 and 16 of each)."""
    from PIL import Image

    import cogviz
    from cogviz import viz
    from cogviz.toy import photo, prompt_for, render_scene, sample_scene

    fitted = cogviz.fit_image(Image.fromarray(photo("grace_hopper")), "cogviz-toy", "crop")
    still = cogviz.generate(pipe, fitted, "the camera holds still", steps=steps, seed=seed, progress=False).frames
    scene = sample_scene(scene_seed)
    moving = cogviz.generate(pipe, render_scene(scene)[0], prompt_for(scene), steps=steps, seed=seed,
                             progress=False).frames
    picks = [0, 8, 16]
    rows = [viz.frame_strip(still, picks, titles=[f"held-out photo, 'the camera holds still': {f}" if f == 0
                                                  else f"frame {f}" for f in picks], zoom=3),
            viz.frame_strip(moving, picks, titles=[f"held-out scene, '{prompt_for(scene)}': {f}" if f == 0 else f"frame {f}"
                                                   for f in picks], zoom=3)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return viz.picture(np.concatenate(rows))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cogviz.figures", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/figures")
    args = ap.parse_args(argv)
    for p in render_figures(args.out):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

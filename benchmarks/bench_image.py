"""Load + fit a 4000x3000 JPEG to 480x720: cogviz vs diffusers' load_image + VideoProcessor.preprocess.

All measured in the same run, on the same file: ``fit_image(path)``, the two-step
``fit_image(load_image(path))`` and ImageFitter (first load and fit; each control change: focus,
mode, fill, preset). Quality: PSNR against a full-resolution decode followed by the same fit (so only
the fast path's shortcuts are judged). Targets: both paths >= 3x diffusers and within 10% of each
other, PSNR >= 40 dB; ImageFitter first load <= 300 ms, control change <= 30 ms median.

    python benchmarks/bench_image.py [--repeats N]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_photo(path: Path, w: int = 4000, h: int = 3000) -> None:
    """A photo-like 12-megapixel JPEG: smooth gradients, shapes and fine noise, quality 90."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 200 + 30, y / h * 180 + 40, (x + y) / (w + h) * 150 + 60], -1)
    for _ in range(40):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(80, 600)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 6, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)

    import torch
    from diffusers.utils import load_image as diffusers_load_image
    from diffusers.video_processor import VideoProcessor

    import cogviz

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "photo.jpg"
        make_photo(path)
        processor = VideoProcessor(vae_scale_factor=8)

        def baseline():
            return processor.preprocess(diffusers_load_image(str(path)), height=480, width=720)

        def ours_crop():
            return cogviz.fit_image(path, (480, 720), "crop")

        def ours_stretch():
            return cogviz.fit_image(path, (480, 720), "stretch")

        def ours_two_step():
            return cogviz.fit_image(cogviz.load_image(path), (480, 720), "crop")

        t_base = median_time(baseline, args.repeats)
        t_crop = median_time(ours_crop, args.repeats)
        t_stretch = median_time(ours_stretch, args.repeats)
        t_two = median_time(ours_two_step, args.repeats)
        fitter = fitter_times(path, args.repeats)

        full = Image.open(path).convert("RGB")  # full-resolution decode, then the same fits
        ref_crop = np.asarray(cogviz.fit_image(full, (480, 720), "crop").image)
        ref_stretch = np.asarray(cogviz.fit_image(full, (480, 720), "stretch").image)
        q_crop = psnr(np.asarray(ours_crop().image), ref_crop)
        q_stretch = psnr(np.asarray(ours_stretch().image), ref_stretch)
        q_two = psnr(np.asarray(ours_two_step().image), ref_crop)
        w = fitter["widget"]
        q_fitter = psnr(np.asarray(w.fitted.image),
                        np.asarray(cogviz.fit_image(full, w.preset.value, w.mode.value,
                                                    focus=(w.focus_x.value, w.focus_y.value)).image))
        base = ((baseline()[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        q_base_vs_stretch = psnr(np.asarray(ours_stretch().image), base)

    print(f"4000x3000 JPEG -> 480x720, median of {args.repeats} runs, {torch.get_num_threads()} threads")
    print(f"  diffusers load_image + VideoProcessor.preprocess : {t_base * 1000:8.1f} ms")
    print(f"  cogviz fit_image(path, crop)                     : {t_crop * 1000:8.1f} ms  "
          f"ratio {t_base / t_crop:5.2f}x  PSNR vs full decode {q_crop:5.1f} dB")
    print(f"  cogviz fit_image(path, stretch)                  : {t_stretch * 1000:8.1f} ms  "
          f"ratio {t_base / t_stretch:5.2f}x  PSNR vs full decode {q_stretch:5.1f} dB")
    print(f"  cogviz fit_image(load_image(path), crop)         : {t_two * 1000:8.1f} ms  "
          f"ratio {t_base / t_two:5.2f}x  PSNR vs full decode {q_two:5.1f} dB  "
          f"(two-step / one-step {t_two / t_crop:.2f})")
    print(f"  (stretch vs diffusers' own output: {q_base_vs_stretch:.1f} dB; same geometry, same filter)")
    ok = t_base / t_crop >= 3 and t_base / t_two >= 3 and t_two / t_crop <= 1.1 and min(q_crop, q_two) >= 40
    print(f"target (both paths >= 3x, two-step within 10% of one-step, >= 40 dB): {'met' if ok else 'NOT met'}")
    print(f"ImageFitter on the same photo (preview 320 px), median of {args.repeats} runs per control:")
    print(f"  first load + fit          : {fitter['first'] * 1000:7.1f} ms   (target <= 300 ms)")
    for k in ("focus", "mode", "fill", "preset"):
        print(f"  {k:<25} : {fitter[k] * 1000:7.1f} ms")
    all_changes = statistics.median(fitter["all"])
    print(f"  any control change        : {all_changes * 1000:7.1f} ms   (target <= 30 ms median)")
    print(f"  fitted vs full-decode fit : {q_fitter:7.1f} dB   (target >= 40 dB)")
    ok2 = fitter["first"] <= 0.3 and all_changes <= 0.03 and q_fitter >= 40
    print(f"ImageFitter target: {'met' if ok2 else 'NOT met'}")
    return 0


def fitter_times(path: Path, repeats: int) -> dict:
    """ImageFitter: median first load + fit, and median time of each kind of control change."""
    from cogviz.widgets import ImageFitter

    w = ImageFitter()
    firsts = []
    for _ in range(repeats):
        t = time.perf_counter()
        w.set_source(str(path))
        firsts.append(time.perf_counter() - t)

    def timed(widget, values):
        out = []
        for v in values:
            t = time.perf_counter()
            widget.value = v
            out.append(time.perf_counter() - t)
        return out

    r = {"first": statistics.median(firsts), "widget": w}
    r["focus"] = timed(w.focus_x, [0.2 + 0.6 * i / (repeats * 2) for i in range(repeats * 2)])
    r["mode"] = timed(w.mode, ["pad", "stretch", "crop"] * repeats)
    w.mode.value = "pad"
    r["fill"] = timed(w.fill, ["edge", "blur", "white", "black"] * repeats)
    w.mode.value = "crop"
    r["preset"] = timed(w.preset, ["CogVideoX1.5-5B-I2V", "cogviz-toy", "CogVideoX-5b-I2V"] * repeats)
    r["all"] = r["focus"] + r["mode"] + r["fill"] + r["preset"]
    for k in ("focus", "mode", "fill", "preset"):
        r[k] = statistics.median(r[k])
    return r


if __name__ == "__main__":
    raise SystemExit(main())

"""Latent views at full size: a LatentExplorer update, and the mosaic renderer vs matplotlib subplots.

The full-size CogVideoX-5b-I2V transformer input for one latent frame is 32 channels x 60 x 90.
Targets: a LatentExplorer update (a slider's trait change until the new PNG bytes are set) takes
<= 30 ms median; the channel mosaic is >= 20x faster than drawing the same labelled grid with
matplotlib subplots, measured in the same run, both to an array and to PNG bytes.

    python benchmarks/bench_views.py [--repeats 30]
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import torch


def synthetic_trace(steps: int = 5, frames: int = 13, h: int = 60, w: int = 90):
    from cogviz.sampler import Trace

    g = torch.Generator().manual_seed(0)
    t = Trace(("*",))
    z_img = torch.zeros(1, frames, 16, h, w)
    z_img[:, 0] = torch.randn(1, 16, h, w, generator=g)
    t.tensors["z_img"] = z_img
    for i in range(steps):
        z_t = torch.randn(1, frames, 16, h, w, generator=g) * (1 - i / steps)
        t.tensors[f"step/{i}/z_t"] = z_t
        t.tensors[f"step/{i}/input"] = torch.cat([torch.cat([z_t, z_img], 2)] * 2)
        t.tensors[f"step/{i}/pred"] = torch.randn(1, frames, 16, h, w, generator=g)
    return t


def matplotlib_grid(a: np.ndarray, png: bool = True):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    m = float(np.abs(a).max())
    fig = Figure(figsize=(8 * 0.9, 4 * 0.75))
    axes = fig.subplots(4, 8)
    for k, ax in enumerate(axes.flat):
        ax.imshow(a[k], cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        ax.set_title(f"c{k}", fontsize=6)
        ax.axis("off")
    if not png:  # drawn into an RGBA array, like the mosaic's uint8 array
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    from cogviz.viz import channel_mosaic
    from cogviz.widgets import LatentExplorer
    from cogviz.widgets.transport import mosaic_png

    trace = synthetic_trace()
    ex = LatentExplorer(trace)
    ex.view.value, ex.tensor.value = "grid", "input"
    times = []
    for k in range(args.repeats + 3):
        t = time.perf_counter()
        ex.step.value = (ex.step.value + 1) % 5   # one slider tick -> new PNG bytes in the Image widget
        if k >= 3:
            times.append(time.perf_counter() - t)
    upd = statistics.median(times)

    a = trace["step/2/input"][1, 0].numpy()  # (32, 60, 90)
    matplotlib_grid(a), mosaic_png(channel_mosaic(a, split=16, zoom=1))  # warm-up (fonts, colormaps)
    runs = {k: [] for k in ("ours_png", "mpl_png", "ours_arr", "mpl_arr")}
    for _ in range(max(5, args.repeats // 3)):
        for key, fn in (("ours_png", lambda: mosaic_png(channel_mosaic(a, split=16, zoom=1))),
                        ("mpl_png", lambda: matplotlib_grid(a)),
                        ("ours_arr", lambda: channel_mosaic(a, split=16, zoom=1)),
                        ("mpl_arr", lambda: matplotlib_grid(a, png=False))):
            t = time.perf_counter()
            fn()
            runs[key].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"full-size latent frame, 32 x 60 x 90, median of {len(times)} / {len(runs['ours_png'])}, "
          f"{torch.get_num_threads()} threads")
    print(f"  LatentExplorer update (step slider -> new PNG): {upd * 1000:.1f} ms "
          f"(target <= 30 ms: {'met' if upd <= 0.030 else 'NOT met'})")
    for what, ours, mpl in (("to an array", "ours_arr", "mpl_arr"), ("to PNG bytes", "ours_png", "mpl_png")):
        r = med[mpl] / med[ours]
        print(f"  {what:13s}: channel_mosaic {med[ours] * 1000:.1f} ms, matplotlib 4x8 subplots "
              f"{med[mpl] * 1000:.1f} ms, speed-up {r:.1f}x (target >= 20x: {'met' if r >= 20 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A run's VAE, before any transformer trains on it: held-out photographs (the eval's 24 views),
moving shapes (a box around the shape, frames 1-16) and decoder sensitivity (the shape box after
Gaussian noise of 0.2x the latent std on the latent). Usage: python vae_report.py RUN_DIR [STAGE]"""
import json, sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from cogviz.toy.components import make_vae
from cogviz.toy.evaluate import vae_psnr
from cogviz.toy.natural import heldout_views
from cogviz.toy.scenes import DIRECTIONS, render_scene, sample_scene
from cogviz.toy.train import EVAL_SEED_BASE, to_pixels

torch.set_num_threads(2)
run = Path(sys.argv[1]); stage = sys.argv[2] if len(sys.argv) > 2 else "vae_clips"
cfg = json.loads((run / "config.json").read_text())
vae = make_vae(block_out_channels=tuple(int(c) for c in cfg.get("vae_channels", "16,32,32,64").split(",")))
if (run / f"{stage}.pt").exists():
    vae.load_state_dict(torch.load(run / f"{stage}.pt"))
else:  # a stage still running: its last checkpoint
    ckpt = torch.load(run / f"{stage}.ckpt", weights_only=False)
    vae.load_state_dict(ckpt["model"]); stage = f"{stage} step {ckpt['step']}"
vae.eval()
photos = [vae_psnr(SimpleNamespace(vae=vae), v) for _, v in heldout_views()]


def shape_box(eps, n=8):
    res = []
    for s in range(n):
        sc = sample_scene(EVAL_SEED_BASE + s); fr = render_scene(sc)
        with torch.no_grad():
            z = vae.encode(to_pixels(fr[None])).latent_dist.mean
            z = z + eps * z.std() * torch.randn(z.shape, generator=torch.Generator().manual_seed(s))
            y = vae.decode(z).sample
        y = ((y[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().numpy()
        dy, dx = DIRECTIONS[sc.direction]; r = sc.radius + 4
        for f in range(1, 17):
            cy, cx = sc.start[0] + dy * sc.speed * f, sc.start[1] + dx * sc.speed * f
            y0, y1, x0, x1 = int(max(cy - r, 0)), int(min(cy + r, 64)), int(max(cx - r, 0)), int(min(cx + r, 96))
            mse = ((y[f, y0:y1, x0:x1] - fr[f, y0:y1, x0:x1].astype(np.float64)) ** 2).mean()
            res.append(10 * np.log10(255 ** 2 / mse))
    return float(np.median(res))


clean, noisy = shape_box(0.0), shape_box(0.2)
print(f"{run}/{stage}: held-out photos {np.median(photos):.2f} dB median ({len(photos)} views); "
      f"shape box {clean:.2f} dB, with latent noise 0.2 {noisy:.2f} dB (loss {clean - noisy:.2f} dB)")

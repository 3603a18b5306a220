"""Denoise one held-out scene (EVAL_SEED_BASE) from pure noise and from its true latent noised to
t0 = 300, at guidance 1 and 6; print how far each final latent is from the true one (mean squared,
latent at unit std) and save the truth, its VAE reconstruction and the four decoded results, frames
0, 4, 8, 12, 16 per row. From noise it also prints the error over latent frames 1-4 in the cells the
shape covers (widened by one cell) and elsewhere. Usage: python latent_vs_truth.py MODEL OUT.png"""
import sys

import numpy as np
import torch
from PIL import Image

from cogviz.toy.evaluate import colour_mask
from denoise import Probe

p = Probe(sys.argv[1])
sc, fr, x0, zi, pe = p.scene(0)
m = np.stack([colour_mask(f, sc.colour) for f in fr]).any(0)  # the 8x12 latent cells the shape covers
cells = torch.from_numpy(m.reshape(8, 8, 12, 8).any(axis=(1, 3)))
cells = torch.nn.functional.max_pool2d(cells.float()[None, None], 3, 1, 1)[0, 0] > 0
rows = [np.concatenate([fr[i] for i in [0, 4, 8, 12, 16]], 1), p.strip(x0)]
for gs in (1.0, 6.0):
    for t0 in (1000, 300):
        z = p.denoise(x0, zi, pe, t0, gs)
        print(gs, t0, "end dist to x0", round((z - x0).pow(2).mean().item(), 4),
              "frames1-4", round((z - x0)[:, 1:].pow(2).mean().item(), 4))
        if t0 == 1000:
            e = (z - x0)[:, 1:].pow(2).mean(dim=(0, 1, 2))
            print("  from noise: error in the shape cells %.4f, elsewhere %.4f" % (e[cells].mean(), e[~cells].mean()))
        rows.append(p.strip(z))
Image.fromarray(np.concatenate(rows, 0)).resize((96 * 5 * 2, 64 * len(rows) * 2), Image.NEAREST).save(sys.argv[2])

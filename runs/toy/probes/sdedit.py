"""Denoise a held-out scene from its true latent noised to t0 (T0S env, default 1000,700,500,300; GS = guidance):
if the shape breaks up even from low t0, the damage happens at low noise. Usage: python sdedit.py MODEL_DIR OUT.png"""
import os, sys

import numpy as np
from PIL import Image

from denoise import Probe

T0S = [int(a) for a in os.environ.get("T0S", "1000,700,500,300").split(",")]
GS = float(os.environ.get("GS", "6"))
p = Probe(sys.argv[1])
rows = []
for k in [0, 4]:
    sc, fr, x0, zi, pe = p.scene(k)
    rows += [p.strip(p.denoise(x0, zi, pe, t0, GS)) for t0 in T0S]
Image.fromarray(np.concatenate(rows, 0)).resize((96 * 5 * 2, 64 * len(rows) * 2), Image.NEAREST).save(sys.argv[2])

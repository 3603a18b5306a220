"""Fine-tune a model's VAE decoder (encoder frozen: latents, cache and transformer stay valid) on what
its transformer hands it: training scenes (never the held-out ones) encoded, noised to t0 in 200-500,
denoised with guidance 6, and decoded against the true clip; half of each batch is the true latent,
so reconstruction is kept. Each step decodes random 4x6-latent (32x48-pixel) crops, as stage 2 trains.
Usage: python decoder_on_samples.py MODEL OUT_VAE.pt SAMPLES STEPS"""
import sys, time

import numpy as np
import torch
import torch.nn.functional as F

from cogviz.toy.scenes import sample_scene
from cogviz.toy.train import EVAL_SEED_BASE, to_pixels
from denoise import Probe

torch.set_num_threads(2)
model, out, n, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
p = Probe(model)
rng = np.random.default_rng(2026)
pairs, t_start = [], time.time()
with torch.no_grad():
    for i in range(n):
        sc, fr, x0, zi, pe = p.encode(sample_scene(int(rng.integers(0, EVAL_SEED_BASE))))
        z = p.denoise(x0, zi, pe, int(rng.choice([200, 300, 400, 500])), 6.0, seed=i)
        x = to_pixels(fr[None])
        pairs.append((z.permute(0, 2, 1, 3, 4) / p.sf, x0.permute(0, 2, 1, 3, 4) / p.sf, x))
print(f"{n} samples in {time.time() - t_start:.0f} s", flush=True)
vae = p.vae
for q in vae.parameters():
    q.requires_grad_(False)
params = list(vae.decoder.parameters()) + (list(vae.post_quant_conv.parameters()) if vae.post_quant_conv is not None else [])
for q in params:
    q.requires_grad_(True)
opt = torch.optim.Adam(params, lr=1e-4)
vae.train()
for step in range(steps):
    for g in opt.param_groups:
        g["lr"] = 1e-4 * 0.5 * (1 + np.cos(np.pi * step / steps))
    zs, xs = [], []
    for j, k in enumerate(rng.integers(0, n, 4)):  # two denoised latents, two true ones
        y, x = int(rng.integers(0, 5)), int(rng.integers(0, 7))
        zs.append(pairs[k][0 if j < 2 else 1][..., y : y + 4, x : x + 6])
        xs.append(pairs[k][2][..., 8 * y : 8 * y + 32, 8 * x : 8 * x + 48])
    loss = F.mse_loss(vae.decode(torch.cat(zs)).sample, torch.cat(xs))
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    if step % 20 == 0:
        print(step, round(loss.item(), 4), round(time.time() - t_start), flush=True)
torch.save(vae.state_dict(), out)

"""How rough each VAE's latent is on held-out shapes-world clips (16 scenes), at unit std: the mean squared
difference between neighbouring latent cells (across, down, and between latent frames 1-4) as a share of
twice the variance (1.0 = no more alike than random cells), and the share of the latent's energy in the
8 of 16 channels that carry least of it; first, the std of the scaled latent (as the transformer sees it) on
these clips and of its moving part (frames 1-4 minus frame 0). Usage: python latent_smoothness.py"""
import json
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLCogVideoX

from cogviz.toy import components as C
from cogviz.toy.scenes import render_scene, sample_scene
from cogviz.toy.train import to_pixels

torch.set_num_threads(2)
vaes = {"shipped": AutoencoderKLCogVideoX.from_pretrained("cogviz/toy/weights/vae").eval()}
for run in ("runs/toy", "runs/toy-v2", "runs/toy-v3", "runs/toy-v4"):
    if not Path(f"{run}/cache.done").exists():
        print(f"{run}: no cache.done (its scaling factor), left out"); continue
    cfg = json.load(open(f"{run}/config.json"))
    v = C.make_vae(json.load(open(f"{run}/cache.done"))["scaling_factor"],
                   tuple(int(c) for c in cfg.get("vae_channels", "16,32,32,64").split(",")))
    v.load_state_dict(torch.load(f"{run}/vae_clips.pt")); vaes[run] = v.eval()
x = to_pixels(np.stack([render_scene(sample_scene(1_000_000_000 + 700_000 + s)) for s in range(16)]))
for name, v in vaes.items():
    with torch.no_grad():
        z = v.encode(x).latent_dist.mean  # (B, 16, 5, 8, 12)
    zs = z * v.config.scaling_factor
    print(f"{name:28s} scaled latent std {zs.std().item():.3f}, its moving part {(zs[:, :, 1:] - zs[:, :, :1]).std().item():.3f}")
    z = (z - z.mean()) / z.std()
    var = z.var().item()
    dx = (z[..., 1:] - z[..., :-1]).pow(2).mean().item() / (2 * var)
    dy = (z[..., 1:, :] - z[..., :-1, :]).pow(2).mean().item() / (2 * var)
    dt = (z[:, :, 2:] - z[:, :, 1:-1]).pow(2).mean().item() / (2 * var)
    e = z.pow(2).mean(dim=(0, 2, 3, 4)).sort().values
    print(f"{name:28s} across {dx:.3f}  down {dy:.3f}  frames {dt:.3f}  weakest 8 channels {e[:8].sum().item() / e.sum().item():.3f}")

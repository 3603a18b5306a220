"""How much of the motion the VAE latents carry (16 held-out scenes): mean squared latent difference between a scene
and the same scene moving the opposite way (latent frames 1-4), and the mean squared change of frames 1-4 from frame 0,
for the shipped VAE (cogviz/toy/weights), runs/toy's and runs/toy-v2's. Usage: python latent_motion.py"""
import sys, json, torch, numpy as np, dataclasses
from cogviz.toy import components as C
from cogviz.toy.scenes import sample_scene, render_scene
from cogviz.toy.train import to_pixels, OPPOSITE
from diffusers import AutoencoderKLCogVideoX
torch.set_num_threads(2)
old = AutoencoderKLCogVideoX.from_pretrained('cogviz/toy/weights/vae').eval()
cache = {'scaling_factor': json.load(open('runs/toy/cache.done'))['scaling_factor']}
import json
new = C.make_vae(cache['scaling_factor']); new.load_state_dict(torch.load('runs/toy/vae_clips.pt')); new.eval()
v2 = C.make_vae(json.load(open('runs/toy-v2/cache.done'))['scaling_factor'], (16,48,64,64)); v2.load_state_dict(torch.load('runs/toy-v2/vae_clips.pt')); v2.eval()
A, B = [], []
for s in range(16):
    sc = sample_scene(1_000_000_000 + 700_000 + s)
    sc2 = dataclasses.replace(sc, direction=OPPOSITE[sc.direction])
    A.append(render_scene(sc)); B.append(render_scene(sc2))
xa, xb = to_pixels(np.stack(A)), to_pixels(np.stack(B))
for name, v in [('old', old), ('new', new), ('v2', v2)]:
    with torch.no_grad():
        za = v.encode(xa).latent_dist.mean * v.config.scaling_factor
        zb = v.encode(xb).latent_dist.mean * v.config.scaling_factor
    d = (za - zb).pow(2)[:, :, 1:].mean().item()
    stat = (za[:, :, 1:] - za[:, :, :1]).pow(2).mean().item()
    print(name, 'sf %.3f' % v.config.scaling_factor, 'dir diff later frames %.4f' % d, 'motion energy %.4f' % stat, 'var %.4f' % za.var().item(), 'frame0 diff %.5f' % (za-zb).pow(2)[:, :, :1].mean().item())

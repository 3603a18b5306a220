"""One step's x0 estimate from z_t at t = 100, 300, 500, relative to the latent's variance (frames 1-4), on three
held-out scenes and, given the run's cache, three training clips; beside it the error of guessing
x0 = sqrt(alpha) z_t. Usage: python x0_error.py MODEL [CACHE.pt]"""
import sys

import torch

from cogviz.toy.scenes import prompt_for
from cogviz.toy.train import _sample
from denoise import Probe

p = Probe(sys.argv[1])
cache = torch.load(sys.argv[2]) if len(sys.argv) > 2 else None
acp = p.pipe.scheduler.alphas_cumprod


@torch.no_grad()
def err(x0, zi, prompt, t):
    a = acp[t].float()
    zt = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    e = p.pipe.encode_prompt([prompt], do_classifier_free_guidance=False, max_sequence_length=16, device="cpu")[0]
    v = p.tr(hidden_states=torch.cat([zt, zi], 2), encoder_hidden_states=e, timestep=torch.tensor([t]),
             image_rotary_emb=p.rot, return_dict=False)[0]
    var = x0[:, 1:].var()
    x0p = a.sqrt() * zt - (1 - a).sqrt() * v
    base = (a.sqrt() * zt - x0).pow(2)[:, 1:].mean()  # x0 guessed as sqrt(a) z_t
    return round(((x0p - x0).pow(2)[:, 1:].mean() / var).item(), 3), round((base / var).item(), 3)


for k in range(3):
    sc, fr, x0, zi, pe = p.scene(k)
    print("eval", k, [err(x0, zi, prompt_for(sc), t) for t in (100, 300, 500)])
if cache is not None:
    for i in [i for i, k in enumerate(cache["kinds"]) if k == "shapes"][100:103]:
        g = torch.Generator().manual_seed(1)
        x0 = _sample(cache["video"][i:i + 1], g).permute(0, 2, 1, 3, 4) * cache["scaling_factor"]
        zi = _sample(cache["image"][i:i + 1], g).permute(0, 2, 1, 3, 4) * cache["scaling_factor"]
        zi = torch.cat([zi, torch.zeros_like(x0[:, 1:])], 1)
        print("cache", i, [err(x0, zi, cache["prompts"][i], t) for t in (100, 300, 500)])

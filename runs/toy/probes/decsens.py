"""Decoder sensitivity: decode(z + eps * N(0,1) * latent std) vs decode(z), shape box PSNR, frames 1-16."""
import sys, numpy as np, torch
from diffusers import AutoencoderKLCogVideoX
from cogviz.toy.scenes import sample_scene, render_scene, DIRECTIONS
from cogviz.toy.train import EVAL_SEED_BASE, to_pixels
torch.set_num_threads(1)
for m in sys.argv[1:]:
    vae = AutoencoderKLCogVideoX.from_pretrained(m).eval()
    out = {}
    for eps in [0.0, 0.05, 0.1, 0.2]:
        res = []
        for s in range(8):
            sc = sample_scene(EVAL_SEED_BASE + s); fr = render_scene(sc)
            with torch.no_grad():
                z = vae.encode(to_pixels(fr[None])).latent_dist.mean
                z = z + eps * z.std() * torch.randn(z.shape, generator=torch.Generator().manual_seed(s))
                y = vae.decode(z).sample
            y = ((y[0].permute(1,2,3,0).clamp(-1,1)+1)*127.5).round().numpy()
            dy, dx = DIRECTIONS[sc.direction]; r = sc.radius + 4
            for f in range(1, 17):
                cy, cx = sc.start[0]+dy*sc.speed*f, sc.start[1]+dx*sc.speed*f
                y0,y1,x0,x1 = int(max(cy-r,0)), int(min(cy+r,64)), int(max(cx-r,0)), int(min(cx+r,96))
                mse = ((y[f,y0:y1,x0:x1]-fr[f,y0:y1,x0:x1].astype(np.float64))**2).mean()
                res.append(10*np.log10(255**2/mse))
        out[eps] = round(float(np.median(res)), 2)
    print(m, out)

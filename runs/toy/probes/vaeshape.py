"""VAE on moving shapes: PSNR inside a box around the shape (radius + 4 px), frames 1-16, 16 eval scenes."""
import sys, numpy as np, torch
from diffusers import AutoencoderKLCogVideoX
from cogviz.toy.scenes import sample_scene, render_scene, DIRECTIONS
from cogviz.toy.train import EVAL_SEED_BASE, to_pixels
torch.set_num_threads(1)
for m in sys.argv[1:]:
    vae = AutoencoderKLCogVideoX.from_pretrained(m).eval()
    res0, res = [], []
    for s in range(16):
        sc = sample_scene(EVAL_SEED_BASE + s); fr = render_scene(sc)
        with torch.no_grad():
            y = vae.decode(vae.encode(to_pixels(fr[None])).latent_dist.mean).sample
        y = ((y[0].permute(1,2,3,0).clamp(-1,1)+1)*127.5).round().numpy()
        dy, dx = DIRECTIONS[sc.direction]; r = sc.radius + 4
        for f in range(17):
            cy, cx = sc.start[0]+dy*sc.speed*f, sc.start[1]+dx*sc.speed*f
            y0,y1,x0,x1 = int(max(cy-r,0)), int(min(cy+r,64)), int(max(cx-r,0)), int(min(cx+r,96))
            mse = ((y[f,y0:y1,x0:x1]-fr[f,y0:y1,x0:x1].astype(np.float64))**2).mean()
            (res0 if f == 0 else res).append(10*np.log10(255**2/mse))
    print(m, 'shape box: frame0 %.2f dB, frames1-16 %.2f dB (median)' % (np.median(res0), np.median(res)))

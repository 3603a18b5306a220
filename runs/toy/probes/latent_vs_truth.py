"""Denoise one held-out scene (EVAL_SEED_BASE) from pure noise and from its true latent noised to
t0 = 300, at guidance 1 and 6; print how far each final latent is from the true one (mean squared,
latent at unit std) and save the truth, its VAE reconstruction and the four decoded results, frames
0, 4, 8, 12, 16 per row. From noise it also prints the error over latent frames 1-4 in the cells the
shape covers (widened by one cell) and elsewhere. Usage: python latent_vs_truth.py MODEL OUT.png"""
import sys, torch
import numpy as np
from cogviz.toy.evaluate import colour_mask
import cogviz
from diffusers import CogVideoXDDIMScheduler
from cogviz.toy.scenes import sample_scene, render_scene, prompt_for
from cogviz.toy.train import EVAL_SEED_BASE, to_pixels
torch.set_num_threads(1)
pipe = cogviz.load_pipeline(sys.argv[1], device='cpu'); vae, tr = pipe.vae, pipe.transformer
sch = CogVideoXDDIMScheduler.from_config(pipe.scheduler.config); sf = vae.config.scaling_factor
rot = pipe._prepare_rotary_positional_embeddings(64, 96, 5, "cpu")
sc = sample_scene(EVAL_SEED_BASE); fr = render_scene(sc); x = to_pixels(fr[None])
m = np.stack([colour_mask(f, sc.colour) for f in fr]).any(0)  # the 8x12 latent cells the shape covers
cells = torch.from_numpy(m.reshape(8, 8, 12, 8).any(axis=(1, 3)))
cells = torch.nn.functional.max_pool2d(cells.float()[None, None], 3, 1, 1)[0, 0] > 0
with torch.no_grad():
    x0 = vae.encode(x).latent_dist.mean.permute(0,2,1,3,4)*sf
    zi = vae.encode(x[:, :, :1]).latent_dist.mean.permute(0,2,1,3,4)*sf
zi = torch.cat([zi, torch.zeros_like(x0[:, 1:])], 1)
emb = pipe.encode_prompt([prompt_for(sc)], negative_prompt=[""], do_classifier_free_guidance=True, max_sequence_length=16, device='cpu')
pe = torch.cat([emb[1], emb[0]])
for GS in (1.0, 6.0):
  for t0 in (1000, 300):
    sch.set_timesteps(50); ts = [t for t in sch.timesteps if t < t0]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    z = sch.add_noise(x0, noise, torch.tensor([ts[0]])) if t0 < 1000 else noise
    d0 = ((z - x0).pow(2).mean()).item()
    with torch.no_grad():
      for t in ts:
        v = tr(hidden_states=torch.cat([torch.cat([z, zi], 2)]*2), encoder_hidden_states=pe, timestep=torch.tensor([t, t]), image_rotary_emb=rot, return_dict=False)[0]
        vu, vc = v.chunk(2); v = vu + GS*(vc - vu)
        z = sch.step(v, t, z).prev_sample
    print(GS, t0, 'start dist', round(d0, 3), 'end dist to x0', round((z - x0).pow(2).mean().item(), 4), 'frames1-4', round((z - x0)[:, 1:].pow(2).mean().item(), 4))
    if t0 == 1000:
        e = (z - x0)[:, 1:].pow(2).mean(dim=(0, 1, 2))
        print('  from noise: error in the shape cells %.4f, elsewhere %.4f' % (e[cells].mean(), e[~cells].mean()))
    outs = globals().setdefault('outs', [])
    outs.append(z.clone())
from PIL import Image
def dec(z):
    with torch.no_grad(): y = vae.decode(z.permute(0,2,1,3,4)/sf).sample
    y = ((y[0].permute(1,2,3,0).clamp(-1,1)+1)*127.5).round().byte().numpy()
    return np.concatenate([y[i] for i in [0,4,8,12,16]],1)
rows = [np.concatenate([render_scene(sc)[i] for i in [0,4,8,12,16]],1), dec(x0)] + [dec(o) for o in outs]
Image.fromarray(np.concatenate(rows,0)).resize((96*5*2, 64*len(rows)*2), Image.NEAREST).save(sys.argv[2])

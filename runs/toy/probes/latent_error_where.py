"""Where the final latent misses the true one, for held-out scene 0 from pure noise at guidance 1 and 6:
the mean squared error over the latent cells the shape covers (widened by one cell) and elsewhere.
Usage: python latent_error_where.py MODEL"""
import sys, torch
import cogviz
from diffusers import CogVideoXDDIMScheduler
from cogviz.toy.scenes import sample_scene, render_scene, prompt_for
from cogviz.toy.train import EVAL_SEED_BASE, to_pixels
torch.set_num_threads(1)
pipe = cogviz.load_pipeline(sys.argv[1], device='cpu'); vae, tr = pipe.vae, pipe.transformer
sch = CogVideoXDDIMScheduler.from_config(pipe.scheduler.config); sf = vae.config.scaling_factor
rot = pipe._prepare_rotary_positional_embeddings(64, 96, 5, "cpu")
sc = sample_scene(EVAL_SEED_BASE); fr = render_scene(sc); x = to_pixels(fr[None])
with torch.no_grad():
    x0 = vae.encode(x).latent_dist.mean.permute(0,2,1,3,4)*sf
    zi = vae.encode(x[:, :, :1]).latent_dist.mean.permute(0,2,1,3,4)*sf
zi = torch.cat([zi, torch.zeros_like(x0[:, 1:])], 1)
emb = pipe.encode_prompt([prompt_for(sc)], negative_prompt=[""], do_classifier_free_guidance=True, max_sequence_length=16, device='cpu')
pe = torch.cat([emb[1], emb[0]])
# cells (8x12 latent grid) the shape covers in any frame
import numpy as np
from cogviz.toy.evaluate import colour_mask
m = np.stack([colour_mask(f, sc.colour) for f in fr]).any(0)
cells = torch.from_numpy(m.reshape(8, 8, 12, 8).any(axis=(1, 3)))
# widen by one cell
cells = torch.nn.functional.max_pool2d(cells.float()[None, None], 3, 1, 1)[0, 0] > 0
print('shape cells', int(cells.sum()), 'of 96')
for GS in (1.0, 6.0):
    sch.set_timesteps(50)
    z = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
      for t in sch.timesteps:
        v = tr(hidden_states=torch.cat([torch.cat([z, zi], 2)]*2), encoder_hidden_states=pe, timestep=torch.tensor([t, t]), image_rotary_emb=rot, return_dict=False)[0]
        vu, vc = v.chunk(2); v = vu + GS*(vc - vu)
        z = sch.step(v, t, z).prev_sample
    e = (z - x0)[:, 1:].pow(2).mean(dim=(0, 1, 2))  # (8, 12)
    sig = x0[:, 1:].pow(2).mean(dim=(0, 1, 2))
    print(GS, 'error in shape cells %.4f (signal there %.3f), elsewhere %.4f' % (e[cells].mean(), sig[cells].mean(), e[~cells].mean()))

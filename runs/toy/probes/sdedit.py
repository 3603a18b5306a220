"""Denoise a held-out scene from its true latent noised to t0 (T0S env, default 1000,700,500,300; GS = guidance):
if the shape breaks up even from low t0, the damage happens at low noise. Usage: python sdedit.py MODEL_DIR OUT.png"""
import sys, numpy as np, torch
import cogviz
from PIL import Image
from diffusers import CogVideoXDDIMScheduler
from cogviz.toy.scenes import sample_scene, render_scene, prompt_for
from cogviz.toy.train import EVAL_SEED_BASE, to_pixels
torch.set_num_threads(1)
pipe = cogviz.load_pipeline(sys.argv[1], device='cpu')
vae, tr = pipe.vae, pipe.transformer
sch = CogVideoXDDIMScheduler.from_config(pipe.scheduler.config)
sf = vae.config.scaling_factor
rot = pipe._prepare_rotary_positional_embeddings(64, 96, 5, "cpu")
rows = []
import os; T0S=[int(a) for a in os.environ.get("T0S","1000,700,500,300").split(",")]; GS=float(os.environ.get("GS","6"))
for s in [0, 4]:
    sc = sample_scene(EVAL_SEED_BASE + s); fr = render_scene(sc)
    x = to_pixels(fr[None])
    with torch.no_grad():
        x0 = vae.encode(x).latent_dist.mean.permute(0,2,1,3,4) * sf
        zi = vae.encode(x[:, :, :1]).latent_dist.mean.permute(0,2,1,3,4) * sf
        zi = torch.cat([zi, torch.zeros_like(x0[:, 1:])], 1)
        emb = pipe.encode_prompt([prompt_for(sc)], negative_prompt=[""], do_classifier_free_guidance=True, max_sequence_length=16, device='cpu')
        pe = torch.cat([emb[1], emb[0]])
        for t0 in T0S:
            sch.set_timesteps(50)
            ts = [t for t in sch.timesteps if t < t0]
            g = torch.Generator().manual_seed(0)
            noise = torch.randn(x0.shape, generator=g)
            z = sch.add_noise(x0, noise, torch.tensor([ts[0]])) if t0 < 1000 else noise
            for t in ts:
                inp = torch.cat([torch.cat([z, zi], 2)] * 2)
                v = tr(hidden_states=inp, encoder_hidden_states=pe, timestep=torch.tensor([t, t]), image_rotary_emb=rot, return_dict=False)[0]
                vu, vc = v.chunk(2); v = vu + GS * (vc - vu)
                z = sch.step(v, t, z).prev_sample
            y = vae.decode(z.permute(0,2,1,3,4) / sf).sample
            y = ((y[0].permute(1,2,3,0).clamp(-1,1)+1)*127.5).round().byte().numpy()
            rows.append(np.concatenate([y[i] for i in [0,4,8,12,16]],1))
Image.fromarray(np.concatenate(rows,0)).resize((96*5*2, 64*8*2), Image.NEAREST).save(sys.argv[2])

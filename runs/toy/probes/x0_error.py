"""One step's x0 estimate from z_t at t = 100, 300, 500, relative to the latent's variance (frames 1-4), on three
held-out scenes and, given the run's cache, three training clips; beside it the error of guessing
x0 = sqrt(alpha) z_t. Usage: python x0_error.py MODEL [CACHE.pt]"""
import sys, torch, numpy as np
import cogviz
from cogviz.toy.scenes import sample_scene, render_scene, prompt_for
from cogviz.toy.train import EVAL_SEED_BASE, to_pixels, _sample
torch.set_num_threads(1)
pipe = cogviz.load_pipeline(sys.argv[1], device='cpu'); vae, tr = pipe.vae, pipe.transformer
sf = vae.config.scaling_factor
cache = torch.load(sys.argv[2]) if len(sys.argv) > 2 else None
rot = pipe._prepare_rotary_positional_embeddings(64, 96, 5, "cpu")
acp = pipe.scheduler.alphas_cumprod
def err(x0, zi, prompt, t):
    g = torch.Generator().manual_seed(0)
    a = acp[t].float(); n = torch.randn(x0.shape, generator=g)
    zt = a.sqrt()*x0 + (1-a).sqrt()*n
    e = pipe.encode_prompt([prompt], do_classifier_free_guidance=False, max_sequence_length=16, device='cpu')[0]
    with torch.no_grad():
        v = tr(hidden_states=torch.cat([zt, zi], 2), encoder_hidden_states=e, timestep=torch.tensor([t]), image_rotary_emb=rot, return_dict=False)[0]
    x0p = a.sqrt()*zt - (1-a).sqrt()*v
    base = (a.sqrt()*zt - x0).pow(2)[:, 1:].mean()  # x0 guessed as sqrt(a) z_t
    return round(((x0p-x0).pow(2)[:, 1:].mean()/x0[:, 1:].var()).item(), 3), round((base/x0[:, 1:].var()).item(), 3)
for s in range(3):
    sc = sample_scene(EVAL_SEED_BASE + s); x = to_pixels(render_scene(sc)[None])
    with torch.no_grad():
        x0 = vae.encode(x).latent_dist.mean.permute(0,2,1,3,4)*sf
        zi = vae.encode(x[:, :, :1]).latent_dist.mean.permute(0,2,1,3,4)*sf
    zi = torch.cat([zi, torch.zeros_like(x0[:, 1:])], 1)
    print('eval', s, [err(x0, zi, prompt_for(sc), t) for t in (100, 300, 500)])
if cache is not None:
    idx = [i for i, k in enumerate(cache['kinds']) if k == 'shapes'][100:103]
    for i in idx:
        g = torch.Generator().manual_seed(1)
        x0 = _sample(cache['video'][i:i+1], g).permute(0,2,1,3,4)*cache['scaling_factor']
        zi = _sample(cache['image'][i:i+1], g).permute(0,2,1,3,4)*cache['scaling_factor']
        zi = torch.cat([zi, torch.zeros_like(x0[:, 1:])], 1)
        print('cache', i, [err(x0, zi, cache['prompts'][i], t) for t in (100, 300, 500)])

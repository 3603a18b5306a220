"""Whether each model's VAE reconstruction of the true clip passes shape_stays_whole (first 12 held-out
scenes): the best any transformer could score on that figure. Usage: python vae_oracle.py MODEL..."""
import sys, torch, numpy as np
import cogviz
from cogviz.toy.evaluate import shape_stays_whole
from cogviz.toy.scenes import sample_scene, render_scene
from cogviz.toy.train import EVAL_SEED_BASE, to_pixels
torch.set_num_threads(2)
for m in sys.argv[1:]:
    vae = cogviz.load_pipeline(m, device='cpu').vae
    ok = []
    for s in range(12):
        sc = sample_scene(EVAL_SEED_BASE + s); fr = render_scene(sc)
        with torch.no_grad():
            y = vae.decode(vae.encode(to_pixels(fr[None])).latent_dist.mean).sample
        y = ((y[0].permute(1,2,3,0).clamp(-1,1)+1)*127.5).round().byte().numpy()
        ok.append(shape_stays_whole(y, fr, sc.colour))
    print(m, 'VAE reconstruction stays whole', np.mean(ok), ok)

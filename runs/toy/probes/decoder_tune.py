"""Fine-tune a run's VAE decoder only (encoder frozen: latents, cache and transformer stay valid),
reading latents with extra Gaussian noise. Usage: decft.py RUN_DIR OUT.pt STEPS NOISE"""
import json, sys, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
from cogviz.toy import components as C
from cogviz.toy.train import TrainConfig, vae_channels, _clip_batch, _image_batch, _noisier, _val_clips, vae_val, _val_photos
from cogviz.toy.natural import SourcePool
torch.set_num_threads(2)
run = Path(sys.argv[1]); out = sys.argv[2]; steps = int(sys.argv[3]); noise = float(sys.argv[4])
cfg = TrainConfig(**json.loads((run / 'config.json').read_text()))
vae = C.make_vae(block_out_channels=vae_channels(cfg)); vae.load_state_dict(torch.load(run / 'vae_clips.pt'))
for p in vae.encoder.parameters(): p.requires_grad_(False)
if vae.quant_conv is not None:
    for p in vae.quant_conv.parameters(): p.requires_grad_(False)
params = [p for p in vae.parameters() if p.requires_grad]
opt = torch.optim.Adam(params, lr=3e-4)
rng = np.random.default_rng([cfg.seed, 77]); torch.manual_seed(77)
pool = SourcePool(cfg.seed, procedural=cfg.procedural)
vae.train(); vae.encoder.eval()
t0 = time.time()
for step in range(steps):
    for g in opt.param_groups: g['lr'] = 3e-4 * 0.5 * (1 + np.cos(np.pi * step / steps))
    x = _clip_batch(rng, cfg.clip_batch, pool); xi = _image_batch(rng, cfg.clip_img_batch, pool)
    with torch.no_grad():
        z = vae.encode(x).latent_dist.sample(); zi = vae.encode(xi).latent_dist.sample()
    loss = F.mse_loss(vae.decode(_noisier(z, noise)).sample, x) + F.mse_loss(vae.decode(_noisier(zi, noise)).sample, xi)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    if step % 20 == 0: print(step, round(loss.item(), 4), round(time.time() - t0), flush=True)
torch.save(vae.state_dict(), out)
print(vae_val(vae, _val_clips(cfg), _val_photos()))

"""Time one decode + one frame-0 encode of a run's VAE against the shipped VAE, interleaved, one thread.
Usage: python vae_time.py RUN_DIR"""
import sys
import time, torch, json
from cogviz.toy import components as C
import cogviz
torch.set_num_threads(1)
old = cogviz.load_pipeline('toy', device='cpu').vae
new = C.make_vae(1.0, tuple(int(c) for c in json.load(open(sys.argv[1] + '/config.json'))['vae_channels'].split(','))); new.load_state_dict(torch.load(sys.argv[1] + '/vae_clips.pt')); new.eval()
z = torch.randn(1,16,5,8,12)
x = torch.randn(1,3,1,64,96)
res = {'old':[], 'new':[]}
for r in range(4):
    for k, v in (('old', old), ('new', new)):
        with torch.no_grad():
            t = time.perf_counter(); v.decode(z); v.encode(x); res[k].append(time.perf_counter()-t)
print({k: round(min(v),3) for k,v in res.items()}, 'ratio', round(min(res['new'])/min(res['old']),3))

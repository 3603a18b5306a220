"""Save MODEL with its VAE weights replaced by VAE.pt (same widths). Usage: python swap_vae.py MODEL VAE.pt OUT"""
import sys, shutil, torch, json
from pathlib import Path
import cogviz
src, vae_pt, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
pipe = cogviz.load_pipeline(src, device='cpu')
pipe.vae.load_state_dict(torch.load(vae_pt))
pipe.save_pretrained(out, safe_serialization=True)
shutil.copy(Path(src) / 'cogviz_toy.json', out / 'cogviz_toy.json')

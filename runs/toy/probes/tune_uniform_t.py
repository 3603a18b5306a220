"""800 (argv[1]) more steps of runs/toy's stage-5 transformer on the stage-5 mix with timesteps drawn uniformly
(tr_high_share 0), in /tmp/h1, which holds links to runs/toy's cache.pt (as cache.pt), transformer_tune.pt (as
transformer.pt) and vae_clips.pt, and copies of cache.done and config.json. Export it with peek.py /tmp/h1 DIR."""
import json, sys, dataclasses
from pathlib import Path
import torch
from cogviz.toy.train import TrainConfig, _train_transformer
cfg = TrainConfig(**json.load(open('runs/toy/config.json')))
cfg = dataclasses.replace(cfg, tune_steps=int(sys.argv[1]), tr_high_share=0.0, threads=1, val_every=200)
torch.set_num_threads(1)
_train_transformer(cfg, Path('/tmp/h1'), 'transformer_tune')

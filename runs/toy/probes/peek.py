"""Export a running training's current weights (vae_clips.pt and the last transformer checkpoint,
stage 5's when it has begun) as a pipeline folder, to look at before the run ends.
Usage: python peek.py RUN_DIR OUT_DIR"""
import json, sys
from pathlib import Path

import torch

from cogviz.toy import components as C
from cogviz.toy.train import TrainConfig, make_transformer, vae_channels

run, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = TrainConfig(**{**json.loads((run / "config.json").read_text())})
scaling = json.loads((run / "cache.done").read_text())["scaling_factor"]
vae = C.make_vae(scaling, vae_channels(cfg))
vae.load_state_dict(torch.load(run / "vae_clips.pt"))
tr = make_transformer(cfg)
for name in ("transformer_tune", "transformer"):
    if (run / f"{name}.pt").exists() and name == "transformer" and (run / "transformer_tune.ckpt").exists():
        continue
    if (run / f"{name}.pt").exists():
        tr.load_state_dict(torch.load(run / f"{name}.pt")); print(name, "finished"); break
    if (run / f"{name}.ckpt").exists():
        ck = torch.load(run / f"{name}.ckpt", weights_only=False)
        tr.load_state_dict(ck["model"]); print(name, "step", ck["step"]); break
pipe = C.make_pipeline(vae=vae, transformer=tr, text_encoder=C.make_text_encoder(cfg.seed),
                       scheduler=C.make_scheduler(cfg.snr_shift_scale))
out.mkdir(parents=True, exist_ok=True)
pipe.save_pretrained(out, safe_serialization=True)
(out / "cogviz_toy.json").write_text(json.dumps({"max_sequence_length": C.MAX_TEXT_LEN, "height": C.HEIGHT,
                                                 "width": C.WIDTH, "num_frames": C.NUM_FRAMES, "fps": 8}) + "\n")

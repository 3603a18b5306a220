"""What a wider or deeper transformer costs: parameters, file size (fp32 and fp16) and the time of
one 50-step CFG-6 video against the shipped pipeline, interleaved, 2 threads, the progress bar off.
Each size keeps the shipped VAE and text encoder and takes random weights (time does not depend on
the values). Usage: python transformer_width.py [REPEATS]"""
import statistics
import sys
import time

import torch

import cogviz
from cogviz.fit import fit_image
from cogviz.samples import load_sample
from cogviz.toy import components as C

SIZES = [(4, 32, 6), (4, 32, 8), (6, 32, 6), (4, 48, 6), (6, 32, 8), (8, 32, 6)]  # (heads, head dim, layers)
repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
torch.set_num_threads(2)
shipped = cogviz.load_pipeline("toy", device="cpu")
image = fit_image(load_sample("shapes"), "cogviz-toy").image


def video(pipe):
    t = time.perf_counter()
    pipe(image=image, prompt="a red circle moves right", num_frames=17, num_inference_steps=50, guidance_scale=6.0,
         height=64, width=96, max_sequence_length=C.MAX_TEXT_LEN, generator=torch.Generator().manual_seed(0),
         output_type="np")
    return time.perf_counter() - t


shipped.set_progress_bar_config(disable=True)
print("heads x dim, layers | params | MB fp32 | MB fp16 | time | ratio to the shipped video")
for heads, dim, layers in SIZES:
    tr = C.make_transformer(num_attention_heads=heads, attention_head_dim=dim, num_layers=layers).eval()
    pipe = C.make_pipeline(vae=shipped.vae, transformer=tr, text_encoder=shipped.text_encoder, scheduler=shipped.scheduler)
    pipe.set_progress_bar_config(disable=True)
    n = sum(p.numel() for p in tr.parameters())
    video(pipe), video(shipped)  # warm-up
    mine, theirs = [], []
    for _ in range(repeats):
        mine.append(video(pipe))
        theirs.append(video(shipped))
    a, b = statistics.median(mine), statistics.median(theirs)
    print(f"{heads} x {dim}, {layers} | {n / 1e6:.2f} M | {n * 4 / 2**20:.1f} | {n * 2 / 2**20:.1f} | {a:.2f} s | {a / b:.3f}")

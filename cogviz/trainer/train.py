"""Train the embedded toy CogVideoX I2V model from a seed: ``python -m cogviz.trainer``.

The data is a mix (``cogviz/toy/data.py``): shapes world with muted and full-range backgrounds,
shapes moving over still natural images, and camera moves (pans, zooms) over natural images —
training photographs from scikit-image, dead leaves, fractal noise and gradients
(``cogviz/toy/natural.py``), randomly windowed, flipped and colour-jittered.

The recipe is staged, because a video VAE trained naively on clips on a CPU crawls:

1. ``vae_images``  - single frames of the mix, random 32x48 crops (the VAE is fully
                     convolutional; its block widths are ``vae_channels``), posterior mode + MSE,
                     Adam with cosine decay. Teaches the frame-0 path fast.
2. ``vae_clips``   - 17-frame clips of the mix (32x48 crops, a ``vae_crop_motion`` share of them
                     over what moves; the kinds drawn with ``vae_clip_kind_weights`` when set)
                     *and* single frames, sampled posterior + a small KL term (and
                     ``vae_latent_noise``), so the decoder tolerates what the transformer will
                     hand it and the temporal (4x) path learns motion.
3. ``cache``       - the trained VAE encodes every training clip once: posterior mean / log-variance
                     of the video, and of frame 0 after the I2V recipe's small pixel noise
                     (sigma ~ exp(N(-3, 0.5))). The scaling factor is set to 1 / std of the latents.
4. ``transformer`` - the CogVideoX I2V objective on cached latents: z_img (frame 0, zero-padded over
                     later latent frames) concatenated on channels with the noisy latent, v-prediction
                     MSE, image-latent dropout 5 % and prompt dropout 10 % (so CFG works), a
                     transformer of ``tr_layers`` blocks. The kinds are drawn with
                     ``tr_kind_weights`` (by default shapes world alone, muted and full-range
                     backgrounds; ``tr_shapes_first`` steps of shapes alone can precede another mix),
                     and ``tr_high_share`` of each batch can be drawn at high noise (t >=
                     ``tr_high_from``). The noise schedule is the scheduler's with
                     ``snr_shift_scale`` 0.5 (exported with it): with the latent scaled to unit std
                     over photographs, a small moving shape is a weak signal, which the 5b schedule
                     drowned early and the denoised video turned into copies (the model card's
                     "What was tried" has the runs that showed it).
5. ``transformer_tune`` - a second cosine cycle (``tune_steps`` at peak ``tune_lr``) from stage 4's
                     weights, drawing ``tune_kind_weights``: the natural-image kinds (shapes over
                     photographs, camera moves) join shapes world on a transformer that already
                     keeps a moving shape whole. ``tune_steps=0`` skips it.
6. ``export``      - a standard diffusers pipeline folder (``save_pretrained``, safetensors).

A run can start from a trained pipeline folder instead (``init_from``, optionally with another
transformer's weights: ``init_transformer``): its VAE and transformer stand for stages 1, 2 and 4,
the cache keeps its scaling factor, and stage 5 tunes the transformer, e.g. on a mix that adds
the still camera (kind ``still``, "the camera holds still") through ``cache_kind_weights``.

The transformer's validation logs ``val_v_mse`` and ``val_prompt_gap``: the later-frame x0 error
with each validation prompt's direction flipped ("moves left" -> "moves right") over the error with
the right prompt. 1.0 means the direction word is ignored; the first shipped model (shapes world
only) scores about 9 on shapes scenes.

Every stage checkpoints into ``--run-dir`` (atomically) and resumes from its last checkpoint, so a
run can span interruptions; finished stages are skipped. Losses and validation PSNR (shapes
scenes and the validation photographs) go to ``RUN_DIR/log.jsonl`` and progress bars to the
terminal. Training clips use seeds below ``EVAL_SEED_BASE``; evaluation scenes
(``benchmarks/eval_toy.py``) start there, and its photographs come from packages training never
reads.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass
from difflib import get_close_matches
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..toy import components as C
from ..toy.data import training_clip, training_image
from ..toy.natural import SourcePool, heldout_views
from ..toy.scenes import render_scene, sample_scene

__all__ = ["TrainConfig", "EVAL_SEED_BASE", "train", "save_resume_point", "read_weights", "load_state", "export_atomically", "main"]

EVAL_SEED_BASE = 1_000_000_000  #: scene seeds >= this are never used in training
STAGES = ("vae_images", "vae_clips", "cache", "transformer", "transformer_tune", "export")
PACKAGE_WEIGHTS = Path(__file__).parents[1] / "toy" / "weights"  #: the shipped model (``make train`` exports here)
#: where a run exports by default: outside the package, so training never replaces the shipped model
#: unless asked (``--out cogviz/toy/weights``)
DEFAULT_OUT = Path(os.environ.get("COGVIZ_RUNS") or Path.home() / ".cache" / "cogviz" / "runs") / "toy-export"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    threads: int = 2
    # stage 1: images
    img_steps: int = 2000
    img_batch: int = 24
    img_lr: float = 2e-3
    # stage 2: clips (+ images)
    clip_steps: int = 1000
    clip_batch: int = 4
    clip_img_batch: int = 16
    clip_lr: float = 1e-3
    kl_weight: float = 1e-5
    vae_channels: str = ",".join(map(str, C.VAE_CHANNELS))  # channels of the VAE's 4 blocks (encoder and decoder)
    # stage 2 decodes latents with this much extra Gaussian noise (x the batch's latent std), so
    # the decoder learns to turn a slightly wrong latent (what the transformer hands it) into a
    # clean picture instead of fragments
    vae_latent_noise: float = 0.1
    # stage 2's clips: "" draws the mix's own shares (cogviz.toy.data.MIX); KIND:WEIGHT,... draws
    # the kinds with these weights, so that more of the clips the temporal path learns from hold a
    # moving shape (the shipped shapes-world VAE saw nothing else)
    vae_clip_kind_weights: str = ""
    # stage 2's crops: this share of the 32x48 clip crops is centred (with jitter) on a pixel that
    # changes over the clip, so a moving shape is inside it; the rest are placed at random, and a
    # random crop of a shapes-world clip often holds no motion at all
    vae_crop_motion: float = 0.0
    # stage 3: latent cache
    cache_clips: int = 6000
    # its clips: "" draws the mix's own shares (cogviz.toy.data.MIX, where "still" has none);
    # KIND:WEIGHT,... draws the kinds with these weights
    cache_kind_weights: str = ""
    # how far a camera move travels over a clip, as a share of the frame: "LOW,HIGH" (uniform)
    camera_travel: str = "0.15,0.30"
    # a trained pipeline folder to start from: its VAE stands for stages 1-2 (and its scaling
    # factor for the cache's), its transformer for stage 4; stage 5 tunes that transformer
    init_from: str = ""
    # with init_from: a transformer's weights (a .safetensors or torch state dict, e.g. a finished
    # tune stage's) to start from instead of the folder's own transformer
    init_transformer: str = ""
    # stage 4: transformer
    # its size (cogviz.toy.components.TRANSFORMER_SIZE): blocks and attention heads of 32 channels.
    # On this VAE 6 blocks split a moving shape into copies; 8 keep it whole
    tr_layers: int = C.TRANSFORMER_SIZE["num_layers"]
    tr_heads: int = C.TRANSFORMER_SIZE["num_attention_heads"]
    tr_steps: int = 13500
    tr_batch: int = 16
    tr_lr: float = 6e-4
    tr_warmup: int = 300
    image_dropout: float = 0.05
    prompt_dropout: float = 0.10
    # which clips the transformer sees: shapes world alone (its prompts' direction is the cleanest
    # signal there is; the natural-image kinds join in stage 5), or, with tr_shapes_first > 0,
    # that many steps of shapes world and then the cached mix drawn with these weights per kind
    tr_shapes_first: int = 0
    tr_kind_weights: str = "shapes:0.6,shapes_full:0.4"
    # timesteps: this share of each batch is drawn from t >= tr_high_from, the rest from all of
    # [0, 1000). Only where the noise hides the motion does the direction word carry information.
    tr_high_share: float = 0.0
    tr_high_from: int = 700
    # the scheduler's snr_shift_scale (trained with, and exported in the pipeline's scheduler):
    # the SNR at every timestep is divided by it. Below 1 the latent keeps more of its signal
    # under the noise: a latent scaled to unit std over photographs leaves a small moving shape
    # a weak signal, which the denoised video turns into copies.
    snr_shift_scale: float = 0.5
    # stage 5: a second cosine cycle from the stage-4 weights (0 steps: skipped), with its own mix
    tune_steps: int = 6000
    tune_lr: float = 3e-4
    tune_warmup: int = 100
    tune_kind_weights: str = "shapes:0.35,shapes_full:0.25,shapes_photo:0.15,camera:0.25"
    # data: procedural canvases (dead leaves, fractal noise, gradients) beside the photographs
    procedural: int = 256
    # bookkeeping
    ckpt_every: int = 100
    val_every: int = 200
    val_scenes: int = 8

    def __post_init__(self):  # a bad value fails here, before any stage runs
        C.check_vae_channels(vae_channels(self))
        if not self.vae_latent_noise >= 0:
            raise ValueError(f"vae_latent_noise must be >= 0 (0 adds none), got {self.vae_latent_noise}")
        parse_kind_weights(self.tr_kind_weights)
        if not 0 <= self.vae_crop_motion <= 1:
            raise ValueError(f"vae_crop_motion is a share of the crops, from 0 to 1, got {self.vae_crop_motion}")
        if self.vae_clip_kind_weights:
            parse_kind_weights(self.vae_clip_kind_weights, "vae_clip_kind_weights")
        parse_kind_weights(self.tune_kind_weights, "tune_kind_weights")
        if self.cache_kind_weights:
            parse_kind_weights(self.cache_kind_weights, "cache_kind_weights")
        camera_travel(self)
        if self.init_transformer and not (self.init_from and Path(self.init_transformer).is_file()):
            raise ValueError(f"init_transformer {self.init_transformer!r}: needs init_from and an existing weights file")
        if self.init_from and not (Path(self.init_from) / "model_index.json").exists():
            raise ValueError(f"init_from {self.init_from!r} is not a pipeline folder (no model_index.json there)")
        if self.tune_steps < 0:
            raise ValueError(f"tune_steps must be >= 0 (0 skips the stage), got {self.tune_steps}")
        _check_timestep_draw(self.tr_high_share, self.tr_high_from)
        C.make_scheduler(self.snr_shift_scale)  # raises on a value <= 0
        if self.tr_layers < 1 or self.tr_heads < 1:
            raise ValueError(f"tr_layers and tr_heads must be >= 1, got {self.tr_layers} and {self.tr_heads}")


# --------------------------------------------------------------------------------------- helpers
def vae_channels(cfg: TrainConfig) -> tuple[int, ...]:
    """``cfg.vae_channels`` (``"16,32,32,64"``) as the VAE's ``block_out_channels``."""
    try:
        return tuple(int(c) for c in cfg.vae_channels.split(","))
    except ValueError:
        raise ValueError(f"vae_channels {cfg.vae_channels!r} is not 4 comma-separated integers "
                         "(e.g. 16,32,32,64)") from None


def camera_travel(cfg: TrainConfig) -> tuple[float, float]:
    """``cfg.camera_travel`` (``"0.15,0.30"``) as the range a camera move's travel is drawn from."""
    try:
        lo, hi = (float(v) for v in cfg.camera_travel.split(","))
    except ValueError:
        raise ValueError(f"camera_travel {cfg.camera_travel!r} is not LOW,HIGH (e.g. 0.15,0.30)") from None
    if not 0 <= lo <= hi <= 0.5:
        raise ValueError(f"camera_travel {cfg.camera_travel!r}: need 0 <= LOW <= HIGH <= 0.5 (a share of the frame)")
    return lo, hi


def make_transformer(cfg: TrainConfig):
    """The transformer at the run's size (``tr_layers``, ``tr_heads``)."""
    return C.make_transformer(num_layers=cfg.tr_layers, num_attention_heads=cfg.tr_heads)


def _log(run_dir: Path, **record) -> None:
    record["time"] = time.time()
    with open(run_dir / "log.jsonl", "a+b") as f:
        # a line cut short by a crash stays a line of its own, never glued to the next record
        cut = False
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        f.write((("\n" if cut else "") + json.dumps(record) + "\n").encode())


def _save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temporary file, flushed to disk, then renamed over ``path``; the checkpoint
    it replaces stays as ``*.prev`` (a crash between the two leaves one whole checkpoint)."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:  # on disk before the rename makes it the checkpoint
        os.fsync(f.fileno())
    if path.exists():
        os.replace(path, path.with_suffix(path.suffix + ".prev"))
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_state(path) -> dict:
    """A checkpoint or state dict that this trainer wrote, read with torch's weights-only
    unpickler: tensors, numbers, strings, lists and dicts load; a file whose pickle would import
    or call anything is refused (loading someone's checkpoint never runs their code)."""
    import pickle

    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0][:200]
        raise ValueError(f"{path}: refused, its pickle holds more than weights ({first}); "
                         "cogviz reads .safetensors files and its own weights-only checkpoints") from None


def _cosine_lr(step: int, total: int, peak: float, warmup: int = 50, floor: float = 0.03) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(total - warmup, 1)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


def to_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 (..., F, H, W, 3) -> float (..., 3, F, H, W) in [-1, 1], the VAE's input layout."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div(127.5).sub(1.0)
    return x.movedim(-1, -4)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between two tensors in [-1, 1] (clamped): :func:`cogviz.metrics.psnr`."""
    from ..metrics import psnr as metrics_psnr

    return metrics_psnr(a.clamp(-1, 1), b.clamp(-1, 1), data_range=2.0)


def _train_scene_seeds(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, EVAL_SEED_BASE, size=n)


def _crop(frames: np.ndarray, rng: np.random.Generator, h: int = 32, w: int = 48) -> np.ndarray:
    # frames (F, H, W, 3): the same random crop for every frame
    y = rng.integers(0, frames.shape[1] - h + 1)
    x = rng.integers(0, frames.shape[2] - w + 1)
    return frames[:, y : y + h, x : x + w]


def _motion_crop(frames: np.ndarray, rng: np.random.Generator, h: int = 32, w: int = 48) -> np.ndarray:
    """The same crop for every frame, centred (jittered by up to a quarter of its size) on a random
    pixel that changes over the clip; a random crop when no pixel changes."""
    moving = np.abs(frames.astype(np.int16) - frames[:1].astype(np.int16)).max(axis=(0, 3)) > 8
    ys, xs = np.nonzero(moving)
    if len(ys) == 0:
        return _crop(frames, rng, h, w)
    i = rng.integers(len(ys))
    y = int(np.clip(ys[i] - h // 2 + rng.integers(-(h // 4), h // 4 + 1), 0, frames.shape[1] - h))
    x = int(np.clip(xs[i] - w // 2 + rng.integers(-(w // 4), w // 4 + 1), 0, frames.shape[2] - w))
    return frames[:, y : y + h, x : x + w]


def _image_batch(rng, n, pool):
    out = [_crop(training_image(rng, pool)[None], rng) for _ in range(n)]
    return to_pixels(np.stack(out))  # (B, 3, 1, 32, 48)


def _clip_batch(rng, n, pool, kind_weights: dict[str, float] | None = None, motion_share: float = 0.0):
    """``n`` 32x48 crops of training clips: of the mix's own shares, or of kinds drawn with
    ``kind_weights`` (``vae_clip_kind_weights``); a ``motion_share`` of them over what moves
    (``vae_crop_motion``), the rest at random."""
    seeds = _train_scene_seeds(rng, n)
    if kind_weights:
        kinds = _draw_kinds(rng, kind_weights, n)
    else:
        kinds = [None] * n  # training_clip draws the kind from the clip's seed
    # no draw at all when motion_share is 0, so that the old recipe's random stream is unchanged
    on_motion = rng.random(n) < motion_share if motion_share else np.zeros(n, bool)
    clips = [(_motion_crop if m else _crop)(training_clip(int(s), pool, kind=k).frames, rng)
             for s, k, m in zip(seeds, kinds, on_motion)]
    return to_pixels(np.stack(clips))  # (B, 3, 17, 32, 48)


def _val_clips(cfg: TrainConfig) -> torch.Tensor:
    # Validation uses scenes from the evaluation range's far end: never trained on.
    seeds = [EVAL_SEED_BASE + 500_000 + i for i in range(cfg.val_scenes)]
    return to_pixels(np.stack([render_scene(sample_scene(s)) for s in seeds]))  # (V, 3, 17, 64, 96)


def _val_photos() -> torch.Tensor:
    # The validation photographs (never trained on; not the evaluation's held-out ones either).
    return to_pixels(np.stack([v for _, v in heldout_views(split="val")])[:, None])  # (V, 3, 1, 64, 96)


@torch.no_grad()
def vae_val(vae, clips: torch.Tensor, photos: torch.Tensor | None = None) -> dict:
    vae.eval()
    img = clips[:, :, :1]
    rec_img = vae.decode(vae.encode(img).latent_dist.mode()).sample
    rec_clip = torch.cat([vae.decode(vae.encode(c[None]).latent_dist.mode()).sample for c in clips[:4]])
    out = {
        "val_image_psnr": psnr(rec_img, img),
        "val_clip_psnr": psnr(rec_clip, clips[:4]),
        "val_clip_frame0_psnr": psnr(rec_clip[:, :, :1], clips[:4, :, :1]),
    }
    if photos is not None:
        rec = vae.decode(vae.encode(photos).latent_dist.mode()).sample.clamp(-1, 1)
        per = [psnr(r, p) for r, p in zip(rec, photos)]
        out["val_photo_psnr"] = float(np.median(per))
    vae.train()
    return out


class _Stage:
    """Checkpoint/resume bookkeeping for one stage."""

    def __init__(self, run_dir: Path, name: str):
        self.run_dir, self.name = run_dir, name
        self.ckpt = run_dir / f"{name}.ckpt"
        self.done = run_dir / f"{name}.done"

    def is_done(self) -> bool:
        return self.done.exists()

    def load(self):
        """The stage's checkpoint, else a resume point's (``{name}.safetensors`` + ``{name}.json``:
        weights, step and time, no pickle), else None."""
        prev = self.ckpt.with_suffix(self.ckpt.suffix + ".prev")
        for ckpt in (self.ckpt, prev):
            if ckpt.exists():
                try:
                    return load_state(ckpt)
                except (RuntimeError, EOFError, OSError) as e:  # a checkpoint a crash cut short: the one before
                    if ckpt == prev or not prev.exists():
                        raise ValueError(f"{ckpt}: unreadable checkpoint ({e}); delete it to start the stage again") from None
        weights, info = self.run_dir / f"{self.name}.safetensors", self.run_dir / f"{self.name}.json"
        if weights.exists() and info.exists():
            meta = json.loads(info.read_text())
            return {"step": int(meta["step"]), "elapsed": float(meta.get("elapsed", 0.0)),
                    "model": read_weights(weights)}
        return None

    def save(self, state) -> None:
        _save_atomic(state, self.ckpt)

    def finish(self, **info) -> None:
        _write_atomic(self.done, json.dumps(info))
        _log(self.run_dir, stage=self.name, event="done", **info)


def _elapsed(state, start):
    return state.get("elapsed", 0.0) + (time.time() - start)


# ---------------------------------------------------------------------------------------- stages
def _noisier(z: torch.Tensor, scale: float) -> torch.Tensor:
    """``z`` plus Gaussian noise of ``scale`` x its (detached) std; ``scale=0`` returns ``z``."""
    return z + scale * z.detach().std() * torch.randn_like(z) if scale else z


def _train_vae(cfg, run_dir, stage_name, steps, lr, clips_too: bool):
    st = _Stage(run_dir, stage_name)
    vae = C.make_vae(block_out_channels=vae_channels(cfg))
    if stage_name == "vae_clips":
        vae.load_state_dict(load_state(run_dir / "vae_images.pt"))
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    state = st.load() or {"step": 0, "elapsed": 0.0}
    if "model" in state:
        vae.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
    rng = np.random.default_rng([cfg.seed, STAGES.index(stage_name), state["step"]])
    torch.manual_seed(cfg.seed * 1000 + state["step"])
    val, photos = _val_clips(cfg), _val_photos()
    pool = SourcePool(cfg.seed, procedural=cfg.procedural)
    clip_kinds = (parse_kind_weights(cfg.vae_clip_kind_weights, "vae_clip_kind_weights")
                  if cfg.vae_clip_kind_weights else None)
    start = time.time()
    vae.train()
    bar = tqdm(range(state["step"], steps), initial=state["step"], total=steps, desc=stage_name)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = _cosine_lr(step, steps, lr)
        loss_parts = {}
        if clips_too:
            x = _clip_batch(rng, cfg.clip_batch, pool, clip_kinds, cfg.vae_crop_motion)
            post = vae.encode(x).latent_dist
            rec = vae.decode(_noisier(post.sample(), cfg.vae_latent_noise)).sample
            kl = 0.5 * (post.mean.pow(2) + post.var - 1.0 - post.logvar).mean()
            xi = _image_batch(rng, cfg.clip_img_batch, pool)
            posti = vae.encode(xi).latent_dist
            reci = vae.decode(_noisier(posti.sample(), cfg.vae_latent_noise)).sample
            loss_parts["clip_mse"] = F.mse_loss(rec, x)
            loss_parts["img_mse"] = F.mse_loss(reci, xi)
            loss_parts["kl"] = cfg.kl_weight * kl
        else:
            x = _image_batch(rng, cfg.img_batch, pool)
            rec = vae.decode(vae.encode(x).latent_dist.mode()).sample
            loss_parts["img_mse"] = F.mse_loss(rec, x)
        loss = sum(loss_parts.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        rec_log = {k: round(v.item(), 6) for k, v in loss_parts.items()}
        if (step + 1) % cfg.val_every == 0 or step + 1 == steps:
            rec_log.update(vae_val(vae, val, photos))
            bar.write(f"{stage_name} step {step + 1}: {rec_log}")
        if (step + 1) % 10 == 0 or step + 1 == steps:
            _log(run_dir, stage=stage_name, step=step + 1, lr=opt.param_groups[0]["lr"], **rec_log)
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == steps:
            st.save({"step": step + 1, "model": vae.state_dict(), "opt": opt.state_dict(),
                     "elapsed": _elapsed(state, start)})
    final = vae_val(vae, val, photos)
    torch.save(vae.state_dict(), run_dir / f"{stage_name}.pt")
    st.finish(seconds=round(_elapsed(state, start), 1), **final)


@torch.no_grad()
def _cache(cfg, run_dir):
    st = _Stage(run_dir, "cache")
    vae = C.make_vae(block_out_channels=vae_channels(cfg))
    vae.load_state_dict(load_state(run_dir / "vae_clips.pt"))
    vae.eval()
    state = st.load() or {"done": 0, "elapsed": 0.0, "video": [], "image": [], "prompts": [], "kinds": []}
    rng = np.random.default_rng([cfg.seed, STAGES.index("cache")])
    seeds = _train_scene_seeds(rng, cfg.cache_clips)
    kinds = _cache_kinds(cfg)
    pool = SourcePool(cfg.seed, procedural=cfg.procedural)
    travel = camera_travel(cfg)
    noise_rng = np.random.default_rng([cfg.seed, 99])
    sigmas = np.exp(noise_rng.normal(-3.0, 0.5, size=cfg.cache_clips))  # I2V recipe: first-frame noise
    start = time.time()
    batch = 8
    bar = tqdm(range(state["done"], cfg.cache_clips, batch), initial=state["done"] // batch,
               total=math.ceil(cfg.cache_clips / batch), desc="cache")
    for i in bar:
        idx = range(i, min(i + batch, cfg.cache_clips))
        clips = [training_clip(int(seeds[j]), pool, kind=kinds[j], travel=travel) for j in idx]
        x = to_pixels(np.stack([c.frames for c in clips]))  # (b, 3, 17, 64, 96)
        pv = vae.encode(x).latent_dist
        img = x[:, :, :1]
        img = img + torch.from_numpy(sigmas[list(idx)]).float().view(-1, 1, 1, 1, 1) * torch.randn_like(img)
        pi = vae.encode(img).latent_dist
        state["video"].append(torch.cat([pv.mean, pv.logvar], 1).half())  # (b, 32, 5, 8, 12)
        state["image"].append(torch.cat([pi.mean, pi.logvar], 1).half())  # (b, 32, 1, 8, 12)
        state["prompts"].extend(c.prompt for c in clips)
        state["kinds"].extend(c.kind for c in clips)
        state["done"] = idx[-1] + 1
        if (i // batch) % 25 == 0:
            st.save({**state, "elapsed": _elapsed(state, start)})
    video = torch.cat(state["video"]).float()
    mean = video[:, :16]
    std = float(mean.std())  # the posterior std is small next to this; scale the means to unit std
    # a run from a trained pipeline keeps the scaling its transformer was trained with
    scaling = _init_scaling(cfg) if cfg.init_from else 1.0 / std
    torch.save({"video": torch.cat(state["video"]), "image": torch.cat(state["image"]),
                "prompts": state["prompts"], "kinds": state["kinds"], "scaling_factor": scaling},
               run_dir / "cache.pt")
    st.save({**state, "elapsed": _elapsed(state, start)})
    st.finish(seconds=round(_elapsed(state, start), 1), scaling_factor=scaling, clips=cfg.cache_clips,
              latent_std=std, mean_posterior_std=float(torch.exp(0.5 * video[:, 16:]).mean()))


def _cache_kinds(cfg) -> list[str | None]:
    """Each cached clip's kind: ``None`` (drawn by the clip's seed from the mix) unless
    ``cache_kind_weights`` is set; then drawn with those weights from a stream of its own."""
    if not cfg.cache_kind_weights:
        return [None] * cfg.cache_clips
    rng = np.random.default_rng([cfg.seed, STAGES.index("cache"), 1])
    return _draw_kinds(rng, parse_kind_weights(cfg.cache_kind_weights, "cache_kind_weights"), cfg.cache_clips)


def _draw_kinds(rng: np.random.Generator, weights: dict[str, float], n: int) -> list[str]:
    """``n`` clip kinds drawn with ``weights`` (``parse_kind_weights``' result)."""
    p = np.array(list(weights.values()), dtype=float)
    return [str(k) for k in rng.choice(list(weights), size=n, p=p / p.sum())]


def read_weights(path: str) -> dict:
    """A transformer's weights from a ``.safetensors`` file, a state dict or a stage checkpoint."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    state = load_state(path)
    return state.get("model", state)  # a stage checkpoint or a state dict


def _init_scaling(cfg) -> float:
    return float(json.loads((Path(cfg.init_from) / "vae" / "config.json").read_text())["scaling_factor"])


def _adopt_init(cfg, run_dir: Path) -> None:
    """Stages 1, 2 and 4 of a run that starts from the pipeline folder ``init_from``: its VAE
    and transformer become those stages' results (the transformer's size must match the run's)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel

    src = Path(cfg.init_from)
    parts = {"vae_clips": AutoencoderKLCogVideoX.from_pretrained(src / "vae"),
             "transformer": CogVideoXTransformer3DModel.from_pretrained(src / "transformer")}
    size = {"num_layers": cfg.tr_layers, "num_attention_heads": cfg.tr_heads}
    theirs = {k: parts["transformer"].config[k] for k in size}
    if theirs != size:
        raise ValueError(f"init_from {src}: its transformer is {theirs}, the run's tr_layers/tr_heads {size}")
    if cfg.init_transformer:
        parts["transformer"].load_state_dict(read_weights(cfg.init_transformer))
    for name in ("vae_images", "vae_clips", "transformer"):
        stage = _Stage(run_dir, name)
        if not stage.is_done():
            if name in parts:
                torch.save(parts[name].state_dict(), run_dir / f"{name}.pt")
            stage.finish(seconds=0.0, init_from=str(src))


def _sample(params: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    mean, logvar = params.float().chunk(2, dim=1)
    return mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * torch.randn(mean.shape, generator=gen)


SHAPES_KINDS = ("shapes", "shapes_full")


def parse_kind_weights(text: str, name: str = "tr_kind_weights") -> dict[str, float]:
    """``"shapes:0.3,camera:0.7"`` -> ``{"shapes": 0.3, "camera": 0.7}``; kinds are the mix's
    (``cogviz.toy.data.MIX``), weights non-negative with a positive sum."""
    from ..toy.data import MIX

    out = {}
    for part in filter(None, (x.strip() for x in text.split(","))):
        kind, sep, value = part.partition(":")
        if not sep or kind.strip() not in MIX:
            raise ValueError(f"{name}: {part!r} is not KIND:WEIGHT with KIND one of {', '.join(MIX)}")
        try:
            out[kind.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{name}: weight {value!r} of {kind.strip()!r} is not a number") from None
        if out[kind.strip()] < 0:
            raise ValueError(f"{name}: weight of {kind.strip()!r} is negative ({value})")
    if not sum(out.values()) > 0:
        raise ValueError(f"{name}: {text!r} gives no kind a positive weight")
    return out


def clip_probabilities(kinds: list[str], weights: dict[str, float], first: int = 0) -> torch.Tensor:
    """Per-clip drawing probabilities: each kind gets its weight, shared evenly by its clips
    (clips before ``first``, the validation clips, get none). Kinds without clips drop out and
    the rest are renormalized."""
    counts = Counter(kinds[first:])
    present = {k: w for k, w in weights.items() if counts[k]}
    total = sum(present.values())
    if not total > 0:
        raise ValueError(f"no training clip is of a kind weighted in {weights}")
    return torch.tensor([0.0 if i < first else present.get(k, 0.0) / total / counts[k]
                         for i, k in enumerate(kinds)], dtype=torch.float64)


#: The word a prompt's motion flips to: "moves left" <-> "moves right", "zooms in" <-> "zooms out".
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up", "in": "out", "out": "in"}


def opposite_prompt(prompt: str) -> str:
    """``prompt`` with its last word (the direction) flipped: the control for :func:`prompt_gap`."""
    *head, last = prompt.split()
    return " ".join(head + [OPPOSITE[last]])


def prompt_gap(error_right: torch.Tensor, error_opposite: torch.Tensor) -> float:
    """How much the prompt's direction word helps: later-frame x0 error with the opposite
    direction over the error with the right one (1.0 = the model ignores the direction)."""
    return float(error_opposite.mean() / error_right.mean())


def _check_timestep_draw(high_share: float, high_from: int, total: int = 1000) -> None:
    if not 0.0 <= high_share <= 1.0:
        raise ValueError(f"tr_high_share must lie in [0, 1], got {high_share}")
    if not 0 <= high_from < total:
        raise ValueError(f"tr_high_from must lie in [0, {total}), got {high_from}")


def draw_timesteps(b: int, gen: torch.Generator, total: int = 1000, high_share: float = 0.0,
                   high_from: int = 700) -> torch.Tensor:
    """``b`` training timesteps: uniform over ``[0, total)``, except that a ``high_share`` of them
    (rounded down) is uniform over ``[high_from, total)``, the high-noise end where z_t no longer
    shows where things moved and only the prompt can tell."""
    _check_timestep_draw(high_share, high_from, total)
    k = int(b * high_share)
    t = torch.randint(0, total, (b,), generator=gen)
    t[:k] = torch.randint(high_from, total, (k,), generator=gen)
    return t


class _Objective:
    """Stage 4/5's v-prediction loss over the latent cache, and its validation figures."""

    def __init__(self, cfg, pipe, cache, n_val: int):
        self.cfg, self.tr, self.cache, self.n_val = cfg, pipe.transformer, cache, n_val
        self.scaling = cache["scaling_factor"]
        self.acp = pipe.scheduler.alphas_cumprod
        self.num_train_timesteps = pipe.scheduler.config.num_train_timesteps
        prompts = sorted(set(cache["prompts"]))
        with torch.no_grad():  # frozen text encoder: embed every prompt once, plus the empty prompt
            self.emb = pipe.encode_prompt(prompts + [""], do_classifier_free_guidance=False,
                                          max_sequence_length=C.MAX_TEXT_LEN, device="cpu")[0]
            # the validation clips' prompts with the direction flipped
            # (only the validation clips whose prompt names a direction: "holds still" has none)
            self.gap_clips = torch.tensor([i for i, p in enumerate(cache["prompts"][:n_val])
                                           if p.split()[-1] in OPPOSITE])
            self.emb_opposite = pipe.encode_prompt(
                [opposite_prompt(cache["prompts"][i]) for i in self.gap_clips.tolist()],
                do_classifier_free_guidance=False, max_sequence_length=C.MAX_TEXT_LEN,
                device="cpu")[0] if len(self.gap_clips) else None
        self.prompt_index = torch.tensor([prompts.index(p) for p in cache["prompts"]])
        self.empty = len(prompts)
        self.rot = pipe._prepare_rotary_positional_embeddings(C.HEIGHT, C.WIDTH, 5, "cpu")

    def latents(self, idx, g):
        """Clean video latents and the image latent, zero-padded over later latent frames."""
        x0 = _sample(self.cache["video"][idx], g).permute(0, 2, 1, 3, 4) * self.scaling  # (B, F=5, 16, 8, 12)
        z_img = _sample(self.cache["image"][idx], g).permute(0, 2, 1, 3, 4) * self.scaling  # (B, 1, 16, 8, 12)
        return x0, torch.cat([z_img, torch.zeros_like(x0[:, 1:])], dim=1)

    def later_frame_error(self, idx, g, encoder_hidden_states, t=950):
        """x0 error over latent frames 1-4 at a high noise level, per clip."""
        x0, z_img = self.latents(idx, g)
        a = self.acp[torch.full((len(idx),), t)].view(-1, 1, 1, 1, 1).float()
        z_t = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(x0.shape, generator=g)
        v = self.tr(hidden_states=torch.cat([z_t, z_img], dim=2), encoder_hidden_states=encoder_hidden_states,
                    timestep=torch.full((len(idx),), t), image_rotary_emb=self.rot, return_dict=False)[0]
        return (a.sqrt() * z_t - (1 - a).sqrt() * v - x0).pow(2)[:, 1:].mean(dim=(1, 2, 3, 4))

    def loss(self, idx, g, train=True):
        cfg = self.cfg
        x0, z_img = self.latents(idx, g)
        b = x0.shape[0]
        pidx = self.prompt_index[idx].clone()
        if train:
            drop_img = torch.rand(b, generator=g) < cfg.image_dropout
            z_img[drop_img] = 0
            pidx[torch.rand(b, generator=g) < cfg.prompt_dropout] = self.empty
        t = draw_timesteps(b, g, self.num_train_timesteps,  # validation: uniform t
                           cfg.tr_high_share if train else 0.0, cfg.tr_high_from)
        noise = torch.randn(x0.shape, generator=g)
        a = self.acp[t].view(b, 1, 1, 1, 1).float()
        z_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        v = a.sqrt() * noise - (1 - a).sqrt() * x0
        model_input = torch.cat([z_t, z_img], dim=2)  # (B, 5, 32, 8, 12): the I2V concatenation
        pred = self.tr(hidden_states=model_input, encoder_hidden_states=self.emb[pidx], timestep=t,
                       image_rotary_emb=self.rot, return_dict=False)[0]
        return F.mse_loss(pred, v)

    @torch.no_grad()
    def validate(self) -> dict:
        n_val = self.n_val
        vg = torch.Generator().manual_seed(1234)
        rec = {"val_v_mse": round(float(np.mean([self.loss(torch.arange(k, min(k + 16, n_val)), vg, False).item()
                                                 for k in range(0, n_val, 16)])), 6)}
        # Does the direction word matter? (1.0 = ignored; the model then cannot follow prompts.)
        vi = self.gap_clips
        if not len(vi):  # no validation clip names a direction: no gap to measure
            return rec
        right = self.later_frame_error(vi, torch.Generator().manual_seed(99), self.emb[self.prompt_index[vi]])
        wrong = self.later_frame_error(vi, torch.Generator().manual_seed(99), self.emb_opposite)
        rec["val_prompt_gap"] = round(prompt_gap(right, wrong), 4)
        return rec


def _resumed_optimizer(tr, state: dict, peak: float):
    """AdamW for the transformer, resumed from a stage checkpoint ``state``. A checkpoint without
    the optimizer's moments (a resume point: :func:`save_resume_point`) loads the weights alone and
    returns the step from which the learning rate warms up again (moments start from zero);
    otherwise that step lies in the past (no extra warm-up)."""
    opt = torch.optim.AdamW(tr.parameters(), lr=peak, weight_decay=0.01)
    if "model" in state:
        tr.load_state_dict(state["model"])
        if "opt" in state:
            opt.load_state_dict(state["opt"])
        else:
            return opt, state["step"]
    return opt, -10**9


def save_resume_point(run_dir: Path, dest: Path, stage: str = "transformer_tune") -> Path:
    """The smallest state from which a run's transformer stage goes on elsewhere: the run's
    ``config.json`` and the stage checkpoint's weights (``{stage}.safetensors``) with its step and
    time (``{stage}.json``), without the optimizer's moments (a third of the size;
    :func:`_resumed_optimizer` warms them up again). No pickle: a resume point from someone else
    loads as tensors and JSON, never as code. Copy them into
    a fresh ``--run-dir`` and run the same command: the earlier stages are made again from the
    config (the cache in minutes), the stage goes on from the saved step."""
    run_dir, dest = Path(run_dir), Path(dest)
    state = _Stage(run_dir, stage).load()
    if state is None or "model" not in state:
        raise FileNotFoundError(f"{run_dir} holds no {stage} checkpoint to resume from")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text((run_dir / "config.json").read_text())
    from safetensors.torch import save_file

    save_file({k: v.detach().clone().contiguous() for k, v in state["model"].items()}, dest / f"{stage}.safetensors")
    (dest / f"{stage}.json").write_text(json.dumps({"step": state["step"], "elapsed": state.get("elapsed", 0.0)}))
    return dest


def _train_transformer(cfg, run_dir, stage="transformer"):
    """Stage 4 (``transformer``: from scratch, shapes world first, then ``tr_kind_weights``) or
    stage 5 (``transformer_tune``: from stage 4's weights, a second cosine cycle of ``tune_steps``
    at ``tune_lr`` drawing ``tune_kind_weights``)."""
    tune = stage == "transformer_tune"
    st = _Stage(run_dir, stage)
    cache = load_state(run_dir / "cache.pt")
    pipe = C.make_pipeline(vae=C.make_vae(cache["scaling_factor"], vae_channels(cfg)),
                           transformer=make_transformer(cfg), text_encoder=C.make_text_encoder(cfg.seed),
                           scheduler=C.make_scheduler(cfg.snr_shift_scale))
    tr = pipe.transformer
    n_val = min(64, len(cache["prompts"]) // 4)  # held-out clips for the validation loss (never trained on)
    objective = _Objective(cfg, pipe, cache, n_val)
    if tune:
        tr.load_state_dict(load_state(run_dir / "transformer.pt"))
    steps, peak, warmup = ((cfg.tune_steps, cfg.tune_lr, cfg.tune_warmup) if tune
                           else (cfg.tr_steps, cfg.tr_lr, cfg.tr_warmup))
    shapes_first = 0 if tune else cfg.tr_shapes_first
    weights = parse_kind_weights(cfg.tune_kind_weights if tune else cfg.tr_kind_weights)
    mixed = clip_probabilities(cache["kinds"], weights, first=n_val)
    # shapes-first: the shapes kinds in their mix proportions (a kind weighted 0 there still counts 1)
    shapes_only = (clip_probabilities(cache["kinds"], {k: weights.get(k, 0) or 1.0 for k in SHAPES_KINDS}, first=n_val)
                   if shapes_first else None)
    state = st.load() or {"step": 0, "elapsed": 0.0}
    opt, rewarm = _resumed_optimizer(tr, state, peak)
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + state["step"] + (10**6 if tune else 0))
    start = time.time()
    tr.train()
    bar = tqdm(range(state["step"], steps), initial=state["step"], total=steps, desc=stage)
    for step in bar:
        for grp in opt.param_groups:
            grp["lr"] = _cosine_lr(step, steps, peak, warmup=warmup) * min(1.0, (step - rewarm + 1) / max(warmup, 1))
        probs = shapes_only if step < shapes_first else mixed
        loss = objective.loss(torch.multinomial(probs, cfg.tr_batch, replacement=True, generator=gen), gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tr.parameters(), 1.0)
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        rec = {"v_mse": round(loss.item(), 6)}
        if (step + 1) % cfg.val_every == 0 or step + 1 == steps:
            tr.eval()
            rec.update(objective.validate())
            tr.train()
            bar.write(f"{stage} step {step + 1}: {rec}")
        if (step + 1) % 10 == 0 or step + 1 == steps:
            _log(run_dir, stage=stage, step=step + 1, lr=opt.param_groups[0]["lr"], **rec)
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == steps:
            st.save({"step": step + 1, "model": tr.state_dict(), "opt": opt.state_dict(),
                     "elapsed": _elapsed(state, start)})
    torch.save(tr.state_dict(), run_dir / f"{stage}.pt")
    st.finish(seconds=round(_elapsed(state, start), 1), steps=steps)


def started_from(folder: Path) -> dict:
    """What a run's starting pipeline folder says of itself (its stages, their time and hardware)
    and the commit that last wrote it where it lies in a git checkout, for the card to name."""
    own = folder / "cogviz_toy.json"
    info = json.loads(own.read_text()) if own.exists() else {}
    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", "."], cwd=folder, capture_output=True,
                                text=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"path": str(folder), "commit": commit,
            **{k: info[k] for k in ("stages", "training_seconds", "hardware") if k in info}}


def _export(cfg, run_dir, out_dir: Path):
    cache_info = json.loads((run_dir / "cache.done").read_text())
    vae = C.make_vae(cache_info["scaling_factor"], vae_channels(cfg))
    vae.load_state_dict(load_state(run_dir / "vae_clips.pt"))
    tr = make_transformer(cfg)
    tr.load_state_dict(load_state(run_dir / ("transformer_tune.pt" if cfg.tune_steps else "transformer.pt")))
    pipe = C.make_pipeline(vae=vae, transformer=tr, text_encoder=C.make_text_encoder(cfg.seed),
                           scheduler=C.make_scheduler(cfg.snr_shift_scale))
    stages = {}
    for name in STAGES[:-1]:
        if name != "transformer_tune" or cfg.tune_steps:
            stages[name] = json.loads((run_dir / f"{name}.done").read_text())
    info = {
        "max_sequence_length": C.MAX_TEXT_LEN,
        "height": C.HEIGHT, "width": C.WIDTH, "num_frames": C.NUM_FRAMES, "fps": 8,
        "train_config": asdict(cfg),
        "stages": stages,
        "training_seconds": round(sum(s.get("seconds", 0) for s in stages.values()), 1),
        "hardware": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads",
        **({"started_from": started_from(Path(cfg.init_from))} if cfg.init_from else {}),
    }

    def write(folder: Path) -> None:
        pipe.save_pretrained(folder, safe_serialization=True)
        (folder / "cogviz_toy.json").write_text(json.dumps(info, indent=2) + "\n")

    export_atomically(out_dir, write)
    _Stage(run_dir, "export").finish(out_dir=str(out_dir))


def export_atomically(out_dir: Path, write) -> Path:
    """``write(folder)`` fills a fresh folder beside ``out_dir``, which then replaces ``out_dir`` by
    renames: an interrupted export leaves the old pipeline whole (lessons and tests load it), never a
    half-written one. Files of the old folder that the export does not write (the model card, its
    evaluation, the training records) are kept. A folder in the way that is not a pipeline folder
    (no ``model_index.json``) and not empty is refused, never overwritten."""
    import shutil

    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "model_index.json").is_file():
        raise SystemExit(f"--out {out_dir}: a folder that is not a pipeline folder (no model_index.json) and not "
                         "empty; cogviz exports only into a new, empty or pipeline folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.export-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        if out_dir.exists():
            for kept in out_dir.iterdir():
                if not (tmp / kept.name).exists():
                    (shutil.copytree if kept.is_dir() else shutil.copy2)(kept, tmp / kept.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def train(cfg: TrainConfig, run_dir: Path, out_dir: Path = DEFAULT_OUT) -> Path:
    """Run (or resume) every stage; returns the exported pipeline folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "config.json"
    if cfg_path.exists():
        # a setting added after the run began counts as its default, which keeps the old recipe
        saved = {**asdict(TrainConfig()), **json.loads(cfg_path.read_text())}
        if saved != asdict(cfg):
            raise SystemExit(f"{run_dir} holds a run with another configuration ({cfg_path}); "
                             "pass the same options or a new --run-dir")
    else:
        cfg_path.write_text(json.dumps(asdict(cfg), indent=2))
    torch.set_num_threads(cfg.threads)
    if cfg.init_from:
        _adopt_init(cfg, run_dir)
    if not _Stage(run_dir, "vae_images").is_done():
        _train_vae(cfg, run_dir, "vae_images", cfg.img_steps, cfg.img_lr, clips_too=False)
    if not _Stage(run_dir, "vae_clips").is_done():
        _train_vae(cfg, run_dir, "vae_clips", cfg.clip_steps, cfg.clip_lr, clips_too=True)
    if not _Stage(run_dir, "cache").is_done():
        _cache(cfg, run_dir)
    if not _Stage(run_dir, "transformer").is_done():
        _train_transformer(cfg, run_dir)
    if cfg.tune_steps and not _Stage(run_dir, "transformer_tune").is_done():
        _train_transformer(cfg, run_dir, "transformer_tune")
    _export(cfg, run_dir, Path(out_dir))
    return Path(out_dir)


def default_run_dir() -> Path:
    """Where a training run writes by default: outside any checkout (``$COGVIZ_RUNS/toy``, else
    ``~/.cache/cogviz/runs/toy``), so runs, checkpoints and logs never land in the source tree."""
    root = os.environ.get("COGVIZ_RUNS")
    return (Path(root) if root else Path.home() / ".cache" / "cogviz" / "runs") / "toy"


def build_parser(prog: str = "python -m cogviz.trainer") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", type=Path, default=default_run_dir(),
                   help="checkpoints and log (default $COGVIZ_RUNS/toy, else ~/.cache/cogviz/runs/toy)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="where the pipeline folder is written, replaced whole at the end (default $COGVIZ_RUNS/toy-export, "
                        "else ~/.cache/cogviz/runs/toy-export; `make train` passes cogviz/toy/weights)")
    p.add_argument("--config", type=Path, metavar="JSON",
                   help="take every setting from a run's config.json (options given too override it)")
    p.add_argument("--save-resume", type=Path, metavar="DIR",
                   help="write --run-dir's resume point (config + the tune stage's weights and step) into DIR and stop")
    for name, value in asdict(TrainConfig()).items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    return p


def main(argv=None, prog: str = "python -m cogviz.trainer") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.config:
        saved = json.loads(args.config.read_text())
        known = list(asdict(TrainConfig()))
        unknown = sorted(set(saved) - set(known))
        if unknown:
            hints = "; ".join(f"{u!r}" + (f" (did you mean {close[0]!r}?)" if (close := get_close_matches(u, known, n=1))
                                          else "") for u in unknown)
            parser.error(f"{args.config}: unknown setting(s) {hints}; the settings are the options `--help` lists")
        parser.set_defaults(**saved)
        args = parser.parse_args(argv)
    if args.save_resume:
        print(f"resume point written to {save_resume_point(args.run_dir, args.save_resume)}")
        return 0
    fields = {k: getattr(args, k) for k in asdict(TrainConfig())}
    out = train(TrainConfig(**fields), args.run_dir, args.out)
    print(f"exported the toy pipeline to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The toy model's card (``cogviz/toy/weights/README.md``), written from the files beside it.

``cogviz_toy.json`` (written by training: recipe, stage times, hardware) and ``eval.json``
(written by ``benchmarks/eval_toy.py --write-card``) are the sources; nothing here is typed by hand.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..toy.components import TRANSFORMER_SIZE, VOCAB

__all__ = ["write_model_card"]

WEIGHTS = Path(__file__).parents[1] / "toy" / "weights"


def _fmt_stage(name: str, info: dict, before: dict | None = None) -> str:
    """A stage's row; a stage the run took from its starting weights shows that run's row, marked."""
    if "init_from" in info and before and name in before:
        return _fmt_stage(name, before[name]).replace(" min |", " min (for the starting weights) |", 1)
    extra = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in info.items() if k not in ("seconds",))
    return f"| {name} | {info.get('seconds', 0) / 60:.1f} min | {extra} |"


def _tune_start(info) -> str:
    before = info.get("started_from", {}).get("stages", {}).get("transformer_tune")
    return (f"the starting weights' transformer (their step 4, then a step 5 of {before['steps']} steps of its own)"
            if before else "step 4's weights")


def _starting_weights(info) -> str:
    src = info.get("started_from", {})
    return f"`{src.get('path', info['train_config']['init_from'])}`" + (f" at commit {src['commit']}" if src.get("commit") else "")


def _data_section() -> list[str]:
    from ..toy.data import MIX
    from ..toy.natural import PHOTOS

    lines = [
        "A mix of 17-frame clips at 64 x 96 (`cogviz/toy/data.py`), every one reproducible from its seed:",
        "",
        "| kind | share | what |",
        "|---|---|---|",
        f"| shapes | {MIX['shapes']:.0%} | shapes world (`cogviz/toy/scenes.py`): one circle, square or triangle in red, green, blue or yellow over a plain, gradient or soft-striped low-saturation background, moving left, right, up or down by 30-50 % of the free span; \"a red circle moves left\" |",
        f"| shapes_full | {MIX['shapes_full']:.0%} | the same, backgrounds drawn from the whole colour range (dark, bright, saturated) |",
        f"| shapes_photo | {MIX['shapes_photo']:.0%} | a shape moving over a still natural image |",
        f"| camera | {MIX['camera']:.0%} | a camera move over a still natural image, travelling 15-30 % of the frame: \"the camera pans left / right / up / down\", \"the camera zooms in / out\" |",
        f"| still | {MIX['still']:.0%} | a still natural image, every frame the same: \"the camera holds still\" (drawn only where a recipe's kind weights name it) |",
        "",
        "Natural images (`cogviz/toy/natural.py`): the training photographs below (and their mirror "
        "images), plus procedural canvases — the dead-leaves model (occluding disks with sizes ~ r^-3, "
        "each flat, striped, fractal-textured or graded), fractal noise with 1/f^a spectra and "
        "gradients — cut at random windows and scales and colour-jittered (brightness, contrast, "
        "saturation, white balance).",
        "",
        "| photograph | split | source | licence |",
        "|---|---|---|---|",
    ]
    for p in PHOTOS:
        lines.append(f"| {p.name} | {p.split} | {p.package}: `{p.loader}` | {p.licence} |")
    lines += [
        "",
        "`train`: read by every training stage. `val`: only the validation figures logged during "
        "training. `heldout`: only the evaluation; they come from packages no training stage reads. "
        "Training clip seeds lie below 1e9; evaluation scene seeds start at 1e9.",
    ]
    return lines


def _card_header(info, cfg) -> list[str]:
    lines = [
        "# cogviz-toy: a small CogVideoX image-to-video model for shapes world and photographs",
        "",
        "A diffusers `CogVideoXImageToVideoPipeline` trained by cogviz, from scratch, on generated clips",
        "of shapes world and of natural images (photographs, dead leaves). Same classes as THUDM/CogVideoX-5b-I2V (`AutoencoderKLCogVideoX` with 16 latent",
        "channels, `CogVideoXTransformer3DModel` with `in_channels=32` = 16 noisy + 16 image channels,",
        "learned + rotary positional embeddings, a T5 encoder, the 5b scheduler configuration), small",
        "enough to run on a laptop CPU in seconds.",
        "",
        "```python",
        "from diffusers import CogVideoXImageToVideoPipeline",
        "pipe = CogVideoXImageToVideoPipeline.from_pretrained(\"cogviz/toy/weights\")",
        f"video = pipe(image, \"a red circle moves left\", height={info['height']}, width={info['width']}, "
        f"num_frames={info['num_frames']},",
        f"            max_sequence_length={info['max_sequence_length']}).frames[0]   # 16 text tokens, not 226",
        "```",
        "or `cogviz.load_pipeline(\"toy\")`, which reads the text length from the transformer's config.",
        "",
        "## Data",
        *_data_section(),
        "",
        "## Recipe (`python -m cogviz.trainer`, seed {seed})".format(seed=cfg["seed"]),
        "| stage | time | result |",
        "|---|---|---|",
    ]
    for name, st in info["stages"].items():
        lines.append(_fmt_stage(name, st, info.get("started_from", {}).get("stages")))
    return lines


def _card_recipe(info, cfg) -> list[str]:
    lines = []
    lines += [
        "",
        *([f"Steps 1, 2 and 4 ran once, for the weights this run started from ({_starting_weights(info)});",
           "their settings below are that recipe's; this run made the cache (step 3) and step 5.", ""]
          if cfg.get("init_from") else []),
        f"1. VAE with block channels ({cfg.get('vae_channels', '16,32,32,64')}), on single frames of the mix (70 % natural views, 30 % frames of clips; {cfg['img_steps']} steps, batch {cfg['img_batch']},",
        f"   random 32x48 crops, posterior mode + MSE, Adam {cfg['img_lr']} with warm-up and cosine decay).",
        f"2. VAE on 17-frame clips of the mix (batch {cfg['clip_batch']}) plus frames (batch {cfg['clip_img_batch']}), {cfg['clip_steps']} steps,",
        f"   sampled posterior, KL weight {cfg['kl_weight']}, Adam {cfg['clip_lr']} cosine.",
        *([f"   The clips' kinds are drawn with weights {cfg['vae_clip_kind_weights']}."]
          if cfg.get("vae_clip_kind_weights") else []),
        *([f"   {cfg['vae_crop_motion']:.0%} of the clip crops are centred on a pixel that changes over the clip (a moving",
           "   shape is inside them); the rest are placed at random."] if cfg.get("vae_crop_motion") else []),
        *([f"   The decoder reads the latent with extra Gaussian noise of {cfg['vae_latent_noise']} x its std, so a slightly wrong",
           "   latent still decodes to a clean picture."] if cfg.get("vae_latent_noise") else []),
        f"3. Latent cache of {cfg['cache_clips']} clips of the mix"
        + (f", the kinds drawn with weights {cfg['cache_kind_weights']}" if cfg.get("cache_kind_weights") else "")
        + (f", camera moves travelling {cfg['camera_travel'].replace(',', '-')} of the frame"
           if cfg.get("camera_travel", "0.15,0.30") != "0.15,0.30" else "")
        + "; frame 0 encoded after pixel noise sigma ~ exp(N(-3, 0.5));",
        ("   scaling factor: the starting weights' (its transformer was trained at that scale)." if cfg.get("init_from")
         else "   scaling factor = 1 / std of the latents."),
        f"4. Transformer of {cfg.get('tr_layers', TRANSFORMER_SIZE['num_layers'])} blocks, "
        f"{cfg.get('tr_heads', TRANSFORMER_SIZE['num_attention_heads'])} heads x {TRANSFORMER_SIZE['attention_head_dim']} channels; "
        f"{cfg['tr_steps']} steps of batch {cfg['tr_batch']},",
        f"   AdamW {cfg['tr_lr']} cosine: z_img (frame 0,",
        "   zeros over later latent frames) concatenated on channels with the noisy latent, v-prediction MSE,",
        f"   image-latent dropout {cfg['image_dropout']}, prompt dropout {cfg['prompt_dropout']} (for CFG).",
        *([f"   The first {cfg['tr_shapes_first']} steps draw shapes-world clips alone, then the kinds are drawn "
           f"with weights {cfg['tr_kind_weights']}."] if cfg.get("tr_shapes_first") else
          [f"   The kinds are drawn with weights {cfg['tr_kind_weights']}."] if "tr_kind_weights" in cfg else []),
        *([f"   Timesteps: {cfg['tr_high_share']:.0%} of each batch uniform over t >= {cfg['tr_high_from']} (where the noise hides",
           "   the motion and only the prompt tells the direction), the rest uniform over [0, 1000)."]
          if cfg.get("tr_high_share") else ["   Timesteps uniform over [0, 1000)."] if "tr_high_share" in cfg else []),
        *([f"   The scheduler's snr_shift_scale is {cfg['snr_shift_scale']}: the signal-to-noise ratio at every timestep is",
           f"   {1 / cfg['snr_shift_scale']:.2f}x the 5b-I2V schedule's, in training and in the shipped scheduler."]
          if cfg.get("snr_shift_scale", 1.0) != 1.0 else []),
        *([f"5. Transformer, a second cosine cycle from {_tune_start(info)}: {cfg['tune_steps']} steps, AdamW {cfg['tune_lr']}",
           f"   ({cfg['tune_warmup']} warm-up steps), the kinds drawn with weights {cfg['tune_kind_weights']}, timesteps as",
           "   in step 4."]
          if cfg.get("tune_steps") else []),
        "",
        f"Training time: {info['training_seconds'] / 60:.1f} min on {info['hardware']}"
        + (f", after {info['started_from']['training_seconds'] / 60:.1f} min on {info['started_from']['hardware']} "
           "for the starting weights." if "training_seconds" in info.get("started_from", {}) else "."),
        "",
        "## Evaluation (`python benchmarks/eval_toy.py`)",
    ]
    return lines


def _card_evaluation(ev) -> list[str]:
    lines = []
    if ev is None:
        lines.append("Not evaluated yet.")
    else:
        from .evaluate import LAST_FRAME_DB, STILL_DB
        from .evaluate import PHOTO_BAR as pb
        from .evaluate import QUALITY_BAR as qb

        s, meets = ev["summary"], ev["meets"]
        lines += [
            f"{s['scenes']} held-out scenes, {s['steps']} steps, guidance {s['guidance']}, CPU. The bars: no worse than the",
            "shapes-world-only model this one replaced (`QUALITY_BAR` in `cogviz/trainer/evaluate.py`).",
            "",
            "| figure | value | bar | met |",
            "|---|---|---|---|",
            f"| frame-0 PSNR vs the conditioning image (median) | {s['frame0_psnr_median']} dB | >= {qb['frame0_psnr_median']} dB | {meets['frame0_psnr_median']} |",
            f"| shape colour present in the last frame | {100 * s['colour_kept_rate']:.0f} % | >= {qb['colour_kept_rate']:.0%} | {meets['colour_kept_rate']} |",
            f"| centroid moves in the prompted direction | {100 * s['moved_ok_rate']:.0f} % | >= {qb['moved_ok_rate']:.0%} | {meets['moved_ok_rate']} |",
            f"| frame-0 PSNR drop with z_img zeroed | {s['anchor_drop_db']} dB (to {s['frame0_psnr_no_image_median']} dB) | >= {qb['anchor_drop_db']} dB | {meets['anchor_drop_db']} |",
            *([f"| the shape stays one piece (no copies, smears or fragments; frames 4-16) | {100 * s['stays_whole_rate']:.0f} % | >= {qb['stays_whole_rate']:.0%} | {meets['stays_whole_rate']} |"]
              if s.get("stays_whole_rate") is not None else []),
        ]
        if "photos" in ev:
            p, pm = ev["photos"]["summary"], ev["photos"]["meets"]
            lines += [
                "",
                f"Photographs no training stage saw: {p['photos']} views (each held-out photograph fitted whole,",
                "plus sub-windows zoomed 1.5x-3x) of matplotlib's and scikit-learn's sample images, fitted to",
                "64 x 96, each with one camera prompt (the six moves in turn), same settings.",
                "",
                "| figure | value | bar | met |",
                "|---|---|---|---|",
                f"| VAE reconstruction PSNR (median) | {p['vae_psnr_median']} dB | >= {pb['vae_psnr_median']} dB | {pm['vae_psnr_median']} |",
                *([f"| reference: a JPEG-like block-DCT code with the latent's budget (16 numbers per 8 x 8 block, unquantized) | {p['dct_psnr_median']} dB | | |"]
                  if p.get("dct_psnr_median") is not None else []),
                f"| frame-0 PSNR vs the fitted photo (median) | {p['frame0_psnr_median']} dB | >= {pb['frame0_psnr_median']} dB | {pm['frame0_psnr_median']} |",
                f"| frame-0 PSNR drop with z_img zeroed | {p['anchor_drop_db']} dB (to {p['frame0_psnr_no_image_median']} dB) | >= {pb['anchor_drop_db']} dB | {pm['anchor_drop_db']} |",
                f"| global motion first -> last frame matches the camera prompt | {100 * p['camera_ok_rate']:.0f} % | >= {pb['camera_ok_rate']:.0%} | {pm['camera_ok_rate']} |",
                f"| last frame still shows the photo (aligned PSNR >= {LAST_FRAME_DB:g} dB; median {p['last_frame_psnr_median']} dB) | {100 * p['last_frame_ok_rate']:.0f} % | >= {pb['last_frame_ok_rate']:.0%} | {pm['last_frame_ok_rate']} |",
                *([f"| prompted \"the camera holds still\": last frame vs the photo >= {STILL_DB:g} dB (median {p['still_last_psnr_median']} dB) | {100 * p['still_ok_rate']:.0f} % | >= {pb['still_ok_rate']:.0%} | {pm['still_ok_rate']} |"]
                  if p.get("still_ok_rate") is not None else []),
                "",
                "Motion is measured by phase correlation (scikit-image) jointly with a zoom search about the",
                "centre; \"still shows the photo\" compares the last frame with the photo moved by that measured",
                "motion, on the part both show (an exact camera move scores about 25 dB there, an unrelated",
                "photograph about 9 dB).",
            ]
    return lines


def _card_speed(folder: Path) -> list[str]:
    lines = []
    if (folder / "speed.json").exists():
        sp = json.loads((folder / "speed.json").read_text())
        lines += [
            "",
            "## Speed (`python benchmarks/bench_toy.py --json cogviz/toy/weights/speed.json`)",
            f"One video, 17 x 64 x 96, 50 steps with CFG, end to end on {sp['threads']} CPU threads: "
            f"**{sp['end_to_end_50_steps_s']} s** (target <= 3 s); fixed cost (text, image encode, VAE decode) "
            f"{sp['one_step_s']} s, {sp['per_step_ms']} ms per transformer step.",
            *([f"Against the model it replaced, timed interleaved in the same run: {sp['model_s']} s vs {sp['baseline_s']} s, "
               f"ratio {sp['ratio_to_baseline']} (target <= 1.2)."] if "ratio_to_baseline" in sp else []),
        ]
    return lines


def _vocab_size(folder: Path) -> int:
    """The folder's tokenizer's vocabulary (not the code's: words may join after the weights were
    made); the code's where the folder has no tokenizer yet."""
    path = folder / "tokenizer" / "tokenizer.json"
    return len(json.loads(path.read_text())["model"]["vocab"]) if path.exists() else len(VOCAB)


def _card_limits(info, cfg, ev, folder: Path) -> list[str]:
    from .evaluate import LAST_FRAME_DB

    lines = []
    lines += [
        "",
        "## Limits",
        "- 64 x 96 pixels, 17 frames. Its motions are the ones above: one shape in four colours and three",
        "  forms moving in a straight line, six camera moves over a still picture, and a camera that holds",
        "  still. Frame 0 holds any picture it is given (figures above), but it invents no new content: it",
        "  is a specimen for studying the conditioning mechanism, not a video generator.",
        *([f"- On photographs the last frame still shows the photo (aligned PSNR >= {LAST_FRAME_DB:g} dB) in "
           f"{100 * ev['photos']['summary']['last_frame_ok_rate']:.0f} % of the held-out clips,",
           f"  and the camera moves the prompted way in {100 * ev['photos']['summary']['camera_ok_rate']:.0f} %."
           + (f" Asked \"the camera holds still\", it keeps the photo in {100 * ev['photos']['summary']['still_ok_rate']:.0f} %."
              if ev['photos']['summary'].get('still_ok_rate') is not None else "")]
          if ev is not None and "photos" in ev else []),
        "- The text encoder is a small random T5, frozen (as CogVideoX freezes T5-XXL); only the words of",
        f"  its {_vocab_size(folder)}-entry word-level vocabulary mean anything.",
        "- Fixed resolution (learned positional embeddings), like 5b-I2V.",
        "",
    ]
    return lines


#: The dead ends on the way to the shipped weights, with their figures (the runs' configs, logs and
#: strips are in git history: ``runs/toy/README.md`` at commit 29a5ea6, their weights at ac92492).
TRIED = (
    "A plain mix from the first step (9000 steps, each kind at its share): the model learned the picture, "
    "not the direction word (shapes and camera direction 25 %, chance; prompt gap 1.0009). Hence shapes first.",
    "Timesteps drawn uniformly: prompt gap still 1.000 after 1700 shapes-only steps (below t ~ 700 the noisy "
    "latent shows the motion by itself). Hence half of each batch from t >= 700.",
    "The mix from the start (a 15000-step transformer run): camera direction 83 %, but the last frame "
    "kept the photo in 8 % of views and shapes split into copies; not shipped.",
    "SNR shift 0.25 instead of 0.5: shapes stay whole 58.3 % either way (0 % without a shift).",
    "A VAE whose clip stage drew 70 % shapes (v3): no more motion in the latent (0.231 vs 0.246), stays whole "
    "50 % (v2 58.3 %); crops centred on what moves (v4): 33.3 %; the decoder tuned on the transformer's "
    "own latents: 50 %.",
    "Depth, not the VAE: 8 blocks for 13500 shapes-only steps keep the shapes whole in 100 % of 12 held-out "
    "scenes (6 blocks, 9000 steps: 58.3 %). The shipped recipe is that, then 6000 mixed steps.",
    "Fewer camera and still clips (run B of the evidence table: 15 % + 10 %): direction 58 %, last-frame median "
    "10.8 dB at 1500 steps, against A's 67 % and 12.3 dB. Smaller moves (C: 5-15 % of the frame): direction 33 %, "
    "9.7 dB. A (70 % camera and still clips) is the run shipped.",
)


#: The photo figures a training curve reads (``benchmarks/eval_toy.py --json``), as the card prints them.
CURVE_FIGURES = {"frame0_psnr_median": "frame 0 dB", "camera_ok_rate": "camera direction",
                 "last_frame_ok_rate": "last frame shows the photo", "last_frame_psnr_median": "its median dB",
                 "still_ok_rate": "holds still >= 20 dB", "still_last_psnr_median": "its median dB"}


def _curve_cell(key: str, value) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.0f} %" if key.endswith("_rate") else f"{value:.2f}"


def _card_evidence(folder: Path) -> list[str]:
    """The training curve (``training/evidence.json``): photo figures against CPU time per lever."""
    path = folder / "training" / "evidence.json"
    if not path.exists():
        return []
    ev = json.loads(path.read_text())
    lines = ["", "## Evidence: what moves the photo figures", "", *ev["setup"], "",
             "| run | lever | steps | CPU min | " + " | ".join(CURVE_FIGURES.values()) + " |",
             "|---|---|---|---|" + "---|" * len(CURVE_FIGURES)]
    for pt in ev["points"]:
        cells = [_curve_cell(k, pt.get(k)) for k in CURVE_FIGURES]
        lines.append(f"| {pt['run']} | {pt['lever']} | {pt['steps']} | {pt['cpu_min']:.0f} | " + " | ".join(cells) + " |")
    return lines + ["", *ev["reading"]]


def _card_tried() -> list[str]:
    return ["", "## What was tried", "",
            "Each line is a run that did not ship, and what it measured; `training/` beside this card holds the "
            "shipped stages' configs and logs (`photo_tune.*` is step 5 of these weights; `transformer.*` and `tune.*` "
            "the steps 4 and 5 of the weights they started from).", "",
            *[f"- {t}" for t in TRIED]]


def write_model_card(folder: Path = WEIGHTS) -> Path:
    info = json.loads((folder / "cogviz_toy.json").read_text())
    ev = json.loads((folder / "eval.json").read_text()) if (folder / "eval.json").exists() else None
    cfg = info["train_config"]
    lines = (_card_header(info, cfg) + _card_recipe(info, cfg) + _card_evaluation(ev) + _card_speed(folder)
             + _card_limits(info, cfg, ev, folder) + _card_evidence(folder) + _card_tried())
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path

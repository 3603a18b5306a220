"""The training command: every stage at toy size, interruption and resume, scene rules."""
import json

import numpy as np
import pytest
import torch

from cogviz.toy.scenes import COLOURS, DIRECTIONS, SHAPES, prompt_for, render_scene, sample_scene
from cogviz.trainer import train as T

TINY = dict(img_steps=4, img_batch=4, clip_steps=2, clip_batch=1, clip_img_batch=2, cache_clips=16,
            tr_steps=4, tr_batch=4, tr_warmup=2, tr_shapes_first=2, tune_steps=2, tune_warmup=1, vae_channels="8,16,16,32", vae_latent_noise=0.05, snr_shift_scale=0.5,
            vae_clip_kind_weights="shapes:0.5,camera:0.5", vae_crop_motion=0.5, ckpt_every=2, val_every=1000, val_scenes=2, procedural=4)


@pytest.mark.slow
def test_train_resumes_after_interruption_and_exports(tmp_path, monkeypatch):
    cfg = T.TrainConfig(**TINY)
    calls = {"n": 0}
    real = T._image_batch

    def flaky(rng, n, pool):
        calls["n"] += 1
        if calls["n"] == 4:  # dies during step 4, after the step-2 checkpoint
            raise KeyboardInterrupt
        return real(rng, n, pool)

    monkeypatch.setattr(T, "_image_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        T.train(cfg, tmp_path / "run", tmp_path / "out")
    ckpt = T.load_state(tmp_path / "run" / "vae_images.ckpt")
    assert ckpt["step"] == 2 and not (tmp_path / "run" / "vae_images.done").exists()
    monkeypatch.setattr(T, "_image_batch", real)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    del saved["tune_lr"]  # a run begun before a setting existed resumes with its default
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    out = T.train(cfg, tmp_path / "run", tmp_path / "out")
    steps = [json.loads(l)["step"] for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
             if '"vae_images"' in l and '"step"' in l]
    assert steps[-1] == 4  # resumed at step 3, not from scratch
    tr_log = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
              if '"transformer"' in l and "val_prompt_gap" in l]
    assert tr_log and tr_log[-1]["val_prompt_gap"] > 0  # the direction probe is logged
    for stage in T.STAGES:
        assert (tmp_path / "run" / f"{stage}.done").exists()
    from diffusers import CogVideoXImageToVideoPipeline

    pipe = CogVideoXImageToVideoPipeline.from_pretrained(out)
    # the tune stage went on from stage 4's weights, and its weights are the ones exported
    first, tuned = (torch.load(tmp_path / "run" / f"{s}.pt") for s in ("transformer", "transformer_tune"))
    exported = pipe.transformer.state_dict()
    assert any(not torch.equal(first[k], tuned[k]) for k in tuned)
    assert all(torch.equal(exported[k], tuned[k]) for k in tuned)
    info = json.loads((out / "cogviz_toy.json").read_text())
    assert info["stages"]["transformer_tune"]["steps"] == 2
    scaling = json.loads((tmp_path / "run" / "cache.done").read_text())["scaling_factor"]
    assert pipe.vae.config.scaling_factor == pytest.approx(scaling)
    assert tuple(pipe.vae.config.block_out_channels) == (8, 16, 16, 32)  # the configured widths ship
    assert pipe.scheduler.config.snr_shift_scale == 0.5  # the schedule it was trained with ships
    with pytest.raises(SystemExit, match="another configuration"):
        T.train(T.TrainConfig(**{**TINY, "seed": 1}), tmp_path / "run", tmp_path / "out")


def test_scenes_are_reproducible_and_stay_in_frame():
    for seed in range(40):
        s = sample_scene(seed)
        assert s == sample_scene(seed)
        frames = render_scene(s)
        assert frames.shape == (17, 64, 96, 3) and frames.dtype == np.uint8
        ref = np.asarray(COLOURS[s.colour], np.float32)
        for f in (0, 16):
            mask = np.linalg.norm(frames[f].astype(np.float32) - ref, axis=-1) < 40
            ys, xs = np.nonzero(mask)
            assert len(ys) > 30  # the shape is visible ...
            assert ys.min() > 0 and xs.min() > 0 and ys.max() < 63 and xs.max() < 95  # ... and inside
        dy, dx = DIRECTIONS[s.direction]
        c = [np.argwhere(np.linalg.norm(frames[f].astype(np.float32) - ref, axis=-1) < 40).mean(0) for f in (0, 16)]
        assert (c[1] - c[0]) @ np.array([dy, dx]) > 5  # it moves the prompted way
        assert prompt_for(s) == f"a {s.colour} {s.shape} moves {s.direction}"


def test_vocabulary_covers_every_prompt_word():
    from cogviz.toy.components import make_tokenizer

    tok = make_tokenizer()
    for words in (list(COLOURS), list(SHAPES), list(DIRECTIONS)):
        for w in words:
            assert tok.convert_tokens_to_ids(w) != tok.unk_token_id


def test_eval_seeds_are_disjoint_from_training_seeds():
    rng = np.random.default_rng(0)
    assert T._train_scene_seeds(rng, 10000).max() < T.EVAL_SEED_BASE


def test_vae_clip_kind_weights_choose_stage_2s_clips(monkeypatch):
    from cogviz.toy.natural import SourcePool

    with pytest.raises(ValueError, match="vae_clip_kind_weights"):
        T.TrainConfig(vae_clip_kind_weights="shapes:1,moon:2")
    pool = SourcePool(0, procedural=4)
    seen, real = [], T.training_clip

    def spy(seed, pool, **kw):
        clip = real(seed, pool, **kw)
        seen.append(clip.kind)
        return clip

    monkeypatch.setattr(T, "training_clip", spy)
    x = T._clip_batch(np.random.default_rng(0), 6, pool, {"shapes": 1.0, "camera": 0.0})
    assert x.shape == (6, 3, 17, 32, 48)
    assert seen == ["shapes"] * 6
    seen.clear()
    T._clip_batch(np.random.default_rng(0), 40, pool)  # no weights: the mix's own shares
    assert {"shapes", "camera"} <= set(seen)


def test_vae_crop_motion_puts_the_moving_shape_inside_stage_2s_crops():
    from cogviz.toy.natural import SourcePool

    with pytest.raises(ValueError, match="vae_crop_motion is a share"):
        T.TrainConfig(vae_crop_motion=1.5)
    # a still frame with one bright square that moves right along the bottom-right corner
    frames = np.zeros((17, 64, 96, 3), np.uint8)
    for f in range(17):
        frames[f, 50:58, 60 + f : 68 + f] = 255
    rng = np.random.default_rng(0)
    motion = [T._motion_crop(frames, rng) for _ in range(50)]
    assert all(c.shape == (17, 32, 48, 3) for c in motion)
    moving = lambda c: (c[1:] != c[:1]).any()
    assert all(moving(c) for c in motion)  # every motion crop holds the square's motion
    plain = [T._crop(frames, rng) for _ in range(50)]
    assert sum(moving(c) for c in plain) < 40  # random crops often miss it
    still = np.repeat(frames[:1], 17, axis=0)  # nothing moves: a random crop, no error
    assert T._motion_crop(still, rng).shape == (17, 32, 48, 3)
    # in a batch: share 0 is the default (no extra draw), share 1 crops over what moves
    pool = SourcePool(0, procedural=4)
    a = T._clip_batch(np.random.default_rng(3), 4, pool, {"shapes": 1.0})
    b = T._clip_batch(np.random.default_rng(3), 4, pool, {"shapes": 1.0}, 0.0)
    assert torch.equal(a, b)
    x = T._clip_batch(np.random.default_rng(3), 8, pool, {"shapes": 1.0}, 1.0)
    assert ((x[:, :, 1:] - x[:, :, :1]).abs().amax(dim=(1, 2, 3, 4)) > 0.05).all()


def test_snr_shift_scale_is_checked_and_shifts_the_schedule():
    with pytest.raises(ValueError, match="snr_shift_scale must be > 0"):
        T.TrainConfig(snr_shift_scale=0)
    from cogviz.toy.components import make_scheduler

    plain, shifted = make_scheduler().alphas_cumprod, make_scheduler(0.5).alphas_cumprod
    snr = lambda a: a / (1 - a)
    ratio = snr(shifted[100:900]) / snr(plain[100:900])
    assert ratio.min() > 1.9 and ratio.max() < 2.1  # twice the SNR at every step between
    assert shifted[-1] < 1e-6  # zero terminal SNR kept: the last step is pure noise


def test_transformer_size_overrides_change_the_model_and_unknown_settings_fail():
    from cogviz.toy.components import TRANSFORMER_SIZE, make_transformer

    base, deeper = make_transformer(), make_transformer(num_layers=TRANSFORMER_SIZE["num_layers"] + 2)
    assert len(deeper.transformer_blocks) == len(base.transformer_blocks) + 2
    assert base.config.in_channels == deeper.config.in_channels == 32  # the I2V concat is kept
    with pytest.raises(ValueError, match="unknown size setting.*num_layers"):
        make_transformer(layers=8)
    # the training recipe's settings reach the model, and a size of 0 fails before any stage runs
    from cogviz.trainer.train import TrainConfig
    from cogviz.trainer.train import make_transformer as run_transformer

    wide = run_transformer(TrainConfig(tr_layers=2, tr_heads=6))
    assert len(wide.transformer_blocks) == 2 and wide.config.num_attention_heads == 6
    assert wide.config.attention_head_dim == TRANSFORMER_SIZE["attention_head_dim"]
    with pytest.raises(ValueError, match="tr_layers and tr_heads must be >= 1"):
        TrainConfig(tr_layers=0)


def test_model_card_states_the_transformer_recipe(tmp_path):
    from dataclasses import asdict

    from cogviz.trainer.card import WEIGHTS, write_model_card

    info = json.loads((WEIGHTS / "cogviz_toy.json").read_text())
    info.pop("started_from", None)  # a run from a seed: nothing it started from
    info["train_config"] = asdict(T.TrainConfig(tr_high_share=0.25, tr_high_from=800, tr_shapes_first=123,
                                                 tune_steps=77, tune_lr=1e-4, vae_channels="16,48,64,64",
                                                 vae_latent_noise=0.1, snr_shift_scale=0.5,
                                                 vae_clip_kind_weights="shapes:0.7,camera:0.3", vae_crop_motion=0.5,
                                                 tr_layers=8, tr_heads=5))
    (tmp_path / "cogviz_toy.json").write_text(json.dumps(info))
    speed = {"end_to_end_50_steps_s": 2.5, "one_step_s": 1.4, "per_step_ms": 22.0, "threads": 2,
             "baseline": "old", "baseline_s": 2.6, "model_s": 2.45, "ratio_to_baseline": 0.942}
    (tmp_path / "speed.json").write_text(json.dumps(speed))
    text = write_model_card(tmp_path).read_text()
    assert "2.45 s vs 2.6 s, ratio 0.942 (target <= 1.2)" in text  # the same-run comparison
    assert "4. Transformer of 8 blocks, 5 heads x 32 channels" in text
    assert "The first 123 steps draw shapes-world clips alone" in text
    assert "Timesteps: 25% of each batch uniform over t >= 800" in text
    assert "a second cosine cycle from step 4's weights: 77 steps, AdamW 0.0001" in text
    assert "1. VAE with block channels (16,48,64,64)" in text
    assert "extra Gaussian noise of 0.1 x its std" in text
    assert "The clips' kinds are drawn with weights shapes:0.7,camera:0.3." in text
    assert "50% of the clip crops are centred on a pixel that changes over the clip" in text
    assert "snr_shift_scale is 0.5: the signal-to-noise ratio at every timestep is\n   2.00x" in text
    info["train_config"]["tune_steps"] = 0  # a run without the tune stage says nothing of it
    (tmp_path / "cogviz_toy.json").write_text(json.dumps(info))
    assert "second cosine cycle" not in write_model_card(tmp_path).read_text()
    assert "Not evaluated yet." in text  # no eval.json beside it
    # the shipped recipe: shapes world alone from the start, uniform timesteps
    info["train_config"].update(tr_shapes_first=0, tr_high_share=0.0, tr_kind_weights="shapes:0.6,shapes_full:0.4")
    (tmp_path / "cogviz_toy.json").write_text(json.dumps(info))
    text = write_model_card(tmp_path).read_text()
    assert "The kinds are drawn with weights shapes:0.6,shapes_full:0.4." in text and "The first 0 steps" not in text
    assert "Timesteps uniform over [0, 1000)." in text and "0% of each batch" not in text


def test_model_card_reads_its_bars_from_the_evaluation(tmp_path):
    from cogviz.trainer.card import WEIGHTS, write_model_card
    from cogviz.trainer.evaluate import LAST_FRAME_DB, PHOTO_BAR, QUALITY_BAR

    (tmp_path / "cogviz_toy.json").write_text((WEIGHTS / "cogviz_toy.json").read_text())
    (tmp_path / "eval.json").write_text((WEIGHTS / "eval.json").read_text())
    text = write_model_card(tmp_path).read_text()
    assert f"| >= {QUALITY_BAR['frame0_psnr_median']} dB |" in text and QUALITY_BAR["frame0_psnr_median"] == 30.9
    assert f"| >= {QUALITY_BAR['anchor_drop_db']} dB |" in text and QUALITY_BAR["anchor_drop_db"] == 16.0
    assert f"| >= {PHOTO_BAR['vae_psnr_median']} dB |" in text
    assert text.count(f"aligned PSNR >= {LAST_FRAME_DB:g} dB") == 2  # the table and the limits
    assert ">= 24 dB | True" not in text  # the earlier, lower shapes bar is gone


def test_training_writes_outside_the_tree_and_the_card_keeps_what_was_tried(tmp_path, monkeypatch):
    import json
    from pathlib import Path

    from cogviz.trainer.card import TRIED, write_model_card
    from cogviz.trainer.train import build_parser, default_run_dir

    root = Path(__file__).resolve().parents[1]
    assert not (root / "runs").exists()  # the lab is out of the product tree
    run_dir = build_parser().parse_args([]).run_dir
    assert root not in run_dir.resolve().parents
    monkeypatch.setenv("COGVIZ_RUNS", str(tmp_path))
    assert default_run_dir() == tmp_path / "toy"
    training = root / "cogviz" / "toy" / "weights" / "training"
    for stage in ("transformer", "tune"):  # the shipped model's own configs and logs, beside its card
        json.loads((training / f"{stage}.config.json").read_text())
        first = json.loads((training / f"{stage}.log.jsonl").read_text().splitlines()[1])
        assert first["stage"].startswith("transformer")
    (tmp_path / "w").mkdir()
    for name in ("cogviz_toy.json", "eval.json", "speed.json", "tokenizer/tokenizer.json", "training/evidence.json"):
        if (training.parent / name).exists():
            (tmp_path / "w" / name).parent.mkdir(exist_ok=True)
            (tmp_path / "w" / name).write_bytes((training.parent / name).read_bytes())
    card = write_model_card(tmp_path / "w").read_text()
    assert card == (training.parent / "README.md").read_text()  # the committed card is the generated one
    assert "## What was tried" in card and all(t in card for t in TRIED)


def test_added_words_keep_every_earlier_embedding():
    """"holds" (for "the camera holds still") joined the vocabulary after the shipped text
    encoder was drawn: every earlier row and weight is still the shipped one, and the new row
    is a word of its own."""
    from transformers import T5EncoderModel

    from cogviz.models import TOY_DIR
    from cogviz.toy.components import VOCAB, make_text_encoder, make_tokenizer

    shipped = T5EncoderModel.from_pretrained(TOY_DIR / "text_encoder").state_dict()
    now = make_text_encoder(0).state_dict()
    n = shipped["shared.weight"].shape[0]
    assert VOCAB.index("holds") >= n - 1 and len(VOCAB) == now["shared.weight"].shape[0]
    for k, v in shipped.items():
        assert torch.equal(now[k][: v.shape[0]], v), k
    row = now["shared.weight"][VOCAB.index("holds")]
    assert 0.5 < float(row.std()) < 2 and not any(torch.allclose(row, r) for r in now["shared.weight"][:-1])
    ids = make_tokenizer()("the camera holds still").input_ids
    assert make_tokenizer().unk_token_id not in ids


def test_run_options_for_the_cache_and_a_start_from_trained_weights_are_checked(tmp_path):
    for bad, says in [(dict(camera_travel="0.3"), "LOW,HIGH"), (dict(camera_travel="0.3,0.1"), "LOW <= HIGH"),
                      (dict(cache_kind_weights="still:1,tree:1"), "cache_kind_weights"),
                      (dict(init_from=str(tmp_path)), "not a pipeline folder")]:
        with pytest.raises(ValueError, match=says):
            T.TrainConfig(**bad)
    cfg = T.TrainConfig(cache_clips=400, cache_kind_weights="camera:1,still:3")
    kinds = T._cache_kinds(cfg)
    assert set(kinds) == {"camera", "still"} and 0.65 < kinds.count("still") / 400 < 0.85
    assert T._cache_kinds(T.TrainConfig(cache_clips=3)) == [None] * 3  # the mix's own draw


@pytest.mark.slow
def test_a_run_from_the_shipped_weights_tunes_its_transformer(tmp_path):
    """``init_from``: the shipped VAE and transformer stand for stages 1, 2 and 4, the cache keeps
    their scaling factor, the tune stage trains still-camera clips too and exports a pipeline
    whose tokenizer knows "holds"."""
    import re
    from pathlib import Path

    from diffusers import CogVideoXImageToVideoPipeline

    from cogviz.models import TOY_DIR

    cfg = T.TrainConfig(init_from=str(TOY_DIR), cache_clips=16, cache_kind_weights="camera:1,still:1",
                        camera_travel="0.05,0.10", tr_batch=2, tune_steps=2, tune_warmup=1, ckpt_every=2,
                        val_every=2, val_scenes=1, procedural=4)
    out = T.train(cfg, tmp_path / "run", tmp_path / "out")
    run = tmp_path / "run"
    for stage in ("vae_images", "vae_clips", "transformer"):
        assert json.loads((run / f"{stage}.done").read_text())["init_from"] == str(TOY_DIR)
    cache = torch.load(run / "cache.pt")
    shipped = CogVideoXImageToVideoPipeline.from_pretrained(TOY_DIR)
    assert cache["scaling_factor"] == shipped.vae.config.scaling_factor
    assert "the camera holds still" in cache["prompts"]
    log = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if "val_prompt_gap" in l]
    assert log and log[-1]["val_prompt_gap"] > 0  # the probe skips the clips without a direction
    pipe = CogVideoXImageToVideoPipeline.from_pretrained(out)
    tuned, before = pipe.transformer.state_dict(), shipped.transformer.state_dict()
    assert any(not torch.equal(tuned[k], before[k]) for k in before)
    assert pipe.tokenizer.convert_tokens_to_ids("holds") != pipe.tokenizer.unk_token_id
    started = json.loads((out / "cogviz_toy.json").read_text())["started_from"]  # for the card to name
    assert started["path"] == str(TOY_DIR) and started["stages"] == json.loads((TOY_DIR / "cogviz_toy.json").read_text())["stages"]
    if (Path(__file__).resolve().parents[1] / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{7,40}", started["commit"])
    assert T.started_from(tmp_path)["commit"] is None  # outside a checkout: no commit, no error
    with pytest.raises(ValueError, match="tr_layers/tr_heads"):
        T.train(T.TrainConfig(**{**cfg.__dict__, "tr_layers": 2}), tmp_path / "run2", tmp_path / "out2")
    # a finished tune stage's weights start the next run (init_transformer), not the folder's own
    from safetensors.torch import save_file

    save_file(tuned, tmp_path / "tuned.safetensors")
    again = T.TrainConfig(**{**cfg.__dict__, "init_transformer": str(tmp_path / "tuned.safetensors")})
    (tmp_path / "run3").mkdir()
    T._adopt_init(again, tmp_path / "run3")
    started = torch.load(tmp_path / "run3" / "transformer.pt")
    assert all(torch.equal(started[k], tuned[k]) for k in tuned)
    with pytest.raises(ValueError, match="init_transformer"):
        T.TrainConfig(init_transformer=str(tmp_path / "tuned.safetensors"))  # without init_from


def test_model_card_prints_the_training_curve_and_a_run_from_trained_weights(tmp_path):
    from dataclasses import asdict

    from cogviz.trainer.card import CURVE_FIGURES, WEIGHTS, write_model_card

    info = json.loads((WEIGHTS / "cogviz_toy.json").read_text())
    info["train_config"] = asdict(T.TrainConfig(init_from="cogviz/toy/weights", cache_kind_weights="camera:1,still:1",
                                                 camera_travel="0.05,0.15"))
    info["stages"]["vae_images"] = {"seconds": 0.0, "init_from": "cogviz/toy/weights"}
    info["started_from"] = {"path": "p/w", "commit": "abc1234", "training_seconds": 600.0, "hardware": "hw",
                            "stages": {"vae_images": {"seconds": 60.0, "val_image_psnr": 31.0},
                                       "transformer_tune": {"seconds": 120.0, "steps": 600}}}
    (tmp_path / "cogviz_toy.json").write_text(json.dumps(info))
    (tmp_path / "training").mkdir()
    point = {"run": "tuned", "lever": "camera share 70 %", "steps": 1500, "cpu_min": 9.6,
             "camera_ok_rate": 0.833, "last_frame_ok_rate": 0.25, "still_ok_rate": None}
    (tmp_path / "training" / "evidence.json").write_text(json.dumps(
        {"setup": ["Twelve views."], "points": [point], "reading": ["Share moves it most."]}))
    text = write_model_card(tmp_path).read_text()
    assert "## Evidence: what moves the photo figures" in text and "Twelve views." in text
    assert "| tuned | camera share 70 % | 1500 | 10 | - | 83 % | 25 % | - | - | - |" in text
    assert text.index("Share moves it most.") > text.index("| tuned |")
    assert len(CURVE_FIGURES) == 6 and "for the weights this run started from (`p/w` at commit abc1234)" in text
    assert "| vae_images | 1.0 min (for the starting weights) | val_image_psnr 31.00 |" in text
    assert "from the starting weights' transformer (their step 4, then a step 5 of 600 steps of its own)" in text
    assert "after 10.0 min on hw for the starting weights." in text
    assert "the kinds drawn with weights camera:1,still:1, camera moves travelling 0.05-0.15 of the frame" in text
    assert "scaling factor: the starting weights'" in text


@pytest.mark.slow
def test_a_resume_point_without_the_optimizer_goes_on_in_a_fresh_run_dir(tmp_path, monkeypatch):
    """What a session commits to go on elsewhere: config + weights + step (no optimizer moments).
    A fresh run dir with it makes the earlier stages again and resumes the tune stage at that
    step, its learning rate warmed up again from there."""
    from cogviz.models import TOY_DIR

    cfg = T.TrainConfig(init_from=str(TOY_DIR), cache_clips=8, cache_kind_weights="camera:1,still:1", tr_batch=2,
                        tune_steps=4, tune_warmup=2, ckpt_every=2, val_every=100, val_scenes=1, procedural=4)
    real, calls = T._Objective.loss, {"n": 0}

    def dies_at_step_3(self, idx, g, train=True):
        calls["n"] += train
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, idx, g, train)

    monkeypatch.setattr(T._Objective, "loss", dies_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        T.train(cfg, tmp_path / "run", tmp_path / "out")
    monkeypatch.setattr(T._Objective, "loss", real)
    assert T.main(["--run-dir", str(tmp_path / "run"), "--save-resume", str(tmp_path / "point")]) == 0
    assert sorted(f.name for f in (tmp_path / "point").iterdir()) == [
        "config.json", "transformer_tune.json", "transformer_tune.safetensors"]  # tensors and JSON, no pickle
    saved = T._Stage(tmp_path / "point", "transformer_tune").load()
    assert saved["step"] == 2 and "opt" not in saved and saved["model"]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for f in (tmp_path / "point").iterdir():
        (fresh / f.name).write_bytes(f.read_bytes())
    calls["n"] = 10  # counts on, never 3 again
    monkeypatch.setattr(T._Objective, "loss", dies_at_step_3)
    assert T.main(["--run-dir", str(fresh), "--config", str(fresh / "config.json"), "--out", str(tmp_path / "out")]) == 0
    assert calls["n"] == 12  # steps 3 and 4: it went on from step 2, not from 0
    assert json.loads((fresh / "transformer_tune.done").read_text())["steps"] == 4
    with pytest.raises(FileNotFoundError, match="no transformer_tune checkpoint"):
        T.save_resume_point(tmp_path / "nothing", tmp_path / "p2")


def test_the_shipped_weights_carry_the_recipe_that_made_them():
    """``training/photo_tune.*``: the config of the run that made the shipped weights is theirs, a
    valid run configuration that starts from trained weights and draws still-camera clips; its
    log ran every tune step."""
    from cogviz.models import TOY_DIR

    training = TOY_DIR / "training"
    saved = json.loads((training / "photo_tune.config.json").read_text())
    info = json.loads((TOY_DIR / "cogviz_toy.json").read_text())
    assert saved == info["train_config"] and "still:" in saved["tune_kind_weights"]
    T.TrainConfig(**{**saved, "init_from": str(TOY_DIR)})  # every setting is still a valid one
    done = [json.loads(l) for l in (training / "photo_tune.log.jsonl").read_text().splitlines()]
    tune = [r for r in done if r["stage"] == "transformer_tune" and r.get("event") == "done"]
    assert tune and tune[-1]["steps"] == saved["tune_steps"] == info["stages"]["transformer_tune"]["steps"]
    assert info["started_from"]["stages"]["transformer"]["steps"] == saved["tr_steps"]


def test_a_config_file_with_a_misspelt_setting_fails_naming_the_closest(tmp_path, capsys):
    """``--config FILE``: a setting that is not TrainConfig's fails before any stage runs, with the
    setting it most resembles."""
    (tmp_path / "config.json").write_text(json.dumps({"tune_step": 10, "zzz": 1}))
    with pytest.raises(SystemExit) as exit_:
        T.main(["--config", str(tmp_path / "config.json"), "--run-dir", str(tmp_path / "run")])
    assert exit_.value.code == 2 and not (tmp_path / "run").exists()
    err = capsys.readouterr().err
    assert "'tune_step' (did you mean 'tune_steps'?)" in err and "'zzz'" in err


class _RunsCode:
    """A pickle that would call ``Path.touch`` on load: what a hostile checkpoint carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def test_a_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path):
    """Issue 43: resume points are carried between machines, so loading one must never run its
    code: stage checkpoints, ``read_weights`` and resume points all refuse such a pickle."""
    marker = tmp_path / "ran"
    for name in ("transformer_tune.ckpt", "weights.pt"):
        torch.save({"step": 1, "model": {"w": torch.zeros(2)}, "x": _RunsCode(marker)}, tmp_path / name)
    with pytest.raises(ValueError, match="refused, its pickle holds more than weights"):
        T._Stage(tmp_path, "transformer_tune").load()
    with pytest.raises(ValueError, match="weights.pt: refused"):
        T.read_weights(str(tmp_path / "weights.pt"))
    assert not marker.exists()
    # a plain weights-only checkpoint still loads
    torch.save({"step": 3, "model": {"w": torch.ones(2)}, "elapsed": 1.0}, tmp_path / "vae_images.ckpt")
    assert T._Stage(tmp_path, "vae_images").load()["step"] == 3


def test_an_interrupted_export_leaves_the_old_pipeline_whole(tmp_path):
    """Issue 43: ``train-toy --out`` replaces a pipeline folder only whole: an export that dies
    half-way leaves it byte for byte as it was; a folder that is not a pipeline is never written."""
    out = tmp_path / "weights"
    out.mkdir()
    (out / "model_index.json").write_text("{}")
    (out / "README.md").write_text("the card")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def dies_half_way(folder):
        (folder / "model_index.json").write_text('{"half": true}')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        T.export_atomically(out, dies_half_way)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]  # no temporary folder left

    T.export_atomically(out, lambda folder: (folder / "model_index.json").write_text('{"new": true}'))
    assert json.loads((out / "model_index.json").read_text()) == {"new": True}
    assert (out / "README.md").read_text() == "the card"  # what the export does not write is kept
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not a pipeline folder"):
        T.export_atomically(home, lambda folder: None)
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]
    assert T.DEFAULT_OUT != T.PACKAGE_WEIGHTS  # training writes outside the package unless asked


def test_a_checkpoint_cut_short_falls_back_to_the_one_before_and_log_lines_stay_whole(tmp_path):
    """Issue 43 (no fsync): each save keeps the checkpoint it replaces; a torn latest one loads the
    previous; a log line cut by a crash does not swallow the next record."""
    st = T._Stage(tmp_path, "vae_images")
    st.save({"step": 2, "model": {"w": torch.zeros(2)}})
    st.save({"step": 4, "model": {"w": torch.ones(2)}})
    st.ckpt.write_bytes(st.ckpt.read_bytes()[:50])  # torn by a crash
    assert st.load()["step"] == 2
    (tmp_path / "log.jsonl").write_text('{"step": 1}\n{"step": 2, "v_m')  # the crash cut this line
    T._log(tmp_path, step=3)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 3 and len(lines) == 3
    st.finish(seconds=1.0)
    assert json.loads(st.done.read_text()) == {"seconds": 1.0} and not list(tmp_path.glob("*.tmp"))

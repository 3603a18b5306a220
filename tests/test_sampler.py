"""cogviz.generate reproduces the diffusers pipeline, and names every stage of the concatenation."""
import numpy as np
import pytest
import torch
from diffusers import CogVideoXDPMScheduler
from PIL import Image

import cogviz.models as M
from cogviz.condition import concat_condition
from cogviz.errors import CogvizError
from cogviz.experiment import generate
from cogviz.sampler import Trace
from cogviz.testing import tiny_random_pipeline

PROMPT = "a red circle moves left"


def noise_image(h, w, seed=0):
    return Image.fromarray(np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.uint8))


def reference(pipe, g, num_frames, guidance, dyn, output_type):
    h, w = g.fitted.size
    frames = pipe(image=g.fitted.image, prompt=PROMPT, negative_prompt="", height=h, width=w, num_frames=num_frames,
                num_inference_steps=4, guidance_scale=guidance, use_dynamic_cfg=dyn,
                max_sequence_length=M.max_sequence_length(pipe),
                generator=torch.Generator(pipe._execution_device).manual_seed(3),  # the device cogviz draws on
                output_type=output_type).frames
    return frames.cpu() if isinstance(frames, torch.Tensor) else frames


@pytest.mark.parametrize("family,frames", [("1.0", 9), ("1.5", 17)])
@pytest.mark.parametrize("scheduler", ["ddim", "dpm"])
@pytest.mark.parametrize("guidance,dyn", [(1.0, False), (6.0, False), (6.0, True)])
def test_equal_to_the_pipeline_on_tiny_models(family, frames, scheduler, guidance, dyn):
    pipe = tiny_random_pipeline(family)
    if scheduler == "dpm":
        pipe.scheduler = CogVideoXDPMScheduler.from_config(pipe.scheduler.config)
    g = generate(pipe, noise_image(32, 32), PROMPT, num_frames=frames, steps=4, guidance=guidance,
                 dynamic_cfg=dyn, seed=3, progress=False)
    ref = reference(pipe, g, frames, guidance, dyn, "latent")
    torch.testing.assert_close(g.trace["latents.final"], ref, rtol=0, atol=1e-6)


@pytest.fixture
def full_fp32():
    """On a GPU, cuDNN's TF32 convolutions (PyTorch's default) round differently call to call: the two
    loops came out 2.7e-3 apart on an H200, and equal within 1e-6 with TF32 off (measured)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_equal_to_the_pipeline_on_the_toy_model(full_fp32):
    pipe = M.load_pipeline("toy")
    g = generate(pipe, noise_image(64, 96), PROMPT, steps=4, seed=3, progress=False)
    torch.testing.assert_close(g.trace["latents.final"], reference(pipe, g, 17, 6.0, False, "latent"),
                               rtol=0, atol=1e-6)
    frames = reference(pipe, g, 17, 6.0, False, "np")[0]  # (F, H, W, 3) in [0, 1]
    assert g.frames.shape == (17, 64, 96, 3) and g.frames.dtype == np.uint8
    assert np.abs(g.frames.astype(np.float32) - frames * 255).max() <= 1.0


def test_the_concatenation_is_what_the_transformer_reads():
    pipe = tiny_random_pipeline()
    g = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=3, seed=0, progress=False,
                 record=("z_img", "step/*/input", "step/*/z_t"))
    z_img = g.trace["z_img"]
    assert z_img.shape == (1, 3, 16, 4, 4)
    assert z_img[:, 0].abs().sum() > 0 and torch.all(z_img[:, 1:] == 0)  # only latent frame 0 holds the image
    for i in range(3):
        x = g.trace[f"step/{i}/input"]
        assert x.shape == (2, 3, 32, 4, 4)  # CFG batch of 2, 16 + 16 channels
        assert torch.equal(x[:, :, 16:], torch.cat([z_img] * 2))  # the image half never changes
        torch.testing.assert_close(x[0, :, :16], g.trace[f"step/{i}/z_t"][0])  # the noise half moves
    assert not torch.equal(g.trace["step/0/z_t"], g.trace["step/2/z_t"])


def test_recording_is_selective_and_round_trips(tmp_path):
    pipe = tiny_random_pipeline()
    g = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=2, progress=False)
    assert "step/0/input" not in g.trace and "z_img" in g.trace and "frames" in g.trace
    g2 = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=2, progress=False, record="step/1/*")
    blocks = len(pipe.transformer.transformer_blocks)  # a wildcard reaches the block points too
    assert sorted(g2.trace.names()) == sorted(["step/1/input", "step/1/pred", "step/1/z_t", "step/1/x0",
                                               *[f"step/1/block/{b}/{what}" for b in range(blocks)
                                                 for what in ("hidden", "lens", "readmap", "readtokens", "readpos", "words",
                                                                      "concepts")]])
    assert all(t.device.type == "cpu" for t in g.trace.tensors.values())
    path = g.trace.save(tmp_path / "trace.safetensors")
    back = Trace.load(path)
    assert sorted(back.names()) == sorted(g.trace.names()) and back.meta["prompt"] == PROMPT
    for name in back.names():
        assert torch.equal(back[name], g.trace[name])
    assert b"pickle" not in path.read_bytes()[:2000]


def test_concat_condition_checks_shapes():
    with pytest.raises(CogvizError, match="same"):
        concat_condition(torch.zeros(1, 2, 16, 4, 4), torch.zeros(1, 1, 16, 4, 4))


# ----------------------------------------------------------------------------- interventions
from cogviz.sampler import Intervention  # noqa: E402


def test_zeroing_z_img_removes_the_anchor_on_the_toy():
    pipe = M.load_pipeline("toy")
    from cogviz.toy.scenes import prompt_for, render_scene, sample_scene
    from cogviz.trainer.evaluate import psnr_uint8

    scene = sample_scene(1_000_000_001)  # a held-out scene
    truth = render_scene(scene)
    image, prompt = Image.fromarray(truth[0]), prompt_for(scene)
    seen = []
    zero = Intervention("z_img", lambda z, ctx: (seen.append(ctx), torch.zeros_like(z))[1])
    kept = generate(pipe, image, prompt, steps=20, progress=False)
    gone = generate(pipe, image, prompt, steps=20, progress=False, interventions=[zero])
    assert seen[0].name == "z_img" and seen[0].step is None
    assert torch.all(gone.z_img == 0)
    assert psnr_uint8(kept.frames[0], truth[0]) - psnr_uint8(gone.frames[0], truth[0]) > 6


def test_input_intervention_on_one_cfg_half_and_context():
    pipe = tiny_random_pipeline()
    ctxs = []

    def only_cond(x, ctx):
        ctxs.append(ctx)
        y = x.clone()
        y[:, :, 16:] = 0  # drop the image channels of the conditional half
        return y

    g = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=2, progress=False, record="step/*/input",
                 interventions=[Intervention("step/*/input", only_cond, half="cond")])
    x = g.trace["step/0/input"]
    assert torch.all(x[1, :, 16:] == 0) and x[0, :, 16:].abs().sum() > 0  # negative prompt half untouched
    assert [c.step for c in ctxs] == [0, 1] and all(c.half == "cond" for c in ctxs)
    assert ctxs[0].timestep == int(pipe.scheduler.timesteps[0])


def test_pred_and_z_t_interventions_change_the_result_and_nothing_stays_attached():
    pipe = tiny_random_pipeline()
    base = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=2, progress=False)
    g = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=2, progress=False,
                 interventions=[Intervention("step/1/pred", lambda p, c: p * 0), Intervention("step/0/z_t", lambda z, c: z)])
    assert not torch.equal(g.trace["latents.final"], base.trace["latents.final"])
    again = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=2, progress=False)
    assert torch.equal(again.trace["latents.final"], base.trace["latents.final"])


def test_bad_intervention_names_the_point_and_step():
    pipe = tiny_random_pipeline()
    with pytest.raises(CogvizError, match=r"step/1/pred \(step 1\).*shape"):
        generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=2, progress=False,
                 interventions=[Intervention("step/1/pred", lambda p, c: p[:, :1])])
    with pytest.raises(CogvizError, match="z_img.*float64"):
        generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=2, progress=False,
                 interventions=[Intervention("z_img", lambda z, c: z.double())])


def test_keyboard_interrupt_leaves_the_pipeline_usable():
    pipe = tiny_random_pipeline()
    base = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=3, progress=False)

    def stop(info):
        if info.step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=3, progress=False, callback=stop)
    again = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=3, progress=False)
    assert torch.equal(again.trace["latents.final"], base.trace["latents.final"])


# ------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs,match", [
    (dict(num_frames=10), r"8k\+1 frames.*nearest valid: 9 or 17"),
    (dict(steps=0), "steps=0"),
    (dict(guidance=-1.0), "guidance"),
    (dict(prompt=""), "prompt is empty"),
    (dict(prompt=" ".join(["red"] * 40)), "41 tokens; this model reads 16"),
])
def test_validation_before_compute(kwargs, match):
    pipe = tiny_random_pipeline()
    args = dict(image=noise_image(32, 32), prompt=PROMPT, num_frames=9, steps=2, progress=False) | kwargs
    with pytest.raises(CogvizError, match=match):
        generate(pipe, **args)


def test_validation_15_frames_and_wrong_fitted_size():
    from cogviz import fit_image

    with pytest.raises(CogvizError, match=r"16k\+1.*17 or 33"):
        generate(tiny_random_pipeline("1.5"), noise_image(32, 32), PROMPT, num_frames=25, steps=2, progress=False)
    with pytest.raises(CogvizError, match="fit_image"):
        generate(tiny_random_pipeline(), fit_image(noise_image(32, 32), (48, 48)), PROMPT, num_frames=9, steps=2,
                 progress=False)


def test_15_models_run_at_the_fitted_size_and_match_the_pipeline():
    from cogviz import fit_image

    pipe = tiny_random_pipeline("1.5")
    g = generate(pipe, fit_image(noise_image(40, 70), (16, 32)), PROMPT, num_frames=17, steps=3, seed=3,
                 progress=False)
    assert g.frames.shape == (17, 16, 32, 3) and g.trace.meta["height"] == 16
    ref = pipe(image=g.fitted.image, prompt=PROMPT, negative_prompt="", height=16, width=32, num_frames=17,
               num_inference_steps=3, guidance_scale=6.0, max_sequence_length=M.max_sequence_length(pipe),
               generator=torch.Generator().manual_seed(3), output_type="latent").frames
    torch.testing.assert_close(g.trace["latents.final"], ref, rtol=0, atol=1e-6)
    with pytest.raises(CogvizError, match="multiples of 16"):
        generate(pipe, noise_image(40, 70), PROMPT, num_frames=17, steps=2, size=(40, 72), progress=False)
    with pytest.raises(CogvizError, match="covers at most 32x32"):
        generate(pipe, noise_image(40, 70), PROMPT, num_frames=17, steps=2, size=(48, 64), progress=False)
    with pytest.raises(CogvizError, match="learned positional embeddings fix it at 32x32"):
        generate(tiny_random_pipeline(), noise_image(32, 32), PROMPT, num_frames=9, steps=2, size=(48, 48),
                 progress=False)


def test_step_info_predicts_the_clean_latent():
    pipe = tiny_random_pipeline()
    seen = []
    g = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=4, progress=False, callback=seen.append)
    assert [s.step for s in seen] == [0, 1, 2, 3] and all(s.steps == 4 for s in seen)
    assert [s.timestep for s in seen] == [int(t) for t in pipe.scheduler.timesteps]
    assert seen[-1].x0.shape == g.trace["latents.final"].shape
    # DDIM's last step lands on its own clean prediction (alpha_prev = 1): x0 is what the step returns
    torch.testing.assert_close(seen[-1].x0, g.trace["latents.final"], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(seen[0].x0, seen[-1].x0)  # the prediction moves over the steps


def test_decode_video_false_stops_at_the_latents():
    pipe = tiny_random_pipeline()
    g = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=3, progress=False, decode_video=False)
    assert g.frames is None and "frames" not in g.trace
    assert torch.equal(g.trace["latents.final"], _final(pipe))


def test_on_video_sees_each_variant_as_it_decodes_in_order():
    """``generate_variants(on_video=...)`` hands over each generation as its video is decoded (the
    same object returned), before the later variants decode; without a decode, never."""
    from cogviz.experiment import generate_variants

    pipe, seen = tiny_random_pipeline(), []
    variants = [None, {"kind": "zero_image"}, {"kind": "noise_image", "sigma": 0.5}]
    gens = generate_variants(pipe, noise_image(32, 32), PROMPT, variants, num_frames=9, steps=2, progress=False,
                             batch=1, on_video=lambda i, g: seen.append((i, g, g.frames.copy())))
    assert [i for i, _, _ in seen] == [0, 1, 2] and all(g is gens[i] for i, g, _ in seen)
    assert all(np.array_equal(frames, gens[i].frames) for i, _, frames in seen)
    assert not np.array_equal(gens[0].frames, gens[1].frames)
    seen.clear()
    generate_variants(pipe, noise_image(32, 32), PROMPT, variants, num_frames=9, steps=2, progress=False,
                      decode_video=False, on_video=lambda i, g: seen.append(i))
    assert seen == []


def test_full_size_5b_architecture_builds_with_the_real_configuration():
    import logging

    from cogviz.testing import full_size_random_pipeline

    said = []
    hear = logging.Handler(logging.WARNING)
    hear.emit = said.append
    logging.getLogger("diffusers").addHandler(hear)
    try:
        pipe = full_size_random_pipeline("meta")  # shapes only, no memory
    finally:
        logging.getLogger("diffusers").removeHandler(hear)
    assert [r.getMessage()[:60] for r in said] == []  # lesson 03 builds it: no warning for the reader
    assert pipe.transformer.dtype == pipe.vae.dtype == torch.bfloat16
    n = sum(p.numel() for p in pipe.transformer.parameters())
    assert 5.5e9 < n < 5.65e9 and pipe.transformer.config.in_channels == 32
    assert pipe.vae.config.block_out_channels == (128, 256, 256, 512) and pipe.vae.config.latent_channels == 16
    assert pipe.transformer.patch_embed.proj.weight.shape == (3072, 32, 2, 2)


def _final(pipe):
    return generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=3, progress=False).trace["latents.final"]


def test_works_on_offloaded_and_compiled_pipelines():
    """The loop calls the pipeline's modules as they are: accelerate hooks, group offload, torch.compile."""
    base = _final(tiny_random_pipeline())
    offloaded = tiny_random_pipeline()
    offloaded.enable_model_cpu_offload(device="cpu")  # the same hooks as on a GPU, onloading to the CPU
    assert torch.equal(_final(offloaded), base)
    grouped = tiny_random_pipeline()
    grouped.transformer.enable_group_offload(onload_device=torch.device("cpu"), offload_type="leaf_level")
    assert torch.equal(_final(grouped), base)
    compiled = tiny_random_pipeline()
    compiled.transformer = torch.compile(compiled.transformer, backend="aot_eager")  # dynamo + AOT graphs
    assert type(compiled.transformer).__name__ == "OptimizedModule"
    torch.testing.assert_close(_final(compiled), base, rtol=0, atol=1e-6)


def test_out_of_memory_names_the_memory_options():
    from cogviz.errors import OutOfMemoryError
    from cogviz.sampler import Intervention

    pipe = tiny_random_pipeline()

    def oom(x, ctx):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with pytest.raises(OutOfMemoryError, match="model_offload.*sequential_offload.*vae_tiling") as e:
        generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=3, progress=False,
                 interventions=[Intervention("step/1/input", oom)])
    assert isinstance(e.value, MemoryError) and "Tried to allocate 20.00 GiB" in str(e.value)
    assert torch.equal(_final(pipe), _final(tiny_random_pipeline()))  # still usable


def test_works_on_a_quantized_transformer():
    """int8 dynamic quantization (torch's own): the loop still equals the pipeline on the same modules."""
    import warnings

    pipe = tiny_random_pipeline()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its successor, torchao
        pipe.transformer = torch.ao.quantization.quantize_dynamic(pipe.transformer, {torch.nn.Linear},
                                                                  dtype=torch.qint8)
    assert "quantized" in type(pipe.transformer.transformer_blocks[0].ff.net[2]).__module__
    g = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=3, seed=3, progress=False)
    ref = pipe(image=g.fitted.image, prompt=PROMPT, negative_prompt="", height=32, width=32, num_frames=9,
               num_inference_steps=3, guidance_scale=6.0, max_sequence_length=M.max_sequence_length(pipe),
               generator=torch.Generator().manual_seed(3), output_type="latent").frames
    torch.testing.assert_close(g.trace["latents.final"], ref, rtol=0, atol=1e-6)
    fp32 = generate(tiny_random_pipeline(), noise_image(32, 32), PROMPT, num_frames=9, steps=3, seed=3,
                    progress=False).trace["latents.final"]
    assert not torch.allclose(g.trace["latents.final"], fp32, atol=1e-5)  # the int8 weights really ran


@pytest.mark.parametrize("family,frames", [("1.0", 9), ("1.5", 17)])
@pytest.mark.parametrize("scheduler", ["ddim", "dpm"])
def test_variants_batched_equal_separate_calls(family, frames, scheduler):
    """generate_variants: each variant equals its own generate call (DPM's per-step draws included)."""
    import cogviz.ablations as A
    from cogviz.experiment import generate_variants

    pipe = tiny_random_pipeline(family)
    if scheduler == "dpm":
        pipe.scheduler = CogVideoXDPMScheduler.from_config(pipe.scheduler.config)
    image = noise_image(32, 32)
    variants = [None, A.ZeroImage(), A.NoiseImage(0.5), A.ImageGuidance(2.0), [A.FlipImage(), A.ScaleImage(0.5)]]
    kw = dict(num_frames=frames, steps=4, seed=3, progress=False, record=("z_img", "latents.final"))
    many = generate_variants(pipe, image, PROMPT, variants, **kw)
    assert [g.trace.meta["ablations"] for g in many][1:3] == [[{"kind": "zero_image"}],
                                                             [{"kind": "noise_image", "sigma": 0.5, "space": "pixel",
                                                               "seed": 0}]]
    for v, g in zip(variants, many):
        one = generate(pipe, image, PROMPT, ablations=[] if v is None else v if isinstance(v, list) else [v], **kw)
        assert torch.equal(g.z_img, one.z_img)  # the same posterior draw (and pixel noise) per variant
        torch.testing.assert_close(g.trace["latents.final"], one.trace["latents.final"], rtol=0, atol=1e-4)
        assert np.abs(g.frames.astype(int) - one.frames.astype(int)).max() <= 2
    assert not torch.allclose(many[0].trace["latents.final"], many[1].trace["latents.final"], atol=1e-2)
    # batch=1 is the one-variant loop: bit for bit
    single = generate_variants(pipe, image, PROMPT, variants[:2], batch=1, **kw)
    for v, g in zip(variants[:2], single):
        one = generate(pipe, image, PROMPT, ablations=[] if v is None else [v], **kw)
        assert torch.equal(g.trace["latents.final"], one.trace["latents.final"])


def test_variants_per_forward_follows_the_memory_budget():
    from cogviz.experiment import generate_variants
    from cogviz.sampler import variants_per_forward

    pipe = M.load_pipeline("toy")
    # the toy at 17 frames: 5 x 4 x 6 + 16 = 136 tokens x 128 wide x 4 B x 12 = 835,584 B a row
    assert variants_per_forward(pipe, 64, 96, 5, 2, free_bytes=2 * 835_584 * 2 * 10) == 10
    assert variants_per_forward(pipe, 64, 96, 5, 3, free_bytes=2 * 835_584 * 2 * 10) == 6
    assert variants_per_forward(pipe, 64, 96, 5, 2, free_bytes=1000) == 1  # never fewer than one
    assert variants_per_forward(pipe, 64, 96, 5, 2) >= 8  # this machine's RAM holds the toy's rows easily
    for bad in (0, -1, 1.5, "many", True):
        with pytest.raises(CogvizError, match="batch="):
            generate_variants(pipe, noise_image(64, 96), PROMPT, [None], steps=1, batch=bad, progress=False)
    with pytest.raises(CogvizError, match="variants is empty"):
        generate_variants(pipe, noise_image(64, 96), PROMPT, [], steps=1, progress=False)


def test_a_recording_over_max_record_bytes_is_refused_before_compute(monkeypatch):
    """Issue 42: nothing estimated memory; a block record on 5b-I2V at 50 steps is about 450 GB and
    the kernel died with no error. The estimate comes from the call's shapes, before any compute."""
    import cogviz.sampler as S
    from cogviz.budget import record_costs
    from cogviz.errors import CogvizError
    from cogviz.testing import tiny_random_pipeline

    pipe = tiny_random_pipeline(num_layers=2)
    monkeypatch.setattr(S, "_denoise", lambda *a, **k: pytest.fail("computed"))
    with pytest.raises(CogvizError, match=r"would record .* over max_record_bytes=1000000 .*"
                                          r"'step/\*/block/\*/hidden' costs most"):
        generate(pipe, np.zeros((32, 32, 3), np.uint8), "x", steps=200, progress=False,
                        record=("z_img", "step/*/block/*/hidden"), max_record_bytes=1_000_000)
    # the estimate is the bytes the trace then holds, on both families (1.5 pads its latent frames)
    monkeypatch.undo()
    for each, frames in ((pipe, 9), (tiny_random_pipeline("1.5", num_layers=2), 17)):
        g = generate(each, np.zeros((32, 32, 3), np.uint8), "x", steps=3, progress=False, num_frames=frames,
                     record=("step/*/input", "step/*/z_t", "z_img", "step/*/block/*/hidden", "step/*/x0",
                             "step/*/block/0/readmap", "step/0/block/*/readpos", "step/1/block/0/readtokens",
                             "step/*/block/0/lens", "step/1/block/0/words", "step/0/block/1/concepts"),
                     image_guidance=2.0)
        costs = record_costs(each, g.trace.patterns, height=32, width=32, num_frames=g.trace.meta["num_frames"],
                             steps=3, cfg=True, image_free=True)
        assert sum(costs.values()) == g.trace.nbytes(), (g.trace.meta["plan"], costs)


def test_the_estimate_of_a_real_size_block_record():
    """The figure the docs give: 5b-I2V (its transformer config, no weights), 49 frames, 50 steps,
    every block's hidden states: 216 MB a block and step, about 453 GB in all."""
    from types import SimpleNamespace

    from cogviz.budget import record_costs

    config = SimpleNamespace(in_channels=32, out_channels=16, patch_size=2, patch_size_t=None, max_text_seq_length=226,
                             text_embed_dim=4096, num_attention_heads=48, attention_head_dim=64)
    five_b = SimpleNamespace(transformer=SimpleNamespace(config=config, dtype=torch.bfloat16,
                                                         transformer_blocks=[None] * 42),
                             vae_scale_factor_spatial=8)
    costs = record_costs(five_b, ["step/*/block/*/hidden"], height=480, width=720, num_frames=49, steps=50, cfg=True)
    assert costs["step/*/block/*/hidden"] == 2 * 13 * 30 * 45 * 3072 * 2 * 42 * 50


@pytest.mark.parametrize("scheduler", ["ddim", "dpm"])
def test_x0_is_the_schedulers_own_prediction_of_the_clean_latent(scheduler):
    """Issue 44: step/{i}/x0 is diffusers' pred_original_sample for the step's guided prediction, on
    the DDIM and DPM schedulers; at the last DDIM step it is the final latent."""
    import copy

    pipe = tiny_random_pipeline()
    if scheduler == "dpm":
        pipe.scheduler = CogVideoXDPMScheduler.from_config(pipe.scheduler.config)
    g = generate(pipe, noise_image(32, 32), PROMPT, num_frames=9, steps=4, seed=3, progress=False,
                 record=("step/*/z_t", "step/*/pred", "step/*/x0", "latents.final"), decode_video=False)
    sched = copy.deepcopy(pipe.scheduler)
    sched.set_timesteps(4)
    old = None
    for i, t in enumerate(sched.timesteps):
        z, pred = g.trace[f"step/{i}/z_t"], g.trace[f"step/{i}/pred"]
        if scheduler == "dpm":
            prev = sched.timesteps[i - 1] if i > 0 else None
            x0 = sched.step(pred, old, t, prev, z, generator=torch.Generator().manual_seed(0), return_dict=False)[1]
            old = x0
        else:
            x0 = sched.step(pred, t, z, return_dict=False)[1]
        torch.testing.assert_close(g.trace[f"step/{i}/x0"], x0, rtol=0, atol=1e-6)
    assert g.trace.stack("x0").shape[0] == 4
    if scheduler == "ddim":  # the last step's prediction is where the sampler lands
        torch.testing.assert_close(g.trace["step/3/x0"].to(g.trace["latents.final"].dtype), g.trace["latents.final"],
                                   rtol=0, atol=1e-5)


@pytest.mark.parametrize("family,frames", [("1.0", 9), ("1.5", 17)])
def test_the_last_blocks_lens_is_the_models_output_and_earlier_blocks_differ(family, frames):
    """Issue 44: the block lens sends block l's output through the model's final norms and projection;
    at the last block that is the transformer's own output, row for row."""
    from cogviz.lens import x0_of

    pipe = tiny_random_pipeline(family, num_layers=2)
    outputs = []
    hook = pipe.transformer.register_forward_hook(lambda m, a, o: outputs.append(o[0].float()))
    try:
        g = generate(pipe, noise_image(32, 32), PROMPT, num_frames=frames, steps=2, seed=1, progress=False,
                     decode_video=False, record=("step/*/block/*/lens", "step/*/z_t", "step/*/x0"), guidance=1.0)
    finally:
        hook.remove()
    for i in range(2):
        torch.testing.assert_close(g.trace[f"step/{i}/block/1/lens"], outputs[i], rtol=0, atol=1e-6)
        assert not torch.allclose(g.trace[f"step/{i}/block/0/lens"], outputs[i], atol=1e-3)
    # without guidance the last block's clean-latent guess is the sampler's x0
    t = pipe.scheduler.timesteps[0]
    torch.testing.assert_close(x0_of(pipe.scheduler, g.trace["step/0/z_t"], g.trace["step/0/block/1/lens"], t),
                               g.trace["step/0/x0"].float(), rtol=0, atol=1e-5)

"""Ablations as data: serialization, validation, what each does to the named points, and the
science they measure on the toy model (margins measured on seeds 0-2, 20 steps)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import cogviz.ablations as A
import cogviz.models as M
from cogviz.encode import encode_image
from cogviz.errors import AblationError, CogvizError
from cogviz.experiment import generate
from cogviz.metrics import anchor_metrics
from cogviz.testing import tiny_random_pipeline
from cogviz.toy.scenes import prompt_for, render_scene, sample_scene
from cogviz.trainer.evaluate import psnr_uint8

SEEDS = (0, 1, 2)
STEPS = 20


def one_of_each(image) -> list:
    """Every kind once, with parameters valid on a 32 x 32 tiny pipeline and on the 64 x 96 toy."""
    return [A.Baseline(), A.ZeroImage(), A.SwapImage(image), A.ScaleImage(0.5), A.NoiseImage(0.1),
            A.NoiseImage(0.5, space="latent", seed=3), A.MaskImage((0, 0, 16, 24)),
            A.MaskImage([8, 8, 24, 24], keep=True), A.ShiftImage(8, -8), A.FlipImage(), A.FlipImage("vertical"),
            A.StepWindow(0.25, 0.75), A.FillFrames(), A.LowPassImage(0.5, 0.5), A.ImageGuidance(2.0),
            A.AttentionKnockout(), A.ScaleAttention(0.5, layers=[0], queries=[1, 2], keys="text"),
            A.PatchActivations(image, frames="later", start=0.5), A.EndImage(image, strength=0.8),
            A.ReplaceFrame(), A.ReplaceFrame(0.0, 0.5, seed=2), A.ImageGuidance(1.0, scale_end=3.0),
            A.NoiseImage(0.5, space="latent", schedule="timestep")]


def test_every_kind_is_in_the_registry_and_documented():
    assert set(A.KINDS) == {"baseline", "zero_image", "swap_image", "scale_image", "noise_image", "mask_image",
                            "shift_image", "flip_image", "step_window", "fill_frames", "low_pass_image",
                            "image_guidance", "attention_knockout", "scale_attention", "patch_activations",
                            "end_image", "replace_frame"}
    for kind, cls in A.KINDS.items():
        assert cls.kind == kind and len(cls.__doc__) > 80 and cls.in_distribution


def test_round_trip_through_json(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)
    path = tmp_path / "other.png"
    from PIL import Image

    Image.fromarray(image).save(path)
    items = one_of_each(image) + [A.SwapImage(str(path)), A.SwapImage(path)]
    assert {a.kind for a in items} == set(A.KINDS)
    for a in items:
        d = json.loads(json.dumps(a.to_dict()))
        assert d["kind"] == a.kind
        assert A.from_dict(d) == a, a
    embedded = A.SwapImage(image).to_dict()["image"]
    assert np.array_equal(np.asarray(A.ImageRef.from_dict(embedded).image()), image)
    assert A.SwapImage(path).to_dict()["image"] == str(path)


@pytest.mark.parametrize("make,field,fragment", [
    (lambda: A.NoiseImage(-0.1), "noise_image.sigma=-0.1", "[0.0, 10.0]"),
    (lambda: A.NoiseImage(0.1, space="fourier"), "noise_image.space='fourier'", "'pixel', 'latent'"),
    (lambda: A.NoiseImage("0.1"), "noise_image.sigma='0.1'", "a number"),
    (lambda: A.StepWindow(-0.1, 0.5), "step_window.start=-0.1", "[0.0, 1.0]"),
    (lambda: A.StepWindow(0.2, 1.5), "step_window.end=1.5", "[0.0, 1.0]"),
    (lambda: A.StepWindow(0.6, 0.6), "step_window.end=0.6", "start < end"),
    (lambda: A.MaskImage((10, 0, 5, 8)), "mask_image.box=[10, 0, 5, 8]", "x0 < x1"),
    (lambda: A.MaskImage((0, 0, 8)), "mask_image.box=(0, 0, 8)", "four whole numbers"),
    (lambda: A.MaskImage((0, 0, 8, 8), keep="yes"), "mask_image.keep='yes'", "true"),
    (lambda: A.ShiftImage(5, 0), "shift_image.dx=5", "multiple of 8"),
    (lambda: A.ScaleImage(float("nan")), "scale_image.alpha=nan", "[-10.0, 10.0]"),
    (lambda: A.ScaleImage(True), "scale_image.alpha=True", "a number"),
    (lambda: A.LowPassImage(0.0, 0.1), "low_pass_image.factor=0.0", "(0.0, 1.0]"),
    (lambda: A.ImageGuidance(-1), "image_guidance.scale=-1", "[0.0, 50.0]"),
    (lambda: A.SwapImage("/no/such/image.png"), "swap_image.image='/no/such/image.png'", "no such file"),
    (lambda: A.from_dict({"kind": "blur"}), "kind='blur'", "zero_image"),
    (lambda: A.from_dict({"kind": "zero_image", "alpha": 1}), "unknown field(s) alpha", "no parameters"),
    (lambda: A.from_dict(["zero_image"]), "got list", "'kind'"),
    (lambda: A.resolve(image_window=(0.5,)), "image_window=(0.5,)", "(start, end)"),
    (lambda: A.resolve([A.ImageGuidance(2)], image_guidance=3), "more than once", "one image guidance"),
])
def test_bad_parameters_name_the_field_value_and_range(make, field, fragment):
    with pytest.raises(AblationError) as e:
        make()
    assert field in str(e.value) and fragment in str(e.value)
    assert isinstance(e.value, CogvizError)


def test_size_checks_fail_before_any_compute():
    pipe = tiny_random_pipeline()
    calls = []
    pipe.vae.encode = lambda *a, **k: calls.append(1)  # any compute would land here first
    image = np.zeros((32, 32, 3), np.uint8)
    for bad, fragment in [(A.MaskImage((0, 0, 40, 8)), "outside the 32x32 fitted image"),
                          (A.ShiftImage(32, 0), "out of view"),
                          (A.StepWindow(0.9, 0.95), "holds none of the 4 steps")]:
        with pytest.raises(AblationError, match=fragment.replace("(", r"\(")):
            generate(pipe, image, "a red circle", num_frames=9, steps=4, progress=False, ablations=[bad])
    with pytest.raises(AblationError, match="step_window.end=2"):
        generate(pipe, image, "a red circle", num_frames=9, steps=4, progress=False, image_window=(0, 2))
    assert calls == []


@pytest.mark.parametrize("family,frames", [("1.0", 9), ("1.5", 17)])
def test_every_kind_runs_on_the_tiny_pipelines(family, frames):
    pipe = tiny_random_pipeline(family)
    rng = np.random.default_rng(1)
    image, other = (rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(2))
    plain = generate(pipe, image, "a red circle", num_frames=frames, steps=4, seed=5, progress=False,
                     record=("z_img", "latents.final"))
    for a in one_of_each(other):
        g = generate(pipe, image, "a red circle", num_frames=frames, steps=4, seed=5, progress=False, ablations=[a],
                     record=("z_img", "latents.final"))
        assert g.frames.shape == plain.frames.shape and g.trace.meta["ablations"] == [a.to_dict()]
        changed = not torch.equal(g.trace["latents.final"], plain.trace["latents.final"])
        assert changed == (a.kind != "baseline"), a
        # the image lives on latent frame 0 in both families (1.5's leading padding frame included)
        z = g.trace["z_img"]
        if a.kind == "end_image":  # the end image on the last latent frame only
            assert torch.count_nonzero(z[:, 1:-1]) == 0 and torch.count_nonzero(z[:, -1]) > 0, a
        elif a.kind not in ("fill_frames",):
            assert torch.count_nonzero(z[:, 1:]) == 0, a
        assert z.shape == plain.trace["z_img"].shape


def test_latent_ablations_do_what_they_say_at_the_named_points():
    pipe = tiny_random_pipeline()
    image = np.random.default_rng(2).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    run = lambda *abl, record=("z_img",): generate(pipe, image, "a red circle", num_frames=9, steps=4, seed=1,
                                                    progress=False, ablations=list(abl), record=record).trace
    z = run()["z_img"]  # (1, 3, 16, 4, 4)
    assert torch.equal(run(A.ZeroImage())["z_img"], torch.zeros_like(z))
    assert torch.equal(run(A.ScaleImage(0.5))["z_img"], z * 0.5)
    assert torch.equal(run(A.FlipImage())["z_img"], z.flip(-1))
    masked = run(A.MaskImage((0, 0, 16, 9)))["z_img"]  # x 0-15 -> cells 0-1; y 0-8 -> rows 0-1 (touched)
    assert torch.all(masked[..., :2, :2] == 0) and torch.equal(masked[..., 2:, :], z[..., 2:, :])
    kept = run(A.MaskImage((0, 0, 16, 9), keep=True))["z_img"]
    assert torch.equal(kept + masked, z)
    shifted = run(A.ShiftImage(8, -8))["z_img"]  # one cell right, one cell up
    assert torch.equal(shifted[..., :3, 1:], z[..., 1:, :3]) and torch.all(shifted[..., 3, :] == 0)
    filled = run(A.FillFrames())["z_img"]
    assert all(torch.equal(filled[:, f], z[:, 0]) for f in range(3))
    noisy = run(A.NoiseImage(0.5, space="latent"))["z_img"]
    assert torch.all(noisy[:, 1:] == 0) and 0.4 < float((noisy - z)[:, 0].std()) < 0.6
    # composition: applied in order (zero, then scale, is zero; fill then flip mirrors every frame)
    assert torch.equal(run(A.ZeroImage(), A.ScaleImage(2.0))["z_img"], torch.zeros_like(z))
    assert torch.equal(run(A.FillFrames(), A.FlipImage())["z_img"][:, 2], z[:, 0].flip(-1))


def test_pixel_noise_acts_before_encoding_on_the_same_generator_state():
    pipe = tiny_random_pipeline()
    image = np.random.default_rng(3).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    run = lambda *abl: generate(pipe, image, "a red circle", num_frames=9, steps=2, seed=4, progress=False,
                                ablations=list(abl), record=("image.pixels", "z_img")).trace
    clean, noisy = run(), run(A.NoiseImage(0.2))
    d = noisy["image.pixels"] - clean["image.pixels"]
    assert 0.18 < float(d.std()) < 0.22 and abs(float(d.mean())) < 0.02
    assert torch.equal(run(A.NoiseImage(0.2))["image.pixels"], noisy["image.pixels"])  # its own seed
    assert not torch.equal(run(A.NoiseImage(0.2, seed=1))["image.pixels"], noisy["image.pixels"])


def test_swap_uses_the_same_posterior_draw_as_encoding_the_other_image():
    pipe = tiny_random_pipeline()
    rng = np.random.default_rng(4)
    image, other = (rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(2))
    g = generate(pipe, image, "a red circle", num_frames=9, steps=2, seed=6, progress=False,
                 ablations=[A.SwapImage(other)])
    torch.testing.assert_close(g.z_img, encode_image(pipe, other, num_frames=9, generator=6), rtol=0, atol=0)


def test_step_window_and_low_pass_act_on_the_image_channels_of_chosen_steps():
    pipe = tiny_random_pipeline()
    image = np.random.default_rng(5).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    run = lambda *abl: generate(pipe, image, "a red circle", num_frames=9, steps=8, seed=1, progress=False,
                                ablations=list(abl), record=("step/*/input", "z_img")).trace
    plain = run()
    tr = run(A.StepWindow(0.25, 0.5))  # steps 2 and 3 of 8
    for i in range(8):
        img = tr[f"step/{i}/input"][:, :, 16:]
        if i in (2, 3):
            assert torch.equal(img, plain[f"step/{i}/input"][:, :, 16:])
        else:
            assert torch.count_nonzero(img) == 0
    tr = run(A.LowPassImage(0.5, 0.25))  # steps 0 and 1 see a 2 x 2 -> 4 x 4 blur
    for i in range(8):
        img, ref = tr[f"step/{i}/input"][:, :, 16:], plain[f"step/{i}/input"][:, :, 16:]
        assert torch.equal(img, ref) == (i >= 2)
        assert torch.equal(img[:, 1:], ref[:, 1:])  # the zero latent frames stay zero
    F = torch.nn.functional
    sharp = plain["step/0/input"][:, 0, 16:]  # (2, 16, 4, 4): both CFG halves, latent frame 0
    want = F.interpolate(F.interpolate(sharp, size=(2, 2), mode="area"), size=(4, 4), mode="bilinear")
    torch.testing.assert_close(tr["step/0/input"][:, 0, 16:], want)
    tv = lambda z: float((z[..., 1:, :] - z[..., :-1, :]).abs().sum() + (z[..., 1:] - z[..., :-1]).abs().sum())
    assert tv(want) < 0.7 * tv(sharp)  # the fine structure is gone


def test_image_guidance_is_the_three_branch_formula():
    pipe = tiny_random_pipeline()
    image = np.random.default_rng(6).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    g = generate(pipe, image, "a red circle", num_frames=9, steps=3, seed=2, guidance=5.0, progress=False,
                 image_guidance=2.5, record=("step/*/input", "step/*/pred", "prompt_embeds"))
    x, embeds = g.trace["step/1/input"], g.trace["prompt_embeds"]
    assert x.shape[0] == 3 and torch.count_nonzero(x[2, :, 16:]) == 0 and torch.equal(x[2, :, :16], x[0, :, :16])
    t = pipe.scheduler.timesteps[1]
    with torch.no_grad():
        e = pipe.transformer(hidden_states=x, encoder_hidden_states=torch.cat([embeds, embeds[:1]]),
                             timestep=t.expand(3), image_rotary_emb=pipe._prepare_rotary_positional_embeddings(
                                 32, 32, 3, "cpu"), return_dict=False)[0].float()
    neg_img, txt_img, neg_free = e[0:1], e[1:2], e[2:3]
    want = neg_free + 2.5 * (neg_img - neg_free) + 5.0 * (txt_img - neg_img)
    torch.testing.assert_close(g.trace["step/1/pred"], want, rtol=1e-5, atol=1e-5)


def test_the_knobs_build_the_same_ablations_and_traces_keep_them(tmp_path):
    pipe = tiny_random_pipeline()
    image = np.random.default_rng(7).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    run = lambda **kw: generate(pipe, image, "a red circle", num_frames=9, steps=4, seed=3, progress=False,
                                record=("latents.final",), **kw)
    by_knobs = run(image_noise=0.1, image_strength=0.7, image_window=(0.0, 0.5), image_guidance=2.0)
    by_data = run(ablations=[A.NoiseImage(0.1), A.ScaleImage(0.7), A.StepWindow(0.0, 0.5), A.ImageGuidance(2.0)])
    by_dicts = run(ablations=[a.to_dict() for a in A.resolve(image_noise=0.1, image_strength=0.7,
                                                            image_window=(0.0, 0.5), image_guidance=2.0)])
    assert torch.equal(by_knobs.trace["latents.final"], by_data.trace["latents.final"])
    assert torch.equal(by_dicts.trace["latents.final"], by_data.trace["latents.final"])
    saved = by_knobs.trace.save(tmp_path / "t.safetensors")
    from cogviz.sampler import Trace

    assert [A.from_dict(d) for d in Trace.load(saved).meta["ablations"]] == list(A.resolve(
        image_noise=0.1, image_strength=0.7, image_window=(0.0, 0.5), image_guidance=2.0))


def test_scale_multiplies_the_latent_as_the_transformer_reads_it_on_both_families():
    """1.0 feeds 0.7 x the VAE's sample, 1.5 feeds it / 0.7: alpha multiplies what is fed, in both."""
    image = np.random.default_rng(8).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    for family, frames, factor in (("1.0", 9, 0.7), ("1.5", 17, 1 / 0.7)):
        pipe = tiny_random_pipeline(family)
        pixels = pipe.video_processor.preprocess(Image.fromarray(image), height=32, width=32)
        with torch.no_grad():
            raw = pipe.vae.encode(pixels.unsqueeze(2)).latent_dist.sample(torch.Generator().manual_seed(2))
        g = generate(pipe, image, "a red circle", num_frames=frames, steps=2, seed=2, progress=False,
                     ablations=[A.ScaleImage(0.5)])
        torch.testing.assert_close(g.z_img[:, 0], 0.5 * factor * raw[:, :, 0], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def toy():
    return M.load_pipeline("toy")


def scene(seed):
    s = sample_scene(1_000_000_000 + seed)
    return render_scene(s)[0], prompt_for(s)


def toy_run(pipe, seed, *ablations, **kw):
    image, prompt = scene(seed)
    return generate(pipe, image, prompt, steps=STEPS, seed=seed, progress=False, ablations=list(ablations), **kw)


@pytest.mark.slow
def test_baseline_is_plain_generate_bit_for_bit_and_unit_image_guidance_within_float_tolerance(toy):
    for seed in SEEDS[:2]:
        plain = toy_run(toy, seed)
        assert np.array_equal(toy_run(toy, seed, A.Baseline()).frames, plain.frames)
        assert torch.equal(toy_run(toy, seed, A.Baseline()).trace["latents.final"], plain.trace["latents.final"])
        guided = toy_run(toy, seed, A.ImageGuidance(1.0))
        torch.testing.assert_close(guided.trace["latents.final"], plain.trace["latents.final"], rtol=0, atol=1e-4)
        assert np.abs(guided.frames.astype(int) - plain.frames).max() <= 1
        assert guided.trace.meta["ablations"] == [{"kind": "image_guidance", "scale": 1.0}]


@pytest.mark.slow
def test_zeroing_the_image_costs_frame_zero_at_least_6_db(toy):
    # measured (shipped model): 23.4, 19.6, 21.3 dB lower on seeds 0-2
    for seed in SEEDS:
        image, _ = scene(seed)
        kept = psnr_uint8(toy_run(toy, seed).frames[0], image)
        zeroed = psnr_uint8(toy_run(toy, seed, A.ZeroImage()).frames[0], image)
        assert kept - zeroed >= 6.0, (seed, kept, zeroed)


@pytest.mark.slow
def test_swapped_image_pulls_frame_zero_towards_itself(toy):
    # measured (shipped model): frame 0 is 20.1, 11.9 and 13.5 dB closer to the swapped-in image on seeds 0-2
    for seed in SEEDS:
        image, _ = scene(seed)
        other = render_scene(sample_scene(2_000_000_000 + seed))[0]
        f0 = toy_run(toy, seed, A.SwapImage(other)).frames[0]
        assert psnr_uint8(f0, other) > psnr_uint8(f0, image) + 2.0, seed


@pytest.mark.slow
def test_growing_pixel_noise_lowers_mean_fidelity(toy):
    # measured mean SSIM over seeds 0-2 (shipped model): 0.805, 0.618, 0.340, 0.142 for sigma 0, 0.5, 1, 2
    # (the four sigmas of a seed go through the transformer together: generate_variants)
    from cogviz.experiment import generate_variants

    sigmas = (0.0, 0.5, 1.0, 2.0)
    ssim = []
    for seed in SEEDS:
        image, prompt = scene(seed)
        gens = generate_variants(toy, image, prompt, [A.NoiseImage(s) for s in sigmas], steps=STEPS, seed=seed,
                                 progress=False)
        ssim.append([anchor_metrics(g.frames, g.fitted)["ssim"].mean() for g in gens])
    fidelity = [float(f) for f in np.mean(ssim, axis=0)]
    assert all(a - b > 0.02 for a, b in zip(fidelity, fidelity[1:])), dict(zip(sigmas, fidelity))


@pytest.mark.slow
def test_every_kind_runs_on_the_toy(toy):
    other = render_scene(sample_scene(2_000_000_007))[0]
    kinds = one_of_each(other)
    image, prompt = scene(0)
    for a in kinds:  # 4 steps: each kind runs through the toy's full-size path (the effects are tested above)
        g = generate(toy, image, prompt, steps=4, seed=0, progress=False, ablations=[a])
        assert g.frames.shape == (17, 64, 96, 3) and g.trace.meta["ablations"] == [a.to_dict()]


# -- other ways to condition on an image (end frames, replacement, ramps, timestep noise) ----------------------
def test_new_fields_leave_old_ablations_as_they_were():
    # fields added later stay out of a kind's dict and label at their default: old dicts, labels and
    # sweep run ids are unchanged
    old = [{"kind": "image_guidance", "scale": 2.0}, {"kind": "noise_image", "sigma": 0.1, "space": "pixel", "seed": 0}]
    for d in old:
        assert A.from_dict(d).to_dict() == d
    assert A.ImageGuidance(2.0).label() == "image_guidance(scale=2)"
    assert A.ImageGuidance(1.0, scale_end=3.0).to_dict() == {"kind": "image_guidance", "scale": 1.0, "scale_end": 3.0}
    assert A.from_dict({"kind": "noise_image", "sigma": 0.2, "space": "latent", "schedule": "timestep"}).schedule == "timestep"


@pytest.mark.parametrize("make,fragment", [
    (lambda: A.NoiseImage(0.1, schedule="timestep"), "noise_image.schedule='timestep': .*space='latent'"),
    (lambda: A.NoiseImage(0.1, "latent", schedule="per_step"), "expected one of 'constant', 'timestep'"),
    (lambda: A.ImageGuidance(2.0, scale_end=-1), r"image_guidance.scale_end=-1"),
    (lambda: A.ReplaceFrame(0.5, 0.5), "expected start < end"),
    (lambda: A.EndImage("cogviz/samples/shapes.png", strength="full"), "end_image.strength='full'"),
    (lambda: A.from_dict({"kind": "replace_frames"}), "did you mean 'replace_frame'"),
])
def test_the_new_kinds_refuse_bad_parameters(make, fragment):
    with pytest.raises(AblationError, match=fragment):
        make()


def test_equal_ramp_and_zero_timestep_noise_are_the_baseline():
    from cogviz.experiment import generate_variants

    pipe = tiny_random_pipeline()
    image = np.random.default_rng(2).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    gs = generate_variants(pipe, image, "a red circle", [A.ImageGuidance(2.5), A.ImageGuidance(2.5, scale_end=2.5),
                                                         None, A.NoiseImage(0.0, "latent", schedule="timestep")],
                           num_frames=9, steps=4, seed=3, progress=False, record=("latents.final",))
    z = [g.trace["latents.final"] for g in gs]  # (batched: the rows of a forward differ, so within rounding)
    torch.testing.assert_close(z[1], z[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(z[3], z[2], rtol=1e-4, atol=1e-5)
    ramp = generate(pipe, image, "a red circle", num_frames=9, steps=4, seed=3, progress=False,
                    ablations=[A.ImageGuidance(1.0, scale_end=4.0)], record=("latents.final",)).trace["latents.final"]
    assert not torch.equal(ramp, z[0])


@pytest.mark.parametrize("family,frames", [("1.0", 9), ("1.5", 17)])
def test_the_new_kinds_batched_equal_their_separate_calls(family, frames):
    from cogviz.experiment import generate_variants

    pipe = tiny_random_pipeline(family)
    rng = np.random.default_rng(4)
    image, other = (rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(2))
    kinds = [A.EndImage(other), [A.ZeroImage(), A.ReplaceFrame()], A.ReplaceFrame(0.25, 0.75),
             A.ImageGuidance(1.0, scale_end=3.0), A.NoiseImage(0.3, "latent", schedule="timestep")]
    batched = generate_variants(pipe, image, "a red circle", kinds, num_frames=frames, steps=4, seed=1, progress=False,
                                record=("latents.final",))
    for a, g in zip(kinds, batched):
        alone = generate(pipe, image, "a red circle", num_frames=frames, steps=4, seed=1, progress=False,
                         ablations=a if isinstance(a, list) else [a], record=("latents.final",))
        torch.testing.assert_close(g.trace["latents.final"], alone.trace["latents.final"], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_replacement_alone_ends_on_the_clean_image_latent(toy):
    from cogviz.encode import decode_latents, encode_pixels, image_to_tensor
    from cogviz.metrics import psnr

    image, prompt = scene(3)
    fitted = cogviz_fit(image)
    with torch.no_grad():  # the image's latent (posterior mode) and the VAE's own round trip of it
        px = image_to_tensor(toy, fitted.image, 64, 96, "cpu", torch.float32)
        clean = encode_pixels(toy, px, 1, sample=False)
        trip = (decode_latents(toy, clean)[0, 0].numpy() * 255).round().astype(np.uint8)
    zero, replaced, both = (generate(toy, image, prompt, steps=20, seed=0, progress=False, ablations=abl,
                                     record=("latents.final",))
                            for abl in ([A.ZeroImage()], [A.ZeroImage(), A.ReplaceFrame()], [A.ReplaceFrame()]))
    # the last replacement writes the clean latent (the toy is 1.0: the video's scaling is z_img's)
    torch.testing.assert_close(replaced.trace["latents.final"][:, 0], clean[:, 0], rtol=0, atol=0)
    got, reference = psnr(replaced.frames[0], fitted.to_array()), psnr(trip, fitted.to_array())
    assert got > psnr(zero.frames[0], fitted.to_array()) + 15  # replacement alone brings frame 0 back
    # The decoder's group norms read every latent frame, so frame 0 also depends on the later ones,
    # which replacement alone leaves unanchored: measured 3.5-4 dB under the one-frame round trip
    # with the weights before the still camera, 5.7 dB with these (its target was 2 dB). With the
    # image channels too, frame 0 is at the round trip.
    assert reference - 7 < got < reference and abs(psnr(both.frames[0], fitted.to_array()) - reference) < 2.0


def cogviz_fit(image):
    from cogviz.fit import fit_image

    return fit_image(image, (64, 96))


@pytest.mark.slow
def test_the_new_kinds_run_in_a_sweep(toy, tmp_path):
    from cogviz.sweep import SweepResult, sweep

    image, prompt = scene(1)
    other = render_scene(sample_scene(2_000_000_011))[0]
    kinds = [A.EndImage(other), [A.ZeroImage(), A.ReplaceFrame()], A.ImageGuidance(1.0, scale_end=3.0),
             A.NoiseImage(0.3, "latent", schedule="timestep")]
    r = sweep(toy, [image], [prompt], kinds, [0], out_dir=tmp_path, steps=4, progress=False)
    assert len(r) == 5 and len(SweepResult.load(tmp_path)) == 5
    labels = set(r.runs["label"])
    assert "zero_image + replace_frame(start=0, end=1)" in labels and any(x.startswith("end_image(image=sha256:")
                                                                          for x in labels), labels


def test_an_embedded_png_is_held_to_the_loaders_pixel_cap(monkeypatch):
    """Issue 43: ablation JSON may come from someone else; its embedded image is a PNG within the
    loader's pixel cap, checked from the header before decoding."""
    import base64
    import hashlib
    import io

    import cogviz.image as I

    def ref(img, fmt="PNG"):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        data = buf.getvalue()
        return {"sha256": hashlib.sha256(data).hexdigest(), "png_base64": base64.b64encode(data).decode()}

    big = Image.new("RGB", (400, 300))
    assert A.ImageRef.from_dict(ref(big)).image().size == (400, 300)
    monkeypatch.setattr(I, "DEFAULT_MAX_PIXELS", 100_000)
    with pytest.raises(AblationError, match="400x300 = 120000 pixels, over the cap of 100000"):
        A.ImageRef.from_dict(ref(big))
    with pytest.raises(AblationError, match="does not hold a PNG"):
        A.ImageRef.from_dict(ref(Image.new("RGB", (4, 4)), "BMP"))


def test_a_kind_is_its_where_and_operation_and_a_new_pair_runs_as_an_intervention():
    """Issue 42: ablations as where x what. ZeroImage is Zero at z_img; a pair no kind offers (noise on
    the conditional half's image channels, early steps only) runs through generate's interventions
    and changes only what it names."""
    from cogviz.ablations.where import Noise, Where, Zero, act

    pipe = tiny_random_pipeline()
    image = np.random.default_rng(3).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    run = dict(steps=4, num_frames=9, seed=1, progress=False, decode_video=False,
               record=("latents.final", "step/*/input"))
    kind = generate(pipe, image, "x", ablations=[A.ZeroImage()], **run).trace
    pair = generate(pipe, image, "x", interventions=[act(Where("z_img"), Zero())], **run).trace
    assert torch.equal(kind["latents.final"], pair["latents.final"])
    base = generate(pipe, image, "x", **run).trace
    iv = act(Where("step/*/input", 0.0, 0.5, part="image", half="conditional"), Noise(0.5, seed=1), steps=4,
             channels=16)
    noised = generate(pipe, image, "x", interventions=[iv], **run).trace
    step0 = (noised["step/0/input"] - base["step/0/input"]).abs()  # (rows: uncond, cond; F; 32; h; w)
    assert step0[0].max() == 0 and step0[1, :, :16].max() == 0 and step0[1, :, 16:].max() > 0.1
    for i in range(4):  # the image channels: noised in the conditional row in steps 0-1 only
        image = (noised[f"step/{i}/input"] - base[f"step/{i}/input"])[:, :, 16:].abs()
        assert image[0].max() == 0 and (image[1].max() > 0.1) == (i < 2), i
    assert not torch.equal(noised["latents.final"], base["latents.final"])


def test_where_refuses_what_it_cannot_mean():
    from cogviz.ablations.where import AttentionFactor, Where, act

    with pytest.raises(AblationError, match=r"0 <= start < end <= 1"):
        Where("z_img", 0.5, 0.5)
    with pytest.raises(AblationError, match=r"part='text': expected 'all' or 'image'"):
        Where("step/*/input", part="text")
    with pytest.raises(AblationError, match=r"half='cond': expected 'conditional', 'unconditional'"):
        Where("z_img", half="cond")
    with pytest.raises(AblationError, match=r"use attention\(where, op\)"):
        act(Where("attention"), AttentionFactor(0.0))

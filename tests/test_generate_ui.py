"""GenerateUI driven through its traits and buttons, no browser; the latent -> RGB preview map."""
import numpy as np
import pytest
import torch

import cogviz.models as M
from cogviz import FittedImage
from cogviz.preview import fit_rgb_map, rgb_map_for
from cogviz.testing import tiny_random_pipeline
from cogviz.toy.scenes import render_scene, sample_scene
from cogviz.widgets import GenerateUI, ImageFitter
from cogviz.widgets.generate_ui import valid_frame_counts


@pytest.fixture(scope="module")
def toy():
    return M.load_pipeline("toy")


def test_settings_never_run_the_model_run_button_does(toy):
    fitter = ImageFitter(sample="shapes")  # built for 5b's 480x720: the UI refits it for the toy
    ui = GenerateUI(toy, fitter, prompt="a red circle moves left", steps=6)
    assert fitter.preset.value == "cogviz-toy" and fitter.fitted.size == (64, 96)
    seen = []
    ui.observe(lambda ch: seen.append(ch.new), "generation")
    ui.steps.value, ui.guidance.value, ui.seed.value, ui.frames.value = 5, 4.0, 7, 9
    assert ui.generation is None and not seen and ui.progress.value == 0
    ui.run_button.click()
    g = ui.generation
    assert len(seen) == 1 and seen[0] is g
    assert g.frames.shape == (9, 64, 96, 3) and g.trace.meta["steps"] == 5 and g.trace.meta["seed"] == 7
    assert g.trace.meta["guidance"] == 4.0 and ui.progress.value == 5 and ui.progress.bar_style == "success"
    assert ui.preview.value[:4] == b"\x89PNG" and ui.player_image.value[:4] == b"\x89PNG"
    assert ui.scrubber.max == ui.play.max == 8
    first = ui.player_image.value
    ui.scrubber.value = 8
    assert ui.player_image.value != first  # the scrubber shows another frame
    assert not ui.running and not ui.run_button.disabled


def test_live_preview_updates_every_step(toy, monkeypatch):
    ui = GenerateUI(toy, render_scene(sample_scene(1_000_000_007))[0], prompt="a red circle moves left", steps=4)
    previews = []
    ui.preview.observe(lambda ch: previews.append(ch.new), "value")
    ui.run()
    assert len(previews) == 4 and len(set(previews)) > 1


def test_errors_show_in_the_ui_and_keep_the_last_generation(toy):
    ui = GenerateUI(toy, prompt="a green triangle moves down", steps=2)
    g = ui.run()
    assert isinstance(g.fitted, FittedImage)
    ui.prompt.value = ""
    assert ui.run() is None
    assert "prompt is empty" in ui.error and "prompt is empty" in ui.message.value
    assert ui.generation is g and ui.progress.bar_style == "danger" and not ui.run_button.disabled


def test_frame_choices_follow_the_model_family():
    assert valid_frame_counts(tiny_random_pipeline("1.0")) == [9]  # its learned positions cover 9 frames
    assert valid_frame_counts(M.load_pipeline("toy")) == [9, 17]
    assert valid_frame_counts(tiny_random_pipeline("1.5"), up_to=49) == [17, 33, 49]


def test_rgb_map_fits_the_toy_decoder_and_reads_colours(toy):
    m = fit_rgb_map(toy)
    assert m.weight.shape == (16, 3) and m.rmse < 0.06  # measured 0.025 (32.2 dB) on the shipped VAE
    assert rgb_map_for(toy) is rgb_map_for(toy)  # fitted once per VAE
    # a red scene: the map of its latent is red where the decoder paints red
    frame = np.zeros((64, 96, 3), np.uint8)
    frame[..., 0] = 220
    from PIL import Image

    from cogviz.encode import encode_pixels, image_to_tensor

    pixels = image_to_tensor(toy, Image.fromarray(frame), 64, 96, "cpu", torch.float32)
    z = encode_pixels(toy, pixels, 1, sample=False)[0, 0]
    rgb = m.apply(z).reshape(-1, 3).mean(0)
    assert rgb[0] > rgb[1] + 60 and rgb[0] > rgb[2] + 60, rgb
    # and it agrees with the decoder on a held-out scene it was not fitted on
    scene = render_scene(sample_scene(1_000_000_011))[0]
    pixels = image_to_tensor(toy, Image.fromarray(scene), 64, 96, "cpu", torch.float32)
    z = encode_pixels(toy, pixels, 1, sample=False)
    decoded = toy.vae.decode(z.permute(0, 2, 1, 3, 4) / toy.vae_scaling_factor_image).sample
    pooled = torch.nn.functional.avg_pool2d(decoded[:, :, 0].clamp(-1, 1) / 2 + 0.5, 8)[0].permute(1, 2, 0)
    err = np.sqrt(np.mean((m.apply(z[0, 0]) / 255.0 - pooled.detach().numpy()) ** 2))
    assert err < 0.1, err

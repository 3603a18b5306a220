"""fit_image: modes, reports, errors, and geometric properties over random sizes (hypothesis)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cogviz import FitError, PresetError, fit_image
from cogviz.samples import sample_path


def gradient(w, h):
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 128)], -1)
    return Image.fromarray(a.astype(np.uint8))


def test_crop_default_centre_and_report():
    f = fit_image(Image.new("RGB", (1000, 500)), (480, 720))
    r = f.report
    assert f.image.size == (720, 480) and r.mode == "crop"
    assert r.crop_box == pytest.approx((125.0, 0.0, 875.0, 500.0))
    assert r.cropped_pct == pytest.approx(25.0) and r.padded_pct == 0 and r.distortion_pct == pytest.approx(0, abs=1e-9)


def test_crop_focus_moves_the_box_and_is_clamped():
    img = Image.new("RGB", (1000, 500))
    left = fit_image(img, (480, 720), focus=(0.0, 0.5)).report.crop_box
    right = fit_image(img, (480, 720), focus=(1.0, 0.5)).report.crop_box
    assert left[0] == 0 and right[2] == pytest.approx(1000)


def test_crop_keeps_the_focused_content():
    img = Image.new("RGB", (900, 300), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 300, 300))  # red third on the left
    out = fit_image(img, (480, 720), focus=(0.0, 0.5)).image
    assert out.getpixel((100, 240))[0] > 200  # the red third survives a left-focused crop


def test_pad_colour_edge_blur():
    img = gradient(400, 600)  # portrait into landscape: bars left and right
    f = fit_image(img, (480, 720), "pad", fill=(255, 0, 255))
    r = f.report
    assert r.image_box == (200, 0, 520, 480) and r.padded_pct == pytest.approx(100 * (1 - 320 / 720))
    assert f.image.getpixel((10, 10)) == (255, 0, 255)
    e = fit_image(img, (480, 720), "pad", fill="edge").image
    assert e.getpixel((0, 240)) == e.getpixel((200, 240))  # border replicated outwards
    b = fit_image(img, (480, 720), "pad", fill="blur")
    assert b.report.fill == "blur" and b.image.getpixel((5, 240)) != (0, 0, 0)


def test_pad_focus_places_the_image():
    r = fit_image(gradient(400, 600), (480, 720), "pad", focus=(0.0, 0.5)).report
    assert r.image_box[0] == 0


def test_stretch_matches_diffusers_preprocessing():
    from diffusers.video_processor import VideoProcessor

    img = gradient(640, 360)
    ours = np.asarray(fit_image(img, (480, 720), "stretch").image).astype(np.float32)
    theirs = VideoProcessor().preprocess(img, height=480, width=720)  # (1, 3, 480, 720) in [-1, 1]
    theirs = ((theirs[0].permute(1, 2, 0).numpy() + 1) * 127.5)
    assert np.abs(ours - theirs).mean() < 1.0
    r = fit_image(img, (480, 720), "stretch").report
    assert r.distortion_pct == pytest.approx(abs((720 / 640) / (480 / 360) - 1) * 100)


def test_presets_and_sources():
    f = fit_image(str(sample_path("panorama")), "CogVideoX-5b-I2V")
    assert f.size == (480, 720)
    g = fit_image(sample_path("lighthouse"), "CogVideoX1.5-5B-I2V")
    assert g.size == (1152, 768)  # portrait: the long side is the height
    assert fit_image(Image.new("RGB", (10, 10)), "toy").size == (64, 96)


def test_bad_arguments():
    img = Image.new("RGB", (10, 10))
    with pytest.raises(FitError, match="mode must be one of"):
        fit_image(img, (4, 4), "squash")
    with pytest.raises(FitError, match="focus"):
        fit_image(img, (4, 4), focus=(2, 0))
    with pytest.raises(FitError, match="height, width"):
        fit_image(img, (0, 4))
    with pytest.raises(FitError, match="fill"):
        fit_image(img, (4, 4), "pad", fill="plaid")
    with pytest.raises(FitError, match="fill"):
        fit_image(img, (4, 4), "pad", fill=(300, 0, 0))
    with pytest.raises(PresetError, match="known presets"):
        fit_image(img, "CogVideoX-9000")


def test_jpeg_draft_decoding_stays_close_to_full_decode(tmp_path):
    from cogviz.viz import to_png  # noqa: F401  (module import check)

    big = gradient(4000, 3000)
    p = tmp_path / "big.jpg"
    big.save(p, quality=92)
    fast = np.asarray(fit_image(p, (480, 720)).image).astype(np.float64)
    full = np.asarray(fit_image(Image.open(p).convert("RGB"), (480, 720)).image).astype(np.float64)
    mse = ((fast - full) ** 2).mean()
    assert 10 * np.log10(255**2 / max(mse, 1e-12)) > 40


sizes = st.integers(min_value=1, max_value=900)


@settings(max_examples=60, deadline=None)
@given(sw=sizes, sh=sizes, th=st.integers(1, 300), tw=st.integers(1, 300),
       fx=st.floats(0, 1), fy=st.floats(0, 1), mode=st.sampled_from(["crop", "pad", "stretch"]))
def test_geometry_properties(sw, sh, th, tw, fx, fy, mode):
    f = fit_image(Image.new("RGB", (sw, sh), (9, 9, 9)), (th, tw), mode, focus=(fx, fy))
    r = f.report
    assert f.image.size == (tw, th) and f.image.mode == "RGB"
    assert r.source_size == (sh, sw) and r.target_size == (th, tw)
    if mode == "crop":
        l, t, rr, b = r.crop_box
        eps = 1e-6 * max(sw, sh)
        assert -eps <= l <= rr <= sw + eps and -eps <= t <= b <= sh + eps
        assert (rr - l) / (b - t) == pytest.approx(tw / th, rel=1e-6)  # the target's aspect
        assert r.cropped_pct == pytest.approx(100 * (1 - (rr - l) * (b - t) / (sw * sh)), abs=1e-6)
        assert r.padded_pct == 0 and r.distortion_pct == pytest.approx(0, abs=1e-6)
    elif mode == "pad":
        l, t, rr, b = r.image_box
        assert 0 <= l <= rr <= tw and 0 <= t <= b <= th
        assert r.padded_pct == pytest.approx(100 * (1 - (rr - l) * (b - t) / (tw * th)))
        assert r.cropped_pct == 0
        assert (rr - l == tw) or (b - t == th)  # fits inside, touching two sides
    else:
        assert r.distortion_pct == pytest.approx(abs((tw / sw) / (th / sh) - 1) * 100)
        assert r.cropped_pct == 0 and r.padded_pct == 0

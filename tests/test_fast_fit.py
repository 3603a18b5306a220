"""Big JPEGs: a deferred decode, the two-step path equal to fit_image(path), a FitSource for widgets."""
import io

import numpy as np
import pytest
from PIL import Image

from cogviz import FitSource, ImageLoadError, fit_image, load_image
from cogviz.image import LAZY_MIN_PIXELS, DeferredImage
from cogviz.widgets import ImageFitter


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def photo(w=2400, h=1600, seed=0) -> Image.Image:
    """Photo-like: gradients, discs and fine noise (the noise is what a reduced decode would lose)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.stack([x / w * 200 + 30, y / h * 180 + 40, (x + y) / (w + h) * 150 + 60], -1)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(50, 400)
        a[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    a += rng.normal(0, 6, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    p = tmp_path_factory.mktemp("photos") / "big.jpg"
    photo().save(p, quality=90)
    return p


def test_big_jpeg_loads_deferred_with_its_header_size(big_jpeg):
    img = load_image(big_jpeg)
    assert isinstance(img, DeferredImage) and not img.decoded
    assert img.size == (2400, 1600) and img.mode == "RGB" and 2400 * 1600 >= LAZY_MIN_PIXELS
    full = np.asarray(img)  # any pixel access decodes it, once
    assert img.decoded and full.shape == (1600, 2400, 3)
    np.testing.assert_array_equal(full, np.asarray(Image.open(big_jpeg).convert("RGB")))


def test_deferred_image_applies_exif_orientation(tmp_path):
    p = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    photo().save(p, quality=90, exif=exif)
    img = load_image(p)
    assert isinstance(img, DeferredImage) and img.size == (1600, 2400)  # width and height swapped
    eager = load_image(Image.open(p))
    np.testing.assert_array_equal(np.asarray(img), np.asarray(eager))
    # the reduced decode is oriented too, and the fit geometry describes the rotated source
    fitted = fit_image(load_image(p), (480, 720))
    assert fitted.report.source_size == (2400, 1600)
    assert psnr(fitted.image, fit_image(eager, (480, 720)).image) > 40


def test_two_step_path_equals_fit_image_of_the_path(big_jpeg):
    one = fit_image(big_jpeg, "CogVideoX-5b-I2V")
    two = fit_image(load_image(big_jpeg), "CogVideoX-5b-I2V")
    np.testing.assert_array_equal(np.asarray(one.image), np.asarray(two.image))
    assert one.report == two.report and one.report.source_size == (1600, 2400)  # full-resolution geometry
    full = fit_image(Image.open(big_jpeg).convert("RGB"), "CogVideoX-5b-I2V")
    assert psnr(two.image, full.image) > 40
    assert two.report.crop_box == pytest.approx(full.report.crop_box)


def test_truncated_big_jpeg_is_decoded_eagerly_and_fails_inside_load_image(big_jpeg):
    data = big_jpeg.read_bytes()
    with pytest.raises(ImageLoadError, match=r"\(JPEG\).*truncated"):
        load_image(data[: len(data) // 2])


def test_corrupt_deferred_jpeg_raises_image_load_error_on_first_use(big_jpeg):
    data = bytearray(big_jpeg.read_bytes())
    sos = data.index(b"\xff\xda")
    data[sos + 6] = 0x33  # the first component's Huffman tables -> table 3, which the file never defines
    img = load_image(bytes(data))  # the header is fine and the stream ends: deferred
    assert isinstance(img, DeferredImage)
    with pytest.raises(ImageLoadError, match=r"cannot load <\d+ bytes> \(JPEG\)"):
        np.asarray(img)
    with pytest.raises(ImageLoadError, match=r"\(JPEG\)"):
        fit_image(img, (480, 720))  # the reduced decode fails the same way


@pytest.mark.parametrize("mode", ["crop", "pad", "stretch"])
def test_fit_source_keeps_full_quality_and_full_geometry(big_jpeg, mode):
    src = FitSource(big_jpeg)
    fast = fit_image(src, "CogVideoX-5b-I2V", mode, focus=(0.3, 0.6))
    ref = fit_image(Image.open(big_jpeg).convert("RGB"), "CogVideoX-5b-I2V", mode, focus=(0.3, 0.6))
    assert fast.report == ref.report
    assert psnr(fast.image, ref.image) >= 40
    wh, ww = src.working_size((480, 720))
    assert src.pixels_for((480, 720)).size == (ww, wh) and wh < 1600  # a reduced working copy ...
    assert src.pixels_for((480, 720)) is src.pixels_for((480, 720))  # ... made once


def test_image_fitter_refits_from_a_working_copy_but_hands_on_full_quality(big_jpeg):
    w = ImageFitter(big_jpeg)
    assert isinstance(w._source.image, DeferredImage) and not w._source.image.decoded  # never fully decoded
    assert w.fitted.report.source_size == (1600, 2400)
    w.focus_x.value = 0.2
    ref = fit_image(Image.open(big_jpeg).convert("RGB"), "CogVideoX-5b-I2V", focus=(0.2, 0.5))
    assert w.fitted.report == ref.report and psnr(w.fitted.image, ref.image) >= 40
    src_png = Image.open(io.BytesIO(w.source_view.value))
    assert max(src_png.size) <= 320  # the overlay is drawn on a cached preview, not the 4-MP source

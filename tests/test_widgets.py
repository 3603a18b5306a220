"""ImageFitter driven through its traits, no browser."""
import datetime

import numpy as np
from conftest import png_bytes

from cogviz import FittedImage
from cogviz.widgets import ImageFitter


def test_defaults_to_a_sample_and_exposes_fitted():
    w = ImageFitter()
    assert isinstance(w.fitted, FittedImage) and w.fitted.size == (480, 720)
    assert w.source_view.value[:4] == b"\x89PNG" and w.result_view.value[:4] == b"\x89PNG"
    assert "cropped" in w.report_view.value


def test_controls_refit_and_notify():
    w = ImageFitter()
    seen = []
    w.observe(lambda c: seen.append(c.new), "fitted")
    w.mode.value = "pad"
    assert seen[-1].report.mode == "pad" and seen[-1].report.padded_pct > 0
    assert not w.fill.disabled and w.focus_x.disabled is False
    w.fill.value = "white"
    assert seen[-1].image.getpixel((2, 2)) == (255, 255, 255)
    w.preset.value = "cogviz-toy"
    assert seen[-1].size == (64, 96)
    w.mode.value = "crop"
    before = seen[-1].report.crop_box
    w.focus_y.value = 0.0
    assert seen[-1].report.crop_box[1] == 0 and seen[-1].report.crop_box != before
    w.mode.value = "stretch"
    assert w.focus_x.disabled and w.fill.disabled


def test_upload_trait_loads_the_file():
    w = ImageFitter()
    w.upload.value = ({"name": "g.png", "type": "image/png", "size": 1, "content": memoryview(png_bytes((90, 60))),
                       "last_modified": datetime.datetime.now(datetime.UTC)},)
    assert w.fitted.report.source_size == (60, 90) and w.sample.value == "(none)"
    assert np.asarray(w.fitted.image)[240, 360].tolist() == [10, 200, 30]


def test_bad_location_shows_error_and_keeps_previous_fit():
    w = ImageFitter(sample="panorama")
    good = w.fitted
    w.location.value = "/no/such/image.png"
    assert "no such file" in w.error and "no such file" in w.message.value
    assert w.fitted is good
    w.sample.value = "badge"
    assert w.error == "" and w.fitted.report.source_size == (512, 512)


def test_url_location(http_server):
    w = ImageFitter()
    w.location.value = f"{http_server}/ok.png"
    assert w.fitted.report.source_size == (40, 60)


def test_image_argument():
    w = ImageFitter(np.zeros((30, 30, 3), np.uint8), preset="cogviz-toy")
    assert w.fitted.size == (64, 96) and w.sample.value == "(none)"


def test_an_unexpected_error_is_shown_not_swallowed(monkeypatch):
    """Issue 43: an error that is not cogviz's (a full disk, a Ray failure) still reaches the UI."""
    import cogviz.widgets.image_fitter as F

    w = ImageFitter(sample="panorama")

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(F, "FitSource", disk_full)
    w.sample.value = "badge"
    assert w.error.startswith("unexpected OSError") and "No space left" in w.message.value
    assert "10 MiB" in w.children[0].children[0].children[2].value  # the upload limit is said

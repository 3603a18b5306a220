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


# -- the views raise cogviz's own errors; the generation widgets share one scaffold -------------------

VIEW_MODULES = ["viz", "preview.py", "analysis.py", "widgets"]


def test_the_views_raise_cogviz_own_errors():
    import pytest
    import torch

    from cogviz import PCABasis, viz
    from cogviz.errors import ViewError
    from cogviz.widgets import LatentExplorer

    bad = {
        "channel_mosaic of a video": lambda: viz.channel_mosaic(np.zeros((2, 16, 4, 4))),
        "frames_overview of one frame": lambda: viz.frames_overview(np.zeros((16, 4, 4))),
        "a float picture": lambda: viz.picture(np.zeros((4, 4, 3), np.float32)),
        "frame_strip of one frame": lambda: viz.frame_strip(np.zeros((4, 4, 3), np.uint8), [0]),
        "PCA of zeros": lambda: PCABasis.fit(torch.zeros(1, 16, 2, 2)),
        "LatentExplorer of a string": lambda: LatentExplorer("not a generation"),
    }
    for what, call in bad.items():
        with pytest.raises(ViewError):
            call()
            raise AssertionError(f"{what}: no error")


def test_no_view_raises_a_bare_builtin_error():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "cogviz"
    files = [p for m in VIEW_MODULES for p in ((root / m).rglob("*.py") if (root / m).is_dir() else [root / m])]
    bare = [f"{p.name}:{i}" for p in files for i, line in enumerate(p.read_text().splitlines(), 1)
            if "raise ValueError(" in line or "raise TypeError(" in line]
    assert not bare, f"views raise builtin errors, not cogviz's (ViewError and its kin): {bare}"


def test_the_two_generation_widgets_share_one_scaffold(tmp_path):
    from cogviz.testing import tiny_random_pipeline
    from cogviz.widgets import AblationLab, GenerateUI
    from cogviz.widgets.scaffold import GenerationScaffold

    pipe = tiny_random_pipeline("1.0")
    ui, lab = GenerateUI(pipe, image=None), AblationLab(pipe, image=None, out_dir=str(tmp_path))
    for w in (ui, lab):
        assert isinstance(w, GenerationScaffold)
        parts = (w.prompt, w.steps, w.guidance, w.run_button, w.progress, w.player_image, w.play, w.scrubber, w.message)
        assert all(p is not None for p in parts)
        w.source.fitted = None  # an empty image source: the same error line in both
        w.prompt.value = "a red circle moves left"
        assert w.run() is None
        assert "the ImageFitter has no image yet" in w.error and "has no image yet" in w.message.value
        assert w.progress.bar_style == "danger" and not w.running and not w.run_button.disabled
        w._set_frames(np.zeros((3, 8, 8, 3), np.uint8), 16)  # the player steps through what it is given
        assert (w.scrubber.max, w.play.max) == (2, 2) and w.player_image.value[:4] == b"\x89PNG"


"""Every renderer's result shows itself as a picture in IPython, with no pyplot involved."""
import subprocess
import sys

import numpy as np
import pytest
from IPython.core.formatters import DisplayFormatter
from PIL import Image

from cogviz import viz
from cogviz.fit import fit_image


def formats(obj) -> dict:
    data, _ = DisplayFormatter().format(obj)
    return data


def test_picture_is_an_array_that_displays_as_png(tmp_path):
    pic = viz.picture(np.full((10, 20, 3), 7, np.uint8), title=None, width=300)
    data = formats(pic)
    assert data["image/png"][:4] == b"\x89PNG" and data["text/plain"] == "<cogviz Picture 20x10>"
    _, meta = DisplayFormatter().format(pic)
    assert meta["image/png"] == {"width": 300}
    assert np.concatenate([pic, pic]).shape == (20, 20, 3) and Image.fromarray(pic).size == (20, 10)
    assert type(pic.to_array()) is np.ndarray
    pic.save(tmp_path / "p.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "p.png")), pic)
    assert "image/png" not in formats(pic[0, 0])  # a slice that is no longer a picture is an array


def test_picture_rejects_what_is_not_pixels():
    with pytest.raises(ValueError, match="uint8"):
        viz.Picture(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        viz.picture(np.zeros((4, 4), np.float64))


def test_titled_picture_grows_by_its_title_bar():
    assert viz.picture(np.zeros((10, 40, 3), np.uint8), title="hello").shape == (26, 40, 3)


def renderers(rng):
    z = rng.normal(size=(16, 8, 12)).astype(np.float32)
    frames = rng.integers(0, 255, (5, 16, 24, 3), dtype=np.uint8)
    fitted = fit_image(Image.new("RGB", (300, 200)), (64, 96))
    return {
        "channel_mosaic": viz.channel_mosaic(z),
        "frames_overview": viz.frames_overview(np.stack([z, z * 0])),
        "rgb_tiles": viz.rgb_tiles([frames[0], frames[1]], ["a", "b"]),
        "heatmap": viz.heatmap(rng.random((3, 4)), row_labels="abc", col_labels="wxyz"),
        "colourise": viz.colourise(rng.random((4, 6))),
        "fit_overlay": viz.fit_overlay(Image.new("RGB", (300, 200)), fitted.report),
        "frame_strip": viz.frame_strip(frames),
    }


def test_every_renderer_returns_a_picture_that_displays(rng):
    for name, pic in renderers(rng).items():
        assert isinstance(pic, viz.Picture), name
        assert formats(pic)["image/png"][:4] == b"\x89PNG", name


def test_a_figure_renderer_displays_in_a_fresh_kernel_state_without_pyplot():
    # the failure this guards against: a bare matplotlib Figure shows as '<Figure size ...>' until
    # pyplot's inline integration is active. A fresh interpreter never imports pyplot here.
    code = (
        "import sys, numpy as np\n"
        "from IPython.core.formatters import DisplayFormatter\n"
        "from matplotlib.figure import Figure\n"
        "from cogviz import viz\n"
        "fig = Figure(); fig.subplots().plot([0, 1])\n"
        "bare = DisplayFormatter().format(fig)[0]\n"
        "pic = DisplayFormatter().format(viz.picture(fig))[0]\n"
        "print('bare', sorted(bare), 'pic', sorted(pic), 'pyplot' in ''.join(sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "bare ['text/plain'] pic ['image/png', 'text/plain'] False" in out

"""cogviz.video: H.264 in a <video> tag, GIF fallback, files, grids."""
import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from cogviz import video
from cogviz.errors import CogvizError


def clip(n=9, h=64, w=96):
    a = np.zeros((n, h, w, 3), np.uint8)
    for f in range(n):
        a[f, :, f * 8:(f * 8) + 10] = (220, 40, 40)  # a red bar moving right
    return a


def test_html_embeds_h264_mp4():
    html = video.show(clip(), return_html=True)
    b64 = re.search(r'data:video/mp4;base64,([A-Za-z0-9+/=]+)"', html).group(1)
    data = base64.b64decode(b64)
    assert b"ftyp" in data[:32] and b"avc1" in data  # an MP4 holding H.264
    assert html.startswith("<video") and "autoplay loop" in html


def test_gif_fallback_and_odd_sizes(tmp_path):
    html = video.to_html(clip(), format="gif")
    gif = base64.b64decode(html.split("base64,")[1].split('"')[0])
    assert Image.open(io.BytesIO(gif)).n_frames == 9
    assert video.encode_mp4(clip(3, 33, 47))[4:8] == b"ftyp"  # padded to even internally


def test_save_formats(tmp_path):
    for suffix in (".mp4", ".gif", ".png"):
        p = video.save(clip(), tmp_path / f"v{suffix}")
        assert p.stat().st_size > 100
    assert Image.open(tmp_path / "v.png").size == (96 * 9, 64)
    with pytest.raises(CogvizError, match=".mp4, .gif or .png"):
        video.save(clip(), tmp_path / "v.avi")
    assert not list(tmp_path.glob("*.tmp"))


def test_grid_titles_and_lengths():
    g = video.grid({"with z_img": clip(9), "z_img zeroed": clip(5)})
    assert g.shape == (9, 64 + 14, 96 * 2 + 4, 3)
    assert (g[:, :14] < 128).any()  # titles are drawn
    assert np.array_equal(g[8, 14:, 100:], clip(5)[4])  # the shorter video holds its last frame


def test_bad_frames():
    with pytest.raises(CogvizError, match="uint8"):
        video.to_html(np.zeros((2, 4, 4, 3), np.float32))


def test_grid_wraps_a_title_wider_than_its_video_instead_of_cutting_it():
    long = "flip_image(axis=horizontal) + scale_image(alpha=0.5)"
    g = video.grid({"baseline": clip(3), long: clip(3)})
    top = g.shape[1] - 64
    assert top > 14  # the header grew a line or more
    header = g[0, :top, 100:]  # the second video's title
    rows = np.flatnonzero((header < 128).any(axis=(1, 2)))
    assert rows.max() > 14  # ink below the first line: the title went on
    assert not (g[0, :top, 96 * 2 + 4 - 2:] < 128).any()  # and nothing runs off the right edge
    from PIL import Image, ImageDraw

    lines = video._wrap(ImageDraw.Draw(Image.new("RGB", (1, 1))), long, 92)
    assert "".join(lines).replace(" ", "") == long.replace(" ", "") and len(lines) >= 2


def test_a_playlist_named_mp4_is_not_followed(tmp_path):
    """Issue 43: a results folder from elsewhere may hold a 'video.mp4' that is an HLS playlist;
    ffmpeg reads it as mp4, local files only, and cogviz says what is wrong."""
    import numpy as np

    from cogviz import video
    from cogviz.errors import CogvizError

    real = video.save(np.zeros((3, 16, 16, 3), np.uint8), tmp_path / "real.mp4", fps=8)
    (tmp_path / "video.mp4").write_text(f"#EXTM3U\n#EXTINF:1,\n{real}\n")
    with pytest.raises(CogvizError, match="is not an mp4 video cogviz can read"):
        video.load(tmp_path / "video.mp4")
    assert video.load(real).shape == (3, 16, 16, 3)


@pytest.mark.parametrize("fps", [8, 16, 7.5])
def test_an_mp4_keeps_its_frames_and_frame_rate(tmp_path, fps):
    """Encoded in process (PyAV, x264 near-lossless) and read back by the imageio-ffmpeg binary:
    the frames within a few grey levels, the frame rate as given, moov before the media data."""
    a = np.repeat(np.repeat(clip(9), 1, axis=1), 1, axis=2)
    data = video.encode_mp4(a, fps=fps)
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: plays before it has all of it
    p = tmp_path / "v.mp4"
    p.write_bytes(data)
    back = video.load(p)
    assert back.shape == a.shape and np.abs(back.astype(int) - a).mean() < 3
    assert video.frame_rate(p) == pytest.approx(fps, abs=1e-3)


def test_an_mp4_is_encoded_with_the_named_rate_factor_and_preset():
    """x264 writes its settings into the stream: the rate factor is MP4_CRF and the preset's own choices
    are there ("veryfast": subpel refinement 2, one reference frame, a lookahead of 10 frames)."""
    import re

    data = video.encode_mp4(np.zeros((3, 16, 16, 3), np.uint8))
    options = re.search(rb"x264 - core .*? options: ([^\x00]*)", data).group(1).decode()
    assert f"crf={video.MP4_CRF:.1f}" in options
    assert video.MP4_PRESET == "veryfast" and all(o in options.split() for o in ("subme=2", "ref=1", "rc_lookahead=10"))


@pytest.mark.browser
def test_the_embedded_mp4_plays_in_chromium_and_shows_the_frames(tmp_path):
    """What a notebook shows: the <video> tag's H.264 (encoded in process by PyAV) decodes in
    Chromium to the frames' size, and its first frame, drawn on a canvas, holds the red bar."""
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium

    _need_chromium()
    page_file = tmp_path / "video.html"
    page_file.write_text("<html><body>" + video.to_html(clip(), fps=8) + "</body></html>")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(page_file.as_uri(), wait_until="load")
        page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.readyState >= 2; }",
                               timeout=20_000)
        shown = page.evaluate("""() => {
            const v = document.querySelector('video'); v.pause(); v.currentTime = 0;
            const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
            const g = c.getContext('2d'); g.drawImage(v, 0, 0);
            const px = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
            return {w: v.videoWidth, h: v.videoHeight, bar: px(4, 32), rest: px(60, 32)};
        }""")
        browser.close()
    assert (shown["w"], shown["h"]) == (96, 64), shown
    r, g, b = shown["bar"]
    assert r > 180 and g < 90 and b < 90, shown  # the red bar of frame 0
    assert max(shown["rest"]) < 40, shown  # black beside it

"""No raw exception escapes load_image: malformed and unusual files, built by the tests themselves."""
import io
import signal
import warnings

import numpy as np
import pytest
from image_corpus import dds_unsupported, psd_layered, tiff_without_dimensions, valid_files
from PIL import Image

import cogviz
from cogviz import CogvizError, ImageLoadError


def test_pillow_itself_fails_on_these_files():
    # the corpus reproduces the raw failures: if Pillow stops raising them the test files need a look
    with pytest.raises(TypeError, match="Missing dimensions"):
        Image.open(io.BytesIO(tiff_without_dimensions())).n_frames
    with pytest.raises(NotImplementedError):
        Image.open(io.BytesIO(dds_unsupported()))


def test_tiff_with_a_page_missing_its_dimensions_gives_its_first_page():
    with pytest.warns(UserWarning, match="later frames or pages are unreadable"):
        img = cogviz.load_image(tiff_without_dimensions())
    assert img.mode == "RGB" and img.size == (4, 4)
    assert img.getpixel((1, 1)) == (80, 80, 80)  # the grey ramp 0, 16, 32, ... row-major


def test_tiff_without_any_dimensions_is_a_clear_error():
    with pytest.raises(ImageLoadError, match="cannot load <.*bytes>"):
        cogviz.load_image(tiff_without_dimensions(first_page_ok=False))


def test_unsupported_dds_pixel_format_names_source_format_and_cause(tmp_path):
    path = tmp_path / "texture.dds"
    path.write_bytes(dds_unsupported())
    with pytest.raises(ImageLoadError) as e:
        cogviz.load_image(path)
    msg = str(e.value)
    assert "texture.dds" in msg and "Unimplemented pixel format" in msg and "cannot decode" in msg


def test_layered_psd_gives_its_composite_without_an_animation_warning():
    data, composite = psd_layered()
    assert Image.open(io.BytesIO(data)).n_frames == 2  # Pillow counts layers as frames
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = cogviz.load_image(data)
    np.testing.assert_array_equal(np.asarray(img), composite)


def test_failure_message_names_the_format_pillow_saw():
    png = valid_files()["PNG"]
    broken = png[:60]  # header intact, data cut
    with pytest.raises(ImageLoadError, match=r"\(PNG\).*truncated or corrupt"):
        cogviz.load_image(broken)


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP"])
def test_fuzzed_headers_give_rgb_or_a_cogviz_error(fmt):
    """Random byte flips in the first 64 bytes: each result is an RGB image or a CogvizError, in < 5 s."""
    data = valid_files()[fmt]
    rng = np.random.default_rng(abs(hash(fmt)) % 2**32)
    outcomes = {"rgb": 0, "error": 0}
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for case in range(150):
            b = bytearray(data)
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(0, min(64, len(b))))] = int(rng.integers(0, 256))
            signal.alarm(5)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    img = cogviz.load_image(bytes(b), max_pixels=4_000_000)
                    assert img.mode == "RGB" and img.width > 0 and img.height > 0
                    np.asarray(img)  # a deferred decode must not leak either
                outcomes["rgb"] += 1
            except CogvizError:
                outcomes["error"] += 1
            except _Hang:
                pytest.fail(f"{fmt} case {case} hung: header {bytes(b[:64]).hex()}")
            except Exception as e:  # noqa: BLE001 - this is what the test exists to catch
                pytest.fail(f"{fmt} case {case} leaked {type(e).__name__}: {e}; header {bytes(b[:64]).hex()}")
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, old)
    assert outcomes["rgb"] + outcomes["error"] == 150

"""load_image: every source kind, every PIL mode, the odd-file corpus, and URLs on loopback."""
import io
import zlib

import numpy as np
import pytest
import torch
from conftest import png_bytes
from PIL import Image

import cogviz
from cogviz import FetchError, ImageLoadError, ImageTooLargeError, load_image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


GREEN = (10, 200, 30)


# ------------------------------------------------------------------------------ source kinds
def test_path_str_and_pathlib(tmp_path):
    p = tmp_path / "a.png"
    p.write_bytes(png_bytes())
    for src in (str(p), p):
        img = load_image(src)
        assert img.mode == "RGB" and img.size == (60, 40) and img.getpixel((5, 5)) == GREEN


def test_bytes_bytearray_memoryview_and_file_object():
    data = png_bytes()
    for src in (data, bytearray(data), memoryview(data), io.BytesIO(data)):
        assert load_image(src).getpixel((0, 0)) == GREEN


def test_text_mode_file_object_is_rejected_with_hint(tmp_path):
    p = tmp_path / "a.png"
    p.write_bytes(png_bytes())
    with open(p, encoding="latin-1") as f, pytest.raises(ImageLoadError, match="binary mode"):
        load_image(f)


def test_pil_image_is_converted_not_mutated():
    src = Image.new("L", (4, 3), 77)
    out = load_image(src)
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (77, 77, 77) and src.mode == "L"


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3), (5, 7, 4)])
def test_numpy_uint8_shapes(shape):
    a = np.full(shape, 200, np.uint8)
    if shape[-1] == 4:
        a[..., 3] = 255  # opaque
    img = load_image(a)
    assert img.size == (7, 5) and img.getpixel((0, 0)) == (200, 200, 200)


def test_numpy_float_in_unit_range_and_out_of_range():
    a = np.zeros((4, 4, 3), np.float32)
    a[..., 0] = 1.0
    assert load_image(a).getpixel((1, 1)) == (255, 0, 0)
    with pytest.raises(ImageLoadError, match=r"\[0, 1\]"):
        load_image(a * 2)
    with pytest.raises(ImageLoadError, match="NaN"):
        load_image(np.full((2, 2), np.nan, np.float32))


def test_numpy_bad_shape_and_dtype_name_what_is_accepted():
    with pytest.raises(ImageLoadError, match="HxW, HxWx1, HxWx3 and HxWx4"):
        load_image(np.zeros((2, 3, 3, 3), np.uint8))
    with pytest.raises(ImageLoadError, match="dtype int64"):
        load_image(np.zeros((2, 3), np.int64))


def test_rgba_array_composited_on_background_not_black():
    a = np.zeros((2, 2, 4), np.uint8)  # fully transparent black
    assert load_image(a).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(a, background=(1, 2, 3)).getpixel((0, 0)) == (1, 2, 3)


def test_torch_tensor_ranges():
    t = torch.zeros(3, 4, 5)
    t[1] = 1.0
    assert load_image(t).getpixel((0, 0)) == (0, 255, 0)
    assert load_image(t[None]).size == (5, 4)  # batch of one
    vae_range = torch.full((3, 2, 2), -1.0)
    with pytest.raises(ImageLoadError, match="value_range=\\(-1, 1\\)"):
        load_image(vae_range)
    assert load_image(vae_range, value_range=(-1, 1)).getpixel((0, 0)) == (0, 0, 0)
    assert load_image(torch.full((1, 2, 2), 255, dtype=torch.uint8)).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(ImageLoadError, match="CxHxW"):
        load_image(torch.zeros(2, 2))


def test_fileupload_entry_and_value_tuple():
    entry = {"name": "x.png", "type": "image/png", "size": 10, "content": memoryview(png_bytes()),
             "last_modified": 0}
    assert load_image(entry).getpixel((0, 0)) == GREEN
    assert load_image((entry,)).getpixel((0, 0)) == GREEN
    with pytest.raises(ImageLoadError, match="'content'"):
        load_image({"name": "x.png"})


def test_unsupported_source_lists_what_is_accepted():
    with pytest.raises(ImageLoadError, match="accepted are a path"):
        load_image(12345)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path)


def test_errors_are_one_hierarchy_and_value_errors():
    for cls in (ImageLoadError, FetchError, ImageTooLargeError, cogviz.FitError, cogviz.PresetError):
        assert issubclass(cls, cogviz.CogvizError) and issubclass(cls, ValueError)


# ---------------------------------------------------------------------------- PIL modes / corpus
def test_every_pil_mode_becomes_correct_rgb():
    base = Image.new("RGB", (8, 6), (200, 100, 50))
    cases = {
        "1": (Image.new("1", (8, 6), 1), (255, 255, 255)),
        "L": (base.convert("L"), None),
        "LA": (Image.new("LA", (8, 6), (90, 0)), (255, 255, 255)),  # transparent -> background
        "RGBA": (Image.new("RGBA", (8, 6), (200, 100, 50, 255)), (200, 100, 50)),
        "CMYK": (Image.new("CMYK", (8, 6), (0, 255, 255, 0)), (255, 0, 0)),
        "YCbCr": (base.convert("YCbCr"), None),
        "I;16": (Image.fromarray(np.full((6, 8), 65535, np.uint16)), (255, 255, 255)),
        "I": (Image.fromarray(np.full((6, 8), 32768, np.int32)), (128, 128, 128)),
        "F": (Image.fromarray(np.full((6, 8), 0.5, np.float32)), (128, 128, 128)),
    }
    for mode, (img, expect) in cases.items():
        out = load_image(img)
        assert out.mode == "RGB", mode
        px = out.getpixel((3, 3))
        if expect is None:  # round trip of the base colour through a lossy mode: close to it
            if mode == "L":
                assert px[0] == px[1] == px[2]
            else:
                assert max(abs(a - b) for a, b in zip(px, (200, 100, 50))) <= 3, (mode, px)
        else:
            assert max(abs(a - b) for a, b in zip(px, expect)) <= 1, (mode, px)


def test_palette_with_transparency_composites_on_background():
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    p.putpixel((1, 1), 1)
    data = encode(p, "PNG", transparency=0)
    out = load_image(data)
    assert out.getpixel((0, 0)) == (255, 255, 255)  # transparent index -> white, not black
    assert out.getpixel((1, 1)) == (255, 0, 0)


def test_16bit_png_is_scaled_not_clipped():
    a = np.linspace(0, 65535, 16 * 4).astype(np.uint16).reshape(4, 16)
    out = np.asarray(load_image(encode(Image.fromarray(a), "PNG")))
    assert out[..., 0].min() == 0 and out[..., 0].max() == 255
    assert abs(int(out[2, 8, 0]) - round(a[2, 8] / 257)) <= 1


def test_cmyk_jpeg_loads_as_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red in CMYK
    out = load_image(encode(cmyk, "JPEG", quality=95))
    r, g, b = out.getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (30, 10), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, 10))  # red block on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    out = load_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.size == (10, 30)
    r, g, b = out.getpixel((5, 3))  # the left block is now on top
    assert r > 200 and b < 60


def test_animated_gif_gives_first_frame_with_warning():
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match="first frame"):
        out = load_image(data)
    assert out.getpixel((2, 2))[0] > 200


def test_truncated_zero_bytes_text_and_corrupt_are_rejected(tmp_path):
    good = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(good[: len(good) // 2])
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(b"")
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image at all\n")
    with pytest.raises(ImageLoadError, match="looks like text"):
        load_image(fake)
    with pytest.raises(ImageLoadError, match="not a recognised image format"):
        load_image(bytes(range(256)) * 4)


def test_header_claiming_huge_dimensions_is_rejected_before_decoding():
    data = bytearray(encode(Image.new("RGB", (8, 8)), "PNG"))
    data[16:24] = (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big")  # IHDR width/height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # a valid chunk CRC: only the size lies
    with pytest.raises(ImageTooLargeError, match="max_pixels"):
        load_image(bytes(data))
    small = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageTooLargeError, match="10,000 pixels exceeds max_pixels=5,000"):
        load_image(small, max_pixels=5_000)


def test_unsupported_schemes(tmp_path):
    for url in ("file:///etc/passwd", "ftp://example.invalid/a.png", "data:image/png;base64,AAAA"):
        with pytest.raises(FetchError, match="not supported"):
            load_image(url)


# -------------------------------------------------------------------------------------- URLs
def test_url_ok_and_redirect(http_server):
    assert load_image(f"{http_server}/ok.png").getpixel((0, 0)) == GREEN
    assert load_image(f"{http_server}/redirect.png").size == (60, 40)


def test_url_http_errors(http_server):
    with pytest.raises(FetchError, match="HTTP 404"):
        load_image(f"{http_server}/missing.png")
    with pytest.raises(FetchError, match="HTTP 500"):
        load_image(f"{http_server}/error.png")


def test_url_wrong_content_type(http_server):
    with pytest.raises(FetchError, match="text/html"):
        load_image(f"{http_server}/page.html")


def test_url_redirect_loop(http_server):
    with pytest.raises(FetchError, match="redirect"):
        load_image(f"{http_server}/loop.png")


def test_url_oversize_declared_and_streamed(http_server):
    with pytest.raises(FetchError, match="over the cap"):
        load_image(f"{http_server}/big.png", max_bytes=100_000)
    with pytest.raises(FetchError, match="exceeds the cap"):
        load_image(f"{http_server}/big-undeclared.png", max_bytes=100_000)


def test_url_slow_server_times_out(http_server):
    import time

    t = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        load_image(f"{http_server}/slow.png", timeout=(1.0, 0.5))
    assert time.monotonic() - t < 3.0


def test_url_dns_failure_and_refused_connection():
    with pytest.raises(FetchError, match="cannot fetch"):
        load_image("http://no-such-host.invalid/a.png", timeout=(2, 2))
    with pytest.raises(FetchError, match="connection failed"):
        load_image("http://127.0.0.1:9/a.png", timeout=(2, 2))


def test_url_cache(http_server, tmp_path):
    url = f"{http_server}/ok.png"
    load_image(url, cache_dir=tmp_path)
    entries = list(tmp_path.glob("*.bin"))
    assert len(entries) == 1 and entries[0].read_bytes()[:4] == b"\x89PNG"
    entries[0].write_bytes(png_bytes(colour=(1, 1, 1)))  # served from the cache from now on
    assert load_image(url, cache_dir=tmp_path).getpixel((0, 0)) == (1, 1, 1)


def test_url_trickling_server_fails_within_its_deadline(http_server):
    """A server that sends a byte every 0.2 s never lets one read time out; the deadline
    (connect + total) still ends the download, within a second of it (issue 43)."""
    import time

    t = time.monotonic()
    with pytest.raises(FetchError, match="timed out after 2 s"):
        load_image(f"{http_server}/trickle.png", timeout=(1.0, 0.5))
    assert time.monotonic() - t < 1.5 + 1.0


def test_url_credentials_and_query_stay_out_of_messages(http_server):
    url = http_server.replace("http://", "http://alice:hunter2@") + "/trickle.png?X-Amz-Signature=SECRET"
    with pytest.raises(FetchError) as e:
        load_image(url, timeout=(1.0, 0.2))
    assert "hunter2" not in str(e.value) and "SECRET" not in str(e.value) and "/trickle.png" in str(e.value)


def test_local_sources_that_never_end_are_refused_before_reading(tmp_path, monkeypatch):
    import os
    import time

    import cogviz.image as I

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    t = time.monotonic()
    for source in (fifo, "/dev/zero"):
        with pytest.raises(ImageLoadError, match="not a regular file"):
            load_image(source)
    assert time.monotonic() - t < 2
    big = tmp_path / "big.png"
    big.write_bytes(png_bytes() + b"0" * 2000)
    monkeypatch.setattr(I, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ImageLoadError, match="over the 1000 a local image may have"):
        load_image(big)

"""Step 1a of the flow: any image source -> an RGB ``PIL.Image``, oriented and colour-correct.

``load_image`` accepts a path, an http(s) URL, bytes, a binary file object, a PIL image, a numpy
array, a torch tensor, or an entry of an ipywidgets 8 ``FileUpload.value``. Whatever goes wrong
raises :class:`cogviz.ImageLoadError` (a ``ValueError``) naming the source, the problem and what is
accepted; no PIL, OS or HTTP exception leaks out, and every network read has a deadline.
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import FetchError, ImageLoadError, ImageTooLargeError

__all__ = ["load_image", "fetch_url", "DeferredImage", "DEFAULT_MAX_PIXELS", "DEFAULT_MAX_BYTES", "LAZY_MIN_PIXELS"]

DEFAULT_MAX_PIXELS = 64_000_000  #: 64 megapixels: far above any camera JPEG, far below a bomb
DEFAULT_MAX_BYTES = 50 * 1024 * 1024  #: cap on a URL's body, enforced while streaming
MAX_FILE_BYTES = 1 << 30  #: a local file's size cap (1 GiB: a 64 MP 16-bit TIFF fits), checked before reading
DEFAULT_TIMEOUT = (5.0, 20.0)  #: (connect, total read) seconds for URLs
MAX_REDIRECTS = 5
ACCEPTED = ("a path (str or pathlib.Path), an http(s) URL, bytes/bytearray/memoryview, a binary file "
            "object, a PIL image, a numpy array (HxW, HxWx3, HxWx4; uint8 or float in [0, 1]), a torch "
            "tensor (CxHxW; float in [0, 1] or uint8) or an ipywidgets FileUpload entry")


def _describe(source: Any) -> str:
    if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
        return repr(_safe_url(source))
    if isinstance(source, (str, Path)):
        return repr(str(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<numpy array shape={source.shape} dtype={source.dtype}>"
    if isinstance(source, dict):
        return f"<upload {source.get('name', '?')!r}>"
    return f"<{type(source).__name__}>"


# ----------------------------------------------------------------------------------------- URLs
def fetch_url(
    url: str,
    *,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    cache_dir: str | os.PathLike | None = None,
) -> bytes:
    """Download an image's bytes over http(s) with a deadline, a byte cap and a content-type check.

    ``timeout`` is (connect seconds, total seconds for the body). Redirects are followed at most
    5 times. With ``cache_dir`` the body is kept on disk under the SHA-256 of the URL and later
    calls read it from there (written atomically: an interrupted download leaves no entry).
    """
    import requests
    import urllib3

    if not url.lower().startswith(("http://", "https://")):
        raise FetchError(f"cannot fetch {_safe_url(url)!r}: only http:// and https:// URLs are accepted")
    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / (hashlib.sha256(url.encode()).hexdigest() + ".bin")
        if cache_path.is_file() and cache_path.stat().st_size <= max_bytes:
            return cache_path.read_bytes()
    connect, total = timeout
    session = requests.Session()
    session.max_redirects = MAX_REDIRECTS
    deadline = time.monotonic() + connect + total
    try:
        with session.get(url, stream=True, timeout=(connect, total), headers={"Accept": "image/*"}) as r:
            if r.status_code >= 400:
                raise FetchError(f"cannot fetch {_safe_url(url)!r}: the server answered HTTP {r.status_code} {r.reason}")
            ctype = r.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype and not (ctype.startswith("image/") or ctype == "application/octet-stream"):
                raise FetchError(f"cannot fetch {_safe_url(url)!r}: content type is {ctype!r}, expected image/* "
                                 "(is the URL a web page rather than the image itself?)")
            declared = r.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"cannot fetch {_safe_url(url)!r}: it is {int(declared)} bytes, over the cap of "
                                 f"{max_bytes} (raise max_bytes= to allow it)")
            chunks = _read_body(r, url, deadline, max_bytes, connect + total)
    except FetchError:
        raise
    except requests.exceptions.TooManyRedirects:
        raise FetchError(f"cannot fetch {_safe_url(url)!r}: more than {MAX_REDIRECTS} redirects (a redirect loop?)") from None
    except requests.exceptions.Timeout:
        raise FetchError(f"cannot fetch {_safe_url(url)!r}: timed out (connect {connect} s, read {total} s; "
                         "timeout=(connect, total) sets the limits)") from None
    except requests.exceptions.ConnectionError as e:
        text = str(e)
        why = ("the host name could not be resolved" if "resolve" in text.lower() or "name or service" in text.lower()
               else "the connection failed")
        raise FetchError(f"cannot fetch {_safe_url(url)!r}: {why} ({type(e).__name__})") from None
    except urllib3.exceptions.ReadTimeoutError:
        raise FetchError(f"cannot fetch {_safe_url(url)!r}: timed out after {connect + total:.0f} s "
                         "(timeout=(connect, total) sets the limits)") from None
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as e:
        raise FetchError(f"cannot fetch {_safe_url(url)!r}: {type(e).__name__}: {e}") from None
    data = b"".join(chunks)
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer
        tmp.write_bytes(data)
        os.replace(tmp, cache_path)
    return data


def _read_body(r, url: str, deadline: float, max_bytes: int, allowed: float) -> list[bytes]:
    """The body of a streamed response, read until ``deadline`` at the latest: each socket read
    waits at most the time left (requests' read timeout bounds one read, not the download, and a
    server trickling a byte at a time would keep a chunked read going for days), and ``read1``
    returns whatever has arrived instead of waiting for a full chunk."""
    import socket

    sock = getattr(getattr(r.raw, "connection", None), "sock", None)
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError(f"cannot fetch {_safe_url(url)!r}: timed out after {allowed:.0f} s "
                             "(timeout=(connect, total) sets the limits)")
        if isinstance(sock, socket.socket):
            sock.settimeout(left)
        chunk = r.raw.read1(64 * 1024, decode_content=True) if hasattr(r.raw, "read1") else r.raw.read(64 * 1024)
        if not chunk:
            return chunks
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"cannot fetch {_safe_url(url)!r}: body exceeds the cap of {max_bytes} bytes "
                             "(raise max_bytes= to allow it)")
        chunks.append(chunk)


def _safe_url(url: str) -> str:
    """A URL as cogviz shows and stores it: without its query string and ``user:pass@`` (presigned
    links and credentials stay out of errors, warnings and results folders)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a URL that does not parse>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# ------------------------------------------------------------------------------- array sources
def _from_array(a: np.ndarray, what: str) -> Image.Image:
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4))):
        raise ImageLoadError(f"cannot load {what}: shape {a.shape} is not an image; accepted shapes are "
                             "HxW, HxWx1, HxWx3 and HxWx4")
    if a.size == 0:
        raise ImageLoadError(f"cannot load {what}: the array is empty")
    if a.dtype == np.uint8:
        u8 = a
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageLoadError(f"cannot load {what}: it contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise ImageLoadError(f"cannot load {what}: float values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}] "
                                 "(scale it first, e.g. (x + 1) / 2 for [-1, 1] data)")
        u8 = np.round(a * 255.0).astype(np.uint8)
    elif a.dtype == bool:
        u8 = a.astype(np.uint8) * 255
    else:
        raise ImageLoadError(f"cannot load {what}: dtype {a.dtype} is not accepted; use uint8 (0-255) "
                             "or float in [0, 1]")
    return Image.fromarray(np.ascontiguousarray(u8))  # L, RGB or RGBA by shape


def _from_tensor(t: Any, what: str, value_range: tuple[float, float]) -> Image.Image:
    t = t.detach().cpu()
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        raise ImageLoadError(f"cannot load {what}: tensor shape {tuple(t.shape)} is not CxHxW with C in 1, 3, 4 "
                             "(a 1xCxHxW batch of one is accepted too)")
    a = t.permute(1, 2, 0).numpy()
    if a.dtype.kind == "f":
        lo, hi = value_range
        if (lo, hi) != (0.0, 1.0):
            a = (a - lo) / (hi - lo)
        a = a.astype(np.float32)
        if a.size and (a.min() < -1e-6 or a.max() > 1 + 1e-6):
            raise ImageLoadError(f"cannot load {what}: values lie in [{a.min() * (hi - lo) + lo:.3g}, "
                                 f"{a.max() * (hi - lo) + lo:.3g}], outside value_range={value_range}; "
                                 "pass value_range=(-1, 1) for the VAE's range")
        a = np.clip(a, 0, 1)
    return _from_array(a, what)


# ---------------------------------------------------------------------------------- PIL modes
def _to_rgb(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Any PIL mode -> RGB: alpha composited on ``background``, high bit depths rescaled."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            a = a / 65535.0
        else:  # 32-bit int or float: 8-bit, 16-bit or [0, 1] data, judged by the range it uses
            hi = float(a.max()) if a.size else 0.0
            scale = 1.0 if (mode == "F" and hi <= 1.0) else 255.0 if hi <= 255 else 65535.0 if hi <= 65535 else hi
            a = a / scale
        return Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8), "L").convert("RGB")
    elif mode == "CMYK" and img.info.get("icc_profile"):
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
            return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # a broken profile: fall back to the plain conversion below
            pass
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "A" in img.getbands():
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


LAZY_MIN_PIXELS = 2_000_000  #: JPEGs at least this large decode when their pixels are first needed
_ORIENTATION = 0x0112
_SWAPS_AXES = (5, 6, 7, 8)  #: EXIF orientations that transpose the image (width and height swap)


def _format_of(img: Image.Image | None) -> str:
    return (img.format or "unknown format") if img is not None else "no format Pillow recognised"


def _failure(what: str, img: Image.Image | None, e: BaseException) -> ImageLoadError:
    """The one message for any failure while identifying, decoding, transposing or converting."""
    if isinstance(e, NotImplementedError):
        cause = f"Pillow cannot decode this variant of the format ({e or type(e).__name__})"
    elif isinstance(e, (OSError, SyntaxError, EOFError)):
        cause = f"the image data is truncated or corrupt ({e})"
    else:
        cause = f"{type(e).__name__}: {e}"
    return ImageLoadError(f"cannot load {what} ({_format_of(img)}): {cause}")


def _decode(data: bytes, what: str, background: tuple[int, int, int],
            draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode encoded bytes fully (or, for a JPEG, at the DCT scale ``draft_size`` allows) -> RGB."""
    img = None
    try:
        img = Image.open(io.BytesIO(data))
        return _decode_opened(img, background, draft_size)
    except ImageLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure becomes one error that names the source
        raise _failure(what, img, e) from None


def _decode_opened(img: Image.Image, background: tuple[int, int, int],
                   draft_size: tuple[int, int] | None) -> Image.Image:
    """An opened image -> decoded, EXIF-oriented RGB; a JPEG at the DCT scale ``draft_size`` allows."""
    if draft_size is not None and img.format == "JPEG":
        # DCT-domain downscaling: decode at 1/2, 1/4 or 1/8 size, never below draft_size. The
        # request is in stored (pre-orientation) axes, so a rotated image asks for the larger side on both.
        side = max(draft_size)
        img.draft("RGB", (side, side) if _orientation(img) in _SWAPS_AXES else (draft_size[1], draft_size[0]))
    img.load()
    return _to_rgb(ImageOps.exif_transpose(img), background)


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block: treat as unrotated, as Pillow's transpose does
        return 1


def _frame_count(data: bytes, what: str) -> int:
    """How many frames the file holds, counted on a separate handle: a broken later frame (e.g. a
    TIFF page without dimensions) must not spoil the first one, which is all cogviz uses."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            return int(probe.n_frames)
    except Exception as e:  # noqa: BLE001 - counting is best effort
        warnings.warn(f"{what}: its later frames or pages are unreadable ({type(e).__name__}: {e}); "
                      "cogviz uses the first", stacklevel=5)
        return 1


class DeferredImage(Image.Image):
    """An RGB image of a large JPEG whose pixels are decoded when first needed.

    ``load_image`` returns one for JPEGs of at least :data:`LAZY_MIN_PIXELS` pixels whose stream
    ends properly: size, mode (``"RGB"``) and ``info`` are known from the header, EXIF orientation
    included, and any pixel access (``load()``, ``resize``, ``np.asarray``, display, ...) decodes the
    whole image once. :func:`cogviz.fit_image` instead calls :meth:`decode_reduced`, which decodes
    at the smallest DCT scale (1/2, 1/4, 1/8) that still covers the fit's target: that is why
    ``fit_image(load_image(path))`` costs what ``fit_image(path)`` costs. A decoding failure, when
    it happens, raises :class:`cogviz.ImageLoadError` naming the source, like ``load_image`` does.
    """

    format = "JPEG"

    def __init__(self, data: bytes, what: str, size: tuple[int, int], info: dict,
                 background: tuple[int, int, int]):
        super().__init__()
        self._mode, self._size, self.info = "RGB", size, info
        self._data, self._what, self._background = data, what, background

    @property
    def decoded(self) -> bool:
        """Whether the full-resolution pixels are in memory."""
        return self._im is not None

    def _materialise(self) -> None:
        if self._im is None:
            full = _decode(self._data, self._what, self._background)
            if full.size != self._size:
                raise ImageLoadError(f"cannot load {self._what} (JPEG): the header says {self._size} but the "
                                     f"data decodes to {full.size}")
            self._im = full.im

    @property
    def im(self):
        self._materialise()
        return super().im

    @im.setter
    def im(self, im) -> None:
        self._im = im

    def load(self):
        self._materialise()
        return super().load()

    def decode_reduced(self, min_size: tuple[int, int]) -> Image.Image:
        """The image decoded at the smallest DCT scale still at least ``min_size`` (height, width).

        The full-resolution pixels, when already decoded, are returned as they are.
        """
        if self._im is not None:
            return self
        return _decode(self._data, self._what, self._background, draft_size=min_size)

    def __reduce__(self):  # pickles and copies as a plain, decoded image
        self._materialise()
        return super().__reduce__()


def _open_bytes(data: bytes, what: str, max_pixels: int, draft_size: tuple[int, int] | None,
                background: tuple[int, int, int], lazy: bool = True) -> Image.Image:
    if len(data) == 0:
        raise ImageLoadError(f"cannot load {what}: it is empty (0 bytes)")
    img = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise ImageTooLargeError(
                    f"cannot load {what}: {w}x{h} = {w * h:,} pixels exceeds max_pixels={max_pixels:,} "
                    "(a guard against decompression bombs; raise max_pixels= if the image is genuine)")
            if w <= 0 or h <= 0:
                raise ImageLoadError(f"cannot load {what} ({_format_of(img)}): its header gives a size of {w}x{h}")
            frames = _frame_count(data, what) if img.format != "PSD" and hasattr(type(img), "n_frames") else 1
            if frames > 1:  # (a PSD's "frames" are its layers: the file as opened is the flattened composite)
                warnings.warn(f"{what} is animated ({frames} frames); cogviz uses the first frame", stacklevel=4)
            if (lazy and draft_size is None and img.format == "JPEG" and img.mode in ("RGB", "L")
                    and w * h >= LAZY_MIN_PIXELS and frames == 1
                    and data.rstrip(b"\0")[-2:] == b"\xff\xd9"):  # the stream ends: no obvious truncation
                size = (h, w) if _orientation(img) in _SWAPS_AXES else (w, h)
                info = {k: v for k, v in img.info.items() if k not in ("exif", "orientation")}
                return DeferredImage(data, what, size, info, background)
            return _decode_opened(img, background, draft_size)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(f"cannot load {what}: its header claims more pixels than max_pixels={max_pixels:,} "
                                 f"and Pillow's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS:,}); "
                                 "a genuine image this large must be resized with other tools first") from None
    except UnidentifiedImageError:
        head = data[:16]
        hint = " (it looks like text, not an image)" if head.strip() and all(32 <= b < 127 or b in (9, 10, 13)
                                                                               for b in head) else ""
        raise ImageLoadError(f"cannot load {what}: not a recognised image format{hint}; accepted are the "
                             "formats Pillow reads (PNG, JPEG, WebP, GIF, BMP, TIFF, PSD, ...)") from None
    except Exception as e:  # noqa: BLE001 - any decoder failure becomes one error that names the source
        raise _failure(what, img, e) from None


# ---------------------------------------------------------------------------------- the entry
def _read_path_or_url(source, what: str, *, timeout, max_bytes, cache_dir) -> bytes:
    """The bytes of a local path, or of an http(s) URL (any other scheme is refused)."""
    text = str(source)
    looks_like_url = "://" in text[:12] or text.lower().startswith("data:")
    if isinstance(source, str) and looks_like_url:
        scheme = text.split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise FetchError(f"cannot load {what}: the {scheme}: scheme is not supported; use an "
                             "http(s) URL, or a plain path for local files")
        return fetch_url(text, timeout=timeout, max_bytes=max_bytes, cache_dir=cache_dir)
    path = Path(text).expanduser()
    if not path.exists():
        raise ImageLoadError(f"cannot load {what}: no such file")
    if path.is_dir():
        raise ImageLoadError(f"cannot load {what}: it is a directory, not an image file")
    if not path.is_file():  # a FIFO, /dev/zero, a socket: reading would hang or never end
        raise ImageLoadError(f"cannot load {what}: it is not a regular file (a device, pipe or socket); "
                             "accepted are image files")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageLoadError(f"cannot load {what}: it is {size} bytes, over the {MAX_FILE_BYTES} a local "
                                 "image may have (cogviz.image.MAX_FILE_BYTES)")
        return path.read_bytes()
    except OSError as e:
        raise ImageLoadError(f"cannot load {what}: {e.strerror or e}") from None


def load_image(
    source: Any,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    cache_dir: str | os.PathLike | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Load ``source`` as an RGB ``PIL.Image`` with EXIF orientation applied.

    Args:
        source: a path (str/Path), an http(s) URL, bytes/bytearray/memoryview, a binary file object,
            a PIL image, a numpy array (HxW, HxWx1, HxWx3, HxWx4; uint8, or float in [0, 1]), a torch
            tensor (CxHxW or 1xCxHxW; uint8, or float in ``value_range``, default [0, 1]), or one entry
            of an ipywidgets 8 ``FileUpload.value`` (a dict with ``content``).
        background: colour that transparent pixels are composited on (alpha is never dropped to black).
        max_pixels: images with more pixels are rejected before decoding (decompression bombs).
        timeout, max_bytes, cache_dir: for URLs, see :func:`fetch_url`.
        value_range: the range of float torch tensors: (0, 1) or (-1, 1).
        draft_size: (height, width) the caller will resize to; a JPEG may then decode directly at a
            reduced scale that is still at least this large (much faster for big photos).

    Modes: 1, L, P, RGB, RGBA, LA, CMYK (through its ICC profile when present), YCbCr, I;16, I and F
    all become RGB; 16-bit data is scaled to 8 bits. Animated images give their first frame, with a
    warning; a layered PSD gives its flattened composite (layers are not frames).

    A JPEG of :data:`LAZY_MIN_PIXELS` or more comes back as a :class:`DeferredImage`: a PIL image
    whose pixels decode on first use, so ``fit_image(load_image(path))`` can decode it directly at
    a reduced DCT scale and costs what ``fit_image(path)`` costs.

    Any exception while identifying, decoding, transposing or converting becomes an
    :class:`~cogviz.ImageLoadError` naming the source, the format Pillow saw and the cause.

    >>> load_image(np.zeros((4, 6, 4), np.uint8)).getpixel((0, 0))  # transparent -> white
    (255, 255, 255)
    """
    what = _describe(source)
    if isinstance(source, DeferredImage):
        return source  # already RGB and oriented; its pixels decode when needed
    if isinstance(source, Image.Image):
        try:
            if source.format != "PSD" and getattr(source, "n_frames", 1) > 1:
                warnings.warn(f"{what} is animated; cogviz uses the current frame", stacklevel=2)
            return _to_rgb(ImageOps.exif_transpose(source), background)
        except ImageLoadError:
            raise
        except Exception as e:  # noqa: BLE001 - any decoder failure becomes one error that names the source
            raise _failure(what, source, e) from None
    if isinstance(source, np.ndarray):
        return _to_rgb(_from_array(source, what), background)
    if type(source).__module__.startswith("torch") and hasattr(source, "detach"):
        return _to_rgb(_from_tensor(source, what, value_range), background)
    if isinstance(source, dict):
        if "content" not in source:
            raise ImageLoadError(f"cannot load {what}: a dict source must be a FileUpload entry with a "
                                 f"'content' key, got keys {sorted(source)}")
        what = f"upload {source.get('name', '<unnamed>')!r}"
        return _open_bytes(bytes(source["content"]), what, max_pixels, draft_size, background)
    if isinstance(source, (tuple, list)) and len(source) == 1 and isinstance(source[0], dict):
        return load_image(source[0], background=background, max_pixels=max_pixels, draft_size=draft_size)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _open_bytes(bytes(source), what, max_pixels, draft_size, background)
    if isinstance(source, (str, Path)):
        data = _read_path_or_url(source, what, timeout=timeout, max_bytes=max_bytes, cache_dir=cache_dir)
        return _open_bytes(data, what, max_pixels, draft_size, background)
    if hasattr(source, "read"):
        try:
            data = source.read()
        except OSError as e:
            raise ImageLoadError(f"cannot load {what}: reading it failed ({e})") from None
        if not isinstance(data, (bytes, bytearray)):
            raise ImageLoadError(f"cannot load {what}: the file object gave {type(data).__name__}, not bytes "
                                 "(open the file in binary mode, 'rb')")
        return _open_bytes(bytes(data), what, max_pixels, draft_size, background)
    raise ImageLoadError(f"cannot load {what}: unsupported source type; accepted are {ACCEPTED}")

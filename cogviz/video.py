"""Show and save videos: base64 H.264 inside a ``<video>`` tag (survives JupyterLab and HTML export),
a GIF fallback, mp4 / gif / PNG-strip files, and a titled side-by-side grid for ablations.

H.264 is encoded in process by PyAV (``av``, FFmpeg's libraries in its wheel) and read back by the
ffmpeg binary that the ``imageio-ffmpeg`` wheel ships (no system ffmpeg either way).
Frames are ``uint8 (F, H, W, 3)`` arrays, as :func:`cogviz.generate` returns them.
"""
from __future__ import annotations

import base64
import io
import os
import tempfile
import uuid
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .errors import CogvizError

__all__ = ["encode_mp4", "encode_gif", "to_html", "show", "save", "load", "frame_rate", "grid"]


def _check(frames) -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8 or len(a) == 0:
        raise CogvizError(f"frames must be a non-empty uint8 (F, H, W, 3) array, got {a.dtype} {a.shape}")
    return a


#: x264's constant rate factor for cogviz's videos (lower = closer to the frames; 10 is near-lossless)
MP4_CRF = 10
#: x264's speed preset: a sweep's writer encodes every run beside the model's compute. On the toy's
#: 17 x 64 x 96 videos "veryfast" takes about 40 % less CPU than x264's default ("medium"), with a
#: smaller file at the same rate factor and 0.15 dB lower PSNR to the frames (the metrics read the
#: frames themselves, never the file)
MP4_PRESET = "veryfast"


def encode_mp4(frames, fps: float = 8) -> bytes:
    """H.264 (yuv420p, x264 at :data:`MP4_CRF` and :data:`MP4_PRESET`) MP4 bytes, ``moov`` first (``+faststart``: a browser
    plays it before it has all of it); odd sizes are padded to even by replicating the edge. Encoded
    in this process by PyAV (FFmpeg's libraries), which a sweep's writer calls for every run: a
    subprocess's start-up alone cost three times the encoding."""
    import av

    a = _check(frames)
    h, w = a.shape[1:3]
    a = np.pad(a, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # yuv420p needs even sizes
    fd, path = tempfile.mkstemp(suffix=".mp4")  # faststart rewrites the file: a path, not a buffer
    os.close(fd)
    try:
        with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                    options={"crf": str(MP4_CRF), "preset": MP4_PRESET})
            stream.width, stream.height, stream.pix_fmt = a.shape[2], a.shape[1], "yuv420p"
            for f in a:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
            out.mux(stream.encode())  # flush the encoder
        return Path(path).read_bytes()
    finally:
        os.unlink(path)


def encode_gif(frames, fps: float = 8) -> bytes:
    a = _check(frames)
    imgs = [Image.fromarray(f) for f in a]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
    return buf.getvalue()


def to_html(frames, fps: float = 8, *, format: str = "mp4", width: int | None = None) -> str:
    """An HTML snippet that plays the video: ``<video>`` with embedded H.264, or ``<img>`` GIF."""
    a = _check(frames)
    width = width or max(a.shape[2], 240)
    if format == "gif":
        b64 = base64.b64encode(encode_gif(a, fps)).decode()
        return f'<img src="data:image/gif;base64,{b64}" width="{width}" style="image-rendering:pixelated"/>'
    if format != "mp4":
        raise CogvizError(f"format must be 'mp4' or 'gif', got {format!r}")
    b64 = base64.b64encode(encode_mp4(a, fps)).decode()
    return (f'<video width="{width}" controls autoplay loop muted playsinline style="image-rendering:pixelated">'
            f'<source src="data:video/mp4;base64,{b64}" type="video/mp4"/></video>')


def show(frames, fps: float = 8, *, format: str = "mp4", return_html: bool = False, width: int | None = None):
    """Display the video in a notebook, or return its HTML with ``return_html=True``."""
    html = to_html(frames, fps, format=format, width=width)
    if return_html:
        return html
    from IPython.display import HTML, display

    display(HTML(html))


def save(frames, path: str | os.PathLike, fps: float = 8) -> Path:
    """Write ``.mp4`` (H.264), ``.gif`` or ``.png`` (all frames side by side). Written atomically."""
    a = _check(frames)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        data = encode_mp4(a, fps)
    elif suffix == ".gif":
        data = encode_gif(a, fps)
    elif suffix == ".png":
        buf = io.BytesIO()
        Image.fromarray(np.concatenate(list(a), axis=1)).save(buf, format="PNG")
        data = buf.getvalue()
    else:
        raise CogvizError(f"cannot save {str(path)!r}: use a .mp4, .gif or .png file name")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # two writers never share one
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def _reader(path: Path):
    import imageio_ffmpeg

    if not path.is_file():
        raise CogvizError(f"no such video file: {str(path)!r}")
    # the container named, never guessed, and local files only: a playlist or a URL list renamed
    # .mp4 in a results folder someone else wrote is not followed
    return imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24",
                                      input_params=["-f", "mp4", "-protocol_whitelist", "file"])


def frame_rate(path: str | os.PathLike) -> float:
    """The frame rate an mp4 file was saved at (what :func:`save` was given)."""
    reader = _reader(Path(path))
    try:
        return float(next(reader)["fps"])
    except (OSError, RuntimeError, StopIteration, KeyError) as e:
        raise CogvizError(f"{str(path)!r} is not an mp4 video cogviz can read ({type(e).__name__})") from None
    finally:
        reader.close()


def load(path: str | os.PathLike) -> np.ndarray:
    """The frames of an mp4 file (the pair of :func:`save`): uint8 (F, H, W, 3)."""
    path = Path(path)
    reader = _reader(path)
    try:
        meta = next(reader)
        w, h = meta["size"]
        frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    except (OSError, RuntimeError, StopIteration) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise CogvizError(f"{str(path)!r} is not an mp4 video cogviz can read ({first})") from None
    if not frames:
        raise CogvizError(f"{str(path)!r} holds no frames")
    return np.stack(frames)


def _wrap(draw, text: str, width: int) -> list[str]:
    """Greedy lines of ``text`` no wider than ``width`` pixels, broken after '(', ',', '+' or a space
    (a piece wider than the width alone is cut by characters)."""
    import re

    lines, line = [], ""
    for piece in re.split(r"(?<=[(,+ ])", text):
        while draw.textlength(piece) > width:  # a piece too wide on its own
            k = max(1, max(i for i in range(1, len(piece) + 1) if draw.textlength(piece[:i]) <= width or i == 1))
            if line:
                lines.append(line)
                line = ""
            lines.append(piece[:k])
            piece = piece[k:]
        if line and draw.textlength(line + piece) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    if line:
        lines.append(line.rstrip())
    return lines or [""]


def grid(videos: dict[str, np.ndarray], *, title_height: int = 14, gap: int = 4) -> np.ndarray:
    """Titled videos side by side -> one uint8 (F, H', W', 3) video (shorter ones hold their last frame).
    A title wider than its video wraps onto more lines (the header grows by ``title_height - 2`` a line)."""
    if not videos:
        raise CogvizError("grid needs at least one video")
    arrays = {t: _check(v) for t, v in videos.items()}
    n = max(len(v) for v in arrays.values())
    h = max(v.shape[1] for v in arrays.values())
    w = sum(v.shape[2] for v in arrays.values()) + gap * (len(arrays) - 1)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = {t: _wrap(draw, t, v.shape[2] - 4) for t, v in arrays.items()}
    line = title_height - 2
    top = title_height + line * (max(len(ls) for ls in wrapped.values()) - 1)
    out = np.full((n, h + top, w, 3), 255, np.uint8)
    header = Image.new("RGB", (w, top), (255, 255, 255))
    draw = ImageDraw.Draw(header)
    x = 0
    for title, v in arrays.items():
        for k, text in enumerate(wrapped[title]):
            draw.text((x + 2, 1 + k * line), text, fill=(0, 0, 0))
        for f in range(n):
            out[f, top:top + v.shape[1], x:x + v.shape[2]] = v[min(f, len(v) - 1)]
        x += v.shape[2] + gap
    out[:, :top] = np.asarray(header)
    return out

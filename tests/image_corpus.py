"""Files that reproduce each class of loader failure, built byte by byte (nothing downloaded).

``tiff_without_dimensions``: a baseline TIFF whose IFD lacks ImageWidth/ImageLength.
``dds_unsupported``: a DirectDraw Surface whose FourCC pixel format Pillow does not implement.
``psd_layered``: an RGB Photoshop file with two layers and a flattened composite.
``valid_files``: one small valid file per common format, for header fuzzing.
"""
from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image


def _ifd_entry(tag: int, typ: int, count: int, value: int) -> bytes:
    if typ == 3 and count == 1:  # SHORT stored left-justified in the 4-byte value field
        return struct.pack("<HHIHH", tag, typ, count, value, 0)
    return struct.pack("<HHII", tag, typ, count, value)


def _tiff_ifd(offset: int, pixels_at: int, n_pixels: int, with_size: bool, next_ifd: int) -> bytes:
    entries = [(258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, pixels_at), (277, 3, 1, 1),
               (278, 3, 1, 4), (279, 4, 1, n_pixels)]
    if with_size:
        entries = [(256, 3, 1, 4), (257, 3, 1, 4)] + entries
    return (struct.pack("<H", len(entries)) + b"".join(_ifd_entry(*e) for e in entries)
            + struct.pack("<I", next_ifd))


def tiff_without_dimensions(first_page_ok: bool = True) -> bytes:
    """An 8-bit greyscale 4x4 TIFF whose (second) page has every baseline tag but width and height.

    With ``first_page_ok`` the first page is complete, so Pillow opens the file and fails only
    when it walks the pages (``n_frames``) - the class that leaked a ``TypeError``.
    """
    pixels = bytes(range(0, 256, 16))
    pix_at = 8
    ifd1_at = pix_at + len(pixels)
    ifd1_len = 2 + 12 * 9 + 4
    ifd2_at = ifd1_at + ifd1_len
    if not first_page_ok:
        return b"II*\0" + struct.pack("<I", ifd1_at) + pixels + _tiff_ifd(ifd1_at, pix_at, 16, False, 0)
    ifd1 = _tiff_ifd(ifd1_at, pix_at, 16, True, ifd2_at)
    ifd2 = _tiff_ifd(ifd2_at, pix_at, 16, False, 0)
    return b"II*\0" + struct.pack("<I", ifd1_at) + pixels + ifd1 + ifd2


def dds_unsupported(fourcc: bytes = b"YUY2") -> bytes:
    """A 4x4 DDS whose pixel format is a FourCC code Pillow has no decoder for."""
    header = struct.pack("<I", 124)
    header += struct.pack("<3I", 0x1 | 0x2 | 0x4 | 0x1000, 4, 4)  # flags, height, width
    header += struct.pack("<3I", 16, 0, 0) + b"\0" * 44  # pitch, depth, mipmaps, reserved
    header += struct.pack("<2I", 32, 0x4) + fourcc + struct.pack("<5I", 0, 0, 0, 0, 0)  # pixel format: FOURCC
    header += struct.pack("<4I", 0x1000, 0, 0, 0) + b"\0" * 4  # caps, reserved
    assert len(header) == 124
    return b"DDS " + header + b"\0" * 32


def _psd_channel_raw(plane: np.ndarray) -> bytes:
    return struct.pack(">H", 0) + plane.astype(np.uint8).tobytes()  # compression 0 = raw


def psd_layered(w: int = 8, h: int = 6) -> tuple[bytes, np.ndarray]:
    """An RGB PSD with two layers (red, blue square) and its composite; returns (bytes, composite RGB)."""
    composite = np.zeros((h, w, 3), np.uint8)
    composite[..., 0] = 200
    composite[1:4, 2:6] = (20, 40, 230)
    layers = [((0, 0, h, w), np.full((h, w, 3), (200, 0, 0), np.uint8), b"background"),
              ((1, 2, 4, 6), np.tile(np.array((20, 40, 230), np.uint8), (3, 4, 1)), b"square")]
    records, channel_data = b"", b""
    for (top, left, bottom, right), px, name in layers:
        chans = []
        for cid, plane in ((0, px[..., 0]), (1, px[..., 1]), (2, px[..., 2])):
            data = _psd_channel_raw(plane)
            chans.append((cid, data))
        rec = struct.pack(">4i", top, left, bottom, right) + struct.pack(">H", len(chans))
        rec += b"".join(struct.pack(">hI", cid, len(d)) for cid, d in chans)
        pname = bytes([len(name)]) + name
        pname += b"\0" * ((4 - len(pname) % 4) % 4)
        extra = struct.pack(">I", 0) + struct.pack(">I", 0) + pname  # no mask, no blending ranges
        rec += b"8BIMnorm" + bytes([255, 0, 0, 0]) + struct.pack(">I", len(extra)) + extra
        records += rec
        channel_data += b"".join(d for _, d in chans)
    layer_info = struct.pack(">h", len(layers)) + records + channel_data
    if len(layer_info) % 2:
        layer_info += b"\0"
    layer_block = struct.pack(">I", len(layer_info)) + layer_info
    layer_and_mask = struct.pack(">I", len(layer_block) + 4) + layer_block + struct.pack(">I", 0)
    header = b"8BPS" + struct.pack(">H", 1) + b"\0" * 6 + struct.pack(">HIIHH", 3, h, w, 8, 3)
    image_data = struct.pack(">H", 0) + b"".join(composite[..., c].tobytes() for c in range(3))
    return header + struct.pack(">I", 0) + struct.pack(">I", 0) + layer_and_mask + image_data, composite


def valid_files(seed: int = 0) -> dict[str, bytes]:
    """One small valid image per format: PNG, JPEG, GIF, TIFF, WEBP, BMP (a textured 40x30 RGB)."""
    rng = np.random.default_rng(seed)
    a = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(a)
    out = {}
    for fmt in ("PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP"):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        out[fmt] = buf.getvalue()
    return out

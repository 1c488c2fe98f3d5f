"""A minimal PNG writer: 8-bit indexed colour, zlib from the standard library.

The static picture has at most 256 colours (the widget's colour table), so one byte a pixel
and a palette (PNG colour type 3) is all it needs. Each row is filtered with "None" or "Up",
whichever leaves more zero bytes: rows repeated by cell magnification become zeros, and
deflate does the rest. The output depends only on the pixels and on zlib, so its size is
the same on every run.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_indexed(pixels: np.ndarray, palette: np.ndarray, level: int = 9) -> bytes:
    """PNG bytes of ``pixels`` (uint8 ``[height, width]``, indices into ``palette``, uint8
    ``[colours, 3]`` RGB, at most 256 colours)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    palette = np.ascontiguousarray(palette, dtype=np.uint8)
    if pixels.ndim != 2 or 0 in pixels.shape:
        raise ValueError(f"pixels must be a non-empty [height, width] array, got shape {pixels.shape}")
    if palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= palette.shape[0] <= 256:
        raise ValueError(f"palette must be [colours, 3] with 1 to 256 colours, got shape {palette.shape}")
    if int(pixels.max()) >= palette.shape[0]:
        raise ValueError(f"pixel index {int(pixels.max())} is outside the {palette.shape[0]}-colour palette")
    height, width = pixels.shape
    up = np.empty_like(pixels)
    up[0] = pixels[0]
    np.subtract(pixels[1:], pixels[:-1], out=up[1:])  # uint8 wraps modulo 256, as PNG's Up filter
    use_up = np.count_nonzero(up, axis=1) < np.count_nonzero(pixels, axis=1)
    use_up[0] = False
    rows = np.where(use_up[:, None], up, pixels)
    raw = np.empty((height, width + 1), dtype=np.uint8)
    raw[:, 0] = np.where(use_up, 2, 0)
    raw[:, 1:] = rows
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return b"".join(
        [
            SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"PLTE", palette.tobytes()),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
            _chunk(b"IEND", b""),
        ]
    )

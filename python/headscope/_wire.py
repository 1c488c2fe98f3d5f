"""The binary wire format (see docs/wire.md): atlas thumbnails and quantized head patterns."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from jaxtyping import Float

from . import _capture
from ._capture import MAX_THUMB
from ._run import AttentionRun

__all__ = ["MAX_THUMB", "decode_head", "encode_atlas", "encode_head", "thumb_size"]

def thumb_size(seq_len: int, n_heads_total: int = 1) -> int:
    """Side of every atlas thumbnail (see :func:`headscope._capture.thumb_size`)."""
    return _capture.thumb_size(seq_len, n_heads_total)


def encode_atlas(run: AttentionRun) -> tuple[int, bytes]:
    """Every head as a ``T x T`` uint8 thumbnail, ``[layer, head, query_bin, key_bin]``.

    A bin holds the largest weight inside it (max-pooling keeps thin diagonals visible). The
    run computed them while it was captured; ``T = min(seq_len, 64)``, smaller when
    ``n_layers * n_heads * T * T`` would pass 1.5 MB. Returns ``(T, bytes)``.
    """
    return run.thumb_size, run.thumbs.tobytes()


@lru_cache(maxsize=8)
def _lower_mask(n: int) -> np.ndarray:
    return np.tri(n, dtype=bool)


def encode_head(pattern: Float[np.ndarray, "query_pos key_pos"]) -> tuple[str, bytes, bytes]:
    """Quantize one head to ``(packing, scales, values)``.

    ``scales`` are the float32 row maxima, ``values`` uint8 fractions of them. A causal head
    (nothing above the diagonal) travels as its lower triangle, row by row (``"tril"``); any
    other head travels whole (``"full"``).
    """
    scales = pattern.max(axis=1).astype(np.float32)
    safe = np.where(scales > 0, scales, np.float32(1.0))
    q = pattern * (np.float32(255.0) / safe)[:, None]
    np.rint(q, out=q)
    values = q.astype(np.uint8)
    lower = _lower_mask(pattern.shape[0])
    causal = not values[~lower].any()
    if causal:
        values = values[lower]
    return ("tril" if causal else "full"), scales.astype("<f4").tobytes(), values.tobytes()


def decode_head(scales: bytes, values: bytes, seq_len: int, packing: str) -> np.ndarray:
    """The inverse of :func:`encode_head` (for tests and exports)."""
    s = np.frombuffer(scales, dtype="<f4")
    v = np.frombuffer(values, dtype=np.uint8)
    out = np.zeros((seq_len, seq_len), dtype=np.float32)
    if packing == "tril":
        out[_lower_mask(seq_len)] = v
    elif packing == "full":
        out[:] = v.reshape(seq_len, seq_len)
    else:
        raise ValueError(f"unknown packing {packing!r}; expected 'tril' or 'full'")
    return out * (s[:, None] / np.float32(255.0))

"""The binary wire format (see docs/wire.md): atlas thumbnails and quantized head patterns."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float

from ._run import AttentionRun

#: Largest side of an atlas thumbnail.
MAX_THUMB = 64


def thumb_size(seq_len: int) -> int:
    return min(seq_len, MAX_THUMB)


def encode_atlas(run: AttentionRun) -> tuple[int, bytes]:
    """Every head as a ``T x T`` uint8 thumbnail, ``[layer, head, query_bin, key_bin]``.

    A bin holds the largest weight inside it (max-pooling keeps thin diagonals visible).
    Returns ``(T, bytes)``.
    """
    size = thumb_size(run.seq_len)
    out = np.empty((run.n_layers, run.n_heads, size, size), dtype=np.uint8)
    for layer, pattern in enumerate(run.layers):  # vectorized over heads; one pass per layer
        pooled = pattern if size == run.seq_len else F.adaptive_max_pool2d(pattern, size)
        out[layer] = (pooled * 255.0).round_().to(torch.uint8).numpy()
    return size, out.tobytes()


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

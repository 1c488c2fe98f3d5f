"""The binary wire: quantized heads and atlas thumbnails (docs/wire.md)."""

from __future__ import annotations

import numpy as np
import pytest

from headscope._run import make_run
from headscope._wire import MAX_THUMB, decode_head, encode_atlas, encode_head


@pytest.mark.parametrize("n", [1, 7, 300])
def test_tril_round_trip_within_half_a_step(make_attention, n: int) -> None:
    head = make_attention(1, 1, n, seed=n)[0, 0]
    packing, scales, values = encode_head(head)
    assert packing == "tril"
    assert len(values) == n * (n + 1) // 2
    assert len(scales) == 4 * n
    decoded = decode_head(scales, values, n, "tril")
    bound = head.max(axis=1, keepdims=True) / 510 + 1e-7
    assert np.all(np.abs(decoded - head) <= bound)


def test_non_causal_heads_travel_whole() -> None:
    rng = np.random.default_rng(1)
    head = rng.dirichlet(np.ones(6), size=6).astype(np.float32)
    packing, scales, values = encode_head(head)
    assert packing == "full"
    assert len(values) == 36
    np.testing.assert_allclose(decode_head(scales, values, 6, "full"), head, atol=1 / 510)


def test_diffuse_rows_keep_their_precision() -> None:
    """A row of 1/1024 weights must not quantize to zero (per-row scales)."""
    n = 1024
    head = np.tril(np.ones((n, n), np.float32))
    head /= head.sum(axis=1, keepdims=True)
    packing, scales, values = encode_head(head)
    decoded = decode_head(scales, values, n, packing)
    np.testing.assert_allclose(decoded[-1], head[-1], rtol=1e-6)


def test_all_zero_row_is_safe() -> None:
    head = np.zeros((3, 3), np.float32)
    _, scales, values = encode_head(head)
    decoded = decode_head(scales, values, 3, "tril")
    assert not np.isnan(decoded).any() and decoded.max() == 0


def test_unknown_packing() -> None:
    with pytest.raises(ValueError, match="unknown packing 'x'"):
        decode_head(b"\0" * 4, b"\0", 1, "x")


def test_small_atlas_is_the_pattern_itself(make_attention) -> None:
    att = make_attention(2, 3, 10)
    size, atlas = encode_atlas(make_run([str(i) for i in range(10)], att))
    assert size == 10
    thumbs = np.frombuffer(atlas, np.uint8).reshape(2, 3, 10, 10)
    np.testing.assert_array_equal(thumbs, np.rint(att * 255).astype(np.uint8))


def test_large_atlas_max_pools_so_thin_lines_survive() -> None:
    n = 500
    previous_token = np.zeros((1, 1, n, n), np.float32)
    previous_token[0, 0, 0, 0] = 1
    previous_token[0, 0, np.arange(1, n), np.arange(n - 1)] = 1
    size, atlas = encode_atlas(make_run([str(i) for i in range(n)], previous_token))
    assert size == MAX_THUMB
    thumb = np.frombuffer(atlas, np.uint8).reshape(size, size)
    assert all(thumb[i, i] == 255 or thumb[i, max(i - 1, 0)] == 255 for i in range(size))
    assert thumb[size - 1, 0] == 0  # far from the diagonal nothing is lit


def test_budget_at_1024_tokens_144_heads() -> None:
    """First paint (atlas + one head) <= 2 MB; each further head <= 0.6 MB."""
    n, layers, heads = 1024, 12, 12
    att = np.zeros((layers, heads, n, n), np.float32)
    att[..., 0] = 1.0
    run = make_run([f"t{i}" for i in range(n)], att)
    _, atlas = encode_atlas(run)
    _, scales, values = encode_head(run.head(0, 0))
    head_bytes = len(scales) + len(values)
    assert head_bytes <= 600_000
    assert len(atlas) + head_bytes <= 2_000_000

"""Validation of precomputed attention: every bad input names the problem and the shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headscope._run import check_head, make_run

TOKENS = ["<bos>", "a", "b", "c"]


def test_accepts_every_documented_shape(make_attention) -> None:
    full = make_attention(3, 2, 4)
    assert make_run(TOKENS, full).pattern.shape == (3, 2, 4, 4)
    assert make_run(TOKENS, full[0]).pattern.shape == (1, 2, 4, 4)
    assert make_run(TOKENS, full[0, 0]).pattern.shape == (1, 1, 4, 4)
    per_layer = [torch.from_numpy(layer)[None] for layer in full]  # cache entries, batch dim 1
    run = make_run(TOKENS, per_layer)
    np.testing.assert_array_equal(run.pattern, full)


def test_torch_and_numpy_agree(make_attention) -> None:
    full = make_attention(1, 2, 4)
    a = make_run(TOKENS, full).pattern
    b = make_run(TOKENS, torch.from_numpy(full).to(torch.float16)).pattern
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_token_count_mismatch_names_both(make_attention) -> None:
    with pytest.raises(ValueError, match=r"4 tokens.*\[2, 4, 4\]"):
        make_run(TOKENS, make_attention(1, 2, 5))


def test_wrong_rank_names_expected_shapes() -> None:
    with pytest.raises(ValueError, match=r"shape \(1, 1, 1, 4, 4\).*\[layer, head, query_pos, key_pos\]"):
        make_run(TOKENS, np.zeros((1, 1, 1, 4, 4), np.float32))


def test_non_square_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(1, 4, 3\)"):
        make_run(TOKENS, np.zeros((1, 4, 3), np.float32))


def test_unequal_heads_per_layer(make_attention) -> None:
    a = make_attention(1, 2, 4)[0]
    with pytest.raises(ValueError, match="layer 1 has 3 heads but layer 0 has 2"):
        make_run(TOKENS, [a, np.concatenate([a, a[:1]])])


def test_nan_is_located(make_attention) -> None:
    att = make_attention(2, 2, 4)
    att[1, 0, 3, 2] = np.nan
    with pytest.raises(ValueError, match="1 NaN.*layer 1, head 0, query_pos 3, key_pos 2"):
        make_run(TOKENS, att)


def test_scores_instead_of_weights_are_rejected(make_attention) -> None:
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*not scores"):
        make_run(TOKENS, make_attention(1, 1, 4) * 5 - 1)


@pytest.mark.parametrize(
    ("tokens", "error", "message"),
    [
        ("abcd", TypeError, "list of strings"),
        (["a", 2, "c", "d"], TypeError, r"tokens\[1\] is int"),
        ([], ValueError, "tokens is empty"),
    ],
)
def test_bad_tokens(tokens, error, message) -> None:
    with pytest.raises(error, match=message):
        make_run(tokens, np.zeros((1, 1, 4, 4), np.float32))


def test_bad_container_type() -> None:
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        make_run(TOKENS, [[0.0] * 4] * 4)


def test_caller_array_is_never_modified(make_attention) -> None:
    att = make_attention(1, 1, 4)
    att[0, 0, 0, 0] = 1.0005  # float rounding above 1 is tolerated and clamped in our copy
    before = att.copy()
    run = make_run(TOKENS, att)
    np.testing.assert_array_equal(att, before)
    assert run.pattern.max() <= 1.0


def test_check_head_ranges() -> None:
    assert check_head(np.int64(1), 2, 2, 3) == (1, 2)
    with pytest.raises(ValueError, match=r"layer 2 is out of range: the model has 2 layers \(0-1\)"):
        check_head(2, 0, 2, 3)
    with pytest.raises(ValueError, match=r"head -1 is out of range"):
        check_head(0, -1, 2, 3)
    with pytest.raises(TypeError, match="head must be an int, got str"):
        check_head(0, "1", 2, 3)
    with pytest.raises(TypeError, match="layer must be an int, got bool"):
        check_head(True, 0, 2, 3)

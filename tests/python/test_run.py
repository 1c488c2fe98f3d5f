"""Validation of precomputed attention: every bad input names the problem and the shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headscope._run import check_head, make_run

from conftest import assert_quantized_close

TOKENS = ["<bos>", "a", "b", "c"]


def test_accepts_every_documented_shape(make_attention) -> None:
    full = make_attention(3, 2, 4)
    assert make_run(TOKENS, full).pattern.shape == (3, 2, 4, 4)
    assert make_run(TOKENS, full[0]).pattern.shape == (1, 2, 4, 4)
    assert make_run(TOKENS, full[0, 0]).pattern.shape == (1, 1, 4, 4)
    per_layer = [torch.from_numpy(layer)[None] for layer in full]  # cache entries, batch dim 1
    run = make_run(TOKENS, per_layer)
    assert_quantized_close(run.pattern, full)


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


# --- rows are softmax outputs, and causal heads do not look ahead ---------------------------


def test_a_row_that_does_not_sum_to_one_is_located(make_attention) -> None:
    att = make_attention(2, 3, 4)
    att[1, 2, 3] *= 0.5  # every weight of that row halved: it sums to 0.5, each weight stays in [0, 1]
    with pytest.raises(ValueError, match=r"sum to 1 .*layer 1, head 2, query_pos 3 sums to 0\.5\b"):
        make_run(TOKENS, att)


def test_rows_above_one_name_dropout(make_attention) -> None:
    att = make_attention(1, 2, 4)
    att[0, 1, 2] = [0.37, 0.37, 0.37, 0.0]  # dropout: a third of 1.11 each
    with pytest.raises(ValueError, match=r"head 1, query_pos 2 sums to 1\.11.*dropout"):
        make_run(TOKENS, att)


def test_an_all_zero_row_such_as_padding_is_refused(make_attention) -> None:
    att = make_attention(1, 1, 4)
    att[0, 0, 3] = 0.0
    with pytest.raises(ValueError, match=r"query_pos 3 sums to 0 .*all-zero row.*padding"):
        make_run(TOKENS, att)


def test_transposed_attention_is_recognised(make_attention) -> None:
    att = make_attention(1, 2, 4).swapaxes(-1, -2)  # [key_pos, query_pos]: columns sum to 1
    with pytest.raises(ValueError, match=r"looks transposed"):
        make_run(TOKENS, att)


def test_weight_above_the_diagonal_is_located() -> None:
    att = np.broadcast_to(np.tril(np.ones((4, 4), np.float32)), (2, 2, 4, 4)).copy()
    att /= att.sum(-1, keepdims=True)
    att[1, 1, 1] = [0.25, 0.25, 0.0, 0.5]  # query 1 looks at the later key 3
    with pytest.raises(
        ValueError, match=r"above the diagonal: layer 1, head 1, query_pos 1 attends to the later key_pos 3 with weight 0\.5"
    ):
        make_run(TOKENS, att)


def test_bidirectional_attention_needs_causal_false() -> None:
    att = np.full((1, 2, 4, 4), 0.25, np.float32)
    with pytest.raises(ValueError, match="causal=False"):
        make_run(TOKENS, att)
    assert make_run(TOKENS, att, causal=False).pattern.shape == (1, 2, 4, 4)
    att[0, 1, 2] = [0.25, 0.25, 0.25, 0.0]  # causal=False still checks the row sums
    with pytest.raises(ValueError, match=r"head 1, query_pos 2 sums to 0\.75"):
        make_run(TOKENS, att, causal=False)
    with pytest.raises(TypeError, match="causal must be True or False, got str"):
        make_run(TOKENS, att, causal="no")


def test_long_inputs_locate_the_first_weight_above_the_diagonal(make_attention) -> None:
    """Rows are checked in blocks; a late block, its diagonal square and the last key count."""
    n = 300
    tokens = [str(i) for i in range(n)]
    for q, k in [(0, n - 1), (250, 251), (298, 299), (170, 200)]:
        att = make_attention(1, 2, n)
        att[0, 1, q] *= 0.5
        att[0, 1, q, k] = 0.5
        with pytest.raises(ValueError, match=rf"head 1, query_pos {q} attends to the later key_pos {k} "):
            make_run(tokens, att)


def test_float_noise_passes(make_attention) -> None:
    att = make_attention(2, 2, 4).astype(np.float64)
    att[0, 0, 1] *= 1 + 5e-4  # a row sum off by less than 1e-3
    att[1, 1, 0, 1:] = 1e-5  # near-zero weight where a finite mask underflowed to almost nothing
    assert make_run(TOKENS, att).n_layers == 2


def test_bfloat16_rows_get_the_precision_of_bfloat16() -> None:
    """Softmax in float32 stored as bfloat16 (what many models hand out) is off by more than
    1e-3 per row; the tolerance follows the input's precision."""
    n = 64
    scores = torch.randn(2, 4, n, n, generator=torch.Generator().manual_seed(0)) * 2
    scores.masked_fill_(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    att = torch.softmax(scores, -1).to(torch.bfloat16)
    assert float((att.float().sum(-1) - 1).abs().max()) > 1e-3  # a float32 tolerance would refuse it
    run = make_run([str(i) for i in range(n)], att)
    assert run.n_heads == 4
    with pytest.raises(ValueError, match=r"sum to 1 \(softmax over key_pos\) within 0\.016"):
        make_run([str(i) for i in range(n)], att * 0.95)


def test_partial_rows_allow_sinks_but_not_more_than_one(make_attention) -> None:
    att = make_attention(1, 2, 4) * 0.8  # a sink took a fifth of every row
    assert make_run(TOKENS, att, partial_rows=True).n_heads == 2
    att[0, 0, 3] = 0.3  # 1.2 in all
    with pytest.raises(ValueError, match=r"sum to at most 1 .*head 0, query_pos 3 sums to 1\.2\b"):
        make_run(TOKENS, att, partial_rows=True)


@pytest.mark.parametrize("as_list", [False, True])
def test_meta_tensors_have_no_values(as_list: bool) -> None:
    meta = torch.empty(2, 4, 4, device="meta")
    with pytest.raises(ValueError, match=r"attention(\[0\])? is on the meta device: it has no values"):
        make_run(TOKENS, [meta] if as_list else meta)


def test_show_attention_passes_causal_on() -> None:
    import headscope

    att = np.full((1, 1, 4, 4), 0.25, np.float32)
    with pytest.raises(ValueError, match="above the diagonal"):
        headscope.show_attention(TOKENS, att)
    assert headscope.show_attention(TOKENS, att, causal=False).n_layers == 1
    with pytest.raises(ValueError, match="meta device"):
        headscope.show_attention(["a", "b", "c"], torch.empty(2, 3, 3, device="meta"))

"""Head scores on hand-made patterns, exact values, and agreement with a slow reference."""

from __future__ import annotations

import os
from fractions import Fraction

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from headscope._scores import (
    duplicate_token_score,
    duplicate_token_targets,
    head_scores,
    induction_score,
    induction_targets,
    previous_token_score,
)

BOS = 256


def uniform_causal(n: int) -> np.ndarray:
    """Row q attends 1/(q+1) to every key k <= q."""
    q = np.arange(n)[:, None]
    k = np.arange(n)[None, :]
    return np.where(k <= q, 1.0 / (q + 1), 0.0)


def one_hot_rows(n: int, keys: list[int]) -> np.ndarray:
    p = np.zeros((n, n))
    p[np.arange(n), keys] = 1.0
    return p


# --- exact values -----------------------------------------------------------------------


def test_previous_token_uniform_exact() -> None:
    # queries 1..3 put 1/2, 1/3, 1/4 on their previous key; the BOS row is left out
    expected = float((Fraction(1, 2) + Fraction(1, 3) + Fraction(1, 4)) / 3)
    assert previous_token_score(uniform_causal(4)) == pytest.approx(expected, abs=1e-12)


def test_previous_token_perfect_and_bos_row_ignored() -> None:
    # every row q>=1 on q-1; row 0 on itself (it can do nothing else)
    p = one_hot_rows(5, [0, 0, 1, 2, 3])
    assert previous_token_score(p) == 1.0
    # the same, but every row on BOS: only query 1 (whose previous token IS the BOS) scores
    p = one_hot_rows(5, [0, 0, 0, 0, 0])
    assert previous_token_score(p) == pytest.approx(1 / 4)


def test_induction_uniform_exact() -> None:
    tokens = [BOS, 5, 6, 5, 6]
    # q=3 (5): target k=2; q=4 (6): target k=3; q=1, q=2 have no earlier occurrence
    expected = (1 / 4 + 1 / 5) / 2
    assert induction_score(uniform_causal(5), tokens) == pytest.approx(expected, abs=1e-12)


def test_induction_excludes_self_target() -> None:
    tokens = [BOS, 7, 7, 7]
    mask = induction_targets(tokens)
    # q=3: occurrences of 7 at 1 and 2 -> targets 2 and 3, but 3 is the query itself
    assert mask.tolist() == [
        [False, False, False, False],
        [False, False, False, False],
        [False, False, False, False],
        [False, False, True, False],
    ]
    p = one_hot_rows(4, [0, 0, 2, 3])  # q=3 attends to itself
    assert induction_score(p, tokens) == 0.0
    p = one_hot_rows(4, [0, 0, 2, 2])
    assert induction_score(p, tokens) == 1.0


def test_induction_perfect_on_repeated_sequence() -> None:
    seg = [11, 12, 13, 14]
    tokens = [BOS, *seg, *seg]
    n = len(tokens)
    # first copy and first token of the second copy look at BOS; then q -> q - 4 + 1
    keys = [0] * 5 + [q - 4 + 1 for q in range(5, n)]
    assert induction_score(one_hot_rows(n, keys), tokens) == 1.0
    # rows with targets: q = 5..8 (the whole second copy)
    assert induction_targets(tokens).any(-1).tolist() == [False] * 5 + [True] * 4


def test_duplicate_uniform_exact() -> None:
    tokens = [BOS, 7, 7, 7]
    # q=2: key 1 -> 1/3; q=3: keys 1, 2 -> 2/4
    expected = (1 / 3 + 2 / 4) / 2
    assert duplicate_token_score(uniform_causal(4), tokens) == pytest.approx(expected, abs=1e-12)
    assert duplicate_token_targets(tokens)[3].tolist() == [False, True, True, False]


def test_split_mass_over_several_targets_counts_whole_mass() -> None:
    tokens = [BOS, 1, 2, 1, 2, 1]
    p = np.zeros((6, 6))
    p[:, 0] = 1.0
    # q=5 (token 1): induction targets k=2 and k=4; put 0.3 + 0.5 there
    p[5] = [0.2, 0.0, 0.3, 0.0, 0.5, 0.0]
    s = induction_score(p, tokens)
    # rows with targets: q=3 (k=2), q=4 (k=3), q=5 (k=2, 4); only q=5 has mass
    assert s == pytest.approx(0.8 / 3)


def test_no_target_gives_nan() -> None:
    tokens = [BOS, 1, 2, 3]
    p = uniform_causal(4)
    assert np.isnan(induction_score(p, tokens))
    assert np.isnan(duplicate_token_score(p, tokens))
    assert np.isnan(previous_token_score(uniform_causal(1)))
    t = induction_score(torch.tensor(p[None, None]), tokens)
    assert t.shape == (1, 1) and torch.isnan(t).all()


# --- shapes, types, validation ----------------------------------------------------------


def random_pattern(rng: np.random.Generator, *lead: int, n: int) -> np.ndarray:
    logits = rng.normal(size=(*lead, n, n)) * 2
    logits = np.where(np.tri(n, dtype=bool), logits, -np.inf)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_torch_and_numpy_agree_and_keep_their_kind() -> None:
    rng = np.random.default_rng(0)
    p = random_pattern(rng, 2, 3, n=12).astype(np.float32)
    tokens = np.concatenate([[BOS], rng.integers(0, 4, 11)])
    for name, value in head_scores(p, tokens).items():
        tv = head_scores(torch.from_numpy(p), torch.from_numpy(tokens))[name]
        assert isinstance(value, np.ndarray) and value.shape == (2, 3), name
        assert isinstance(tv, torch.Tensor) and tv.shape == (2, 3), name
        np.testing.assert_allclose(tv.numpy(), value, rtol=1e-6, atol=1e-7)


def test_validation_errors() -> None:
    with pytest.raises(ValueError, match="square"):
        previous_token_score(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="positions"):
        induction_score(np.zeros((1, 1, 4, 4)), [BOS, 1, 2])
    with pytest.raises(ValueError, match="1-D"):
        induction_score(np.zeros((4, 4)), np.zeros((1, 4), dtype=int))


# --- vectorization: every head at once equals a slow per-head, per-position reference ----


def slow_reference(pattern: np.ndarray, tokens: list[int]) -> dict[str, np.ndarray]:
    n_layers, n_heads, n, _ = pattern.shape
    out = {k: np.full((n_layers, n_heads), np.nan) for k in ("previous_token", "induction", "duplicate_token")}
    for layer in range(n_layers):
        for head in range(n_heads):
            p = pattern[layer, head]
            out["previous_token"][layer, head] = np.mean([p[q, q - 1] for q in range(1, n)])
            ind, dup = [], []
            for q in range(n):
                targets = [k for k in range(1, q) if tokens[k - 1] == tokens[q]]
                if targets:
                    ind.append(sum(p[q, k] for k in targets))
                same = [k for k in range(q) if tokens[k] == tokens[q]]
                if same:
                    dup.append(sum(p[q, k] for k in same))
            out["induction"][layer, head] = np.mean(ind)
            out["duplicate_token"][layer, head] = np.mean(dup)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_slow_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 40
    seg = list(rng.integers(0, 6, 19))
    tokens = [BOS, *seg, *seg, int(rng.integers(0, 6))][:n]
    p = random_pattern(rng, 3, 5, n=n)
    want = slow_reference(p, tokens)
    got = head_scores(p, tokens)
    got_t = head_scores(torch.from_numpy(p), torch.tensor(tokens))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(got_t[name].numpy(), want[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_gpt2_geometry_gives_one_score_per_head() -> None:
    """144 heads x 256 positions in one call: every score is [layer, head] and in [0, 1].

    (Speed is measured in benchmarks/, never asserted in a test.)
    """
    rng = np.random.default_rng(0)
    p = torch.softmax(torch.randn(12, 12, 256, 256), -1)
    tokens = torch.as_tensor(rng.integers(0, 50, 256))
    scores = head_scores(p, tokens)
    for name, value in scores.items():
        assert value.shape == (12, 12), name
        assert bool(((value >= 0) & (value <= 1 + 1e-6)).all()), name


# --- relation to TransformerLens detect_head's "mul" measure ----------------------------


def test_relation_to_transformer_lens_mul() -> None:
    """mul = score * n_valid / N when target sets agree (no two equal adjacent tokens)."""
    hd = pytest.importorskip("transformer_lens.head_detector")
    rng = np.random.default_rng(3)
    seg = list(rng.permutation(50)[:15])
    tokens = torch.tensor([BOS, *seg, *seg])
    n = len(tokens)
    p = torch.from_numpy(random_pattern(rng, 1, 1, n=n)).float()
    cases = {
        "previous_token_head": (previous_token_score, np.eye(n, k=-1, dtype=bool)),
        "duplicate_token_head": (duplicate_token_score, duplicate_token_targets(tokens)),
        "induction_head": (induction_score, induction_targets(tokens)),
    }
    for name, (fn, mask) in cases.items():
        det = getattr(hd, f"get_{name}_detection_pattern")(tokens[None])
        assert np.array_equal(det.numpy().astype(bool), mask), name
        mul = hd.compute_head_attention_similarity_score(
            p[0, 0], det, exclude_bos=False, exclude_current_token=False, error_measure="mul"
        )
        ours = float(fn(p, tokens)[0, 0])
        assert mul == pytest.approx(ours * mask.any(-1).sum() / n, rel=1e-5), name


def test_bos_sink_and_entropy_on_hand_made_heads() -> None:
    import torch

    from headscope._scores import bos_sink_score, entropy_score

    n = 6
    sink = np.zeros((n, n), np.float32)
    sink[:, 0] = 1
    uniform = np.tril(np.ones((n, n), np.float32))
    uniform /= uniform.sum(-1, keepdims=True)
    heads = np.stack([sink, uniform])  # [head, query_pos, key_pos]
    np.testing.assert_allclose(bos_sink_score(heads), [1.0, np.mean([1 / (q + 1) for q in range(1, n)])], rtol=1e-6)
    np.testing.assert_allclose(entropy_score(heads), [0.0, 1.0], atol=1e-6)
    as_torch = entropy_score(torch.from_numpy(heads))
    assert isinstance(as_torch, torch.Tensor)
    np.testing.assert_allclose(as_torch.numpy(), [0.0, 1.0], atol=1e-6)
    assert np.isnan(entropy_score(np.ones((1, 1), np.float32)))


def test_entropy_lies_between_zero_and_one_on_random_heads() -> None:
    from headscope._scores import entropy_score

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3, size=(3, 4, 20, 20))
    logits[..., np.triu(np.ones((20, 20), dtype=bool), 1)] = -np.inf
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    e = entropy_score(p)
    assert e.shape == (3, 4) and np.all((e > 0) & (e < 1))


def test_entropy_of_non_causal_heads_uses_every_key() -> None:
    from headscope._scores import entropy_score

    full = np.full((1, 5, 5), 0.2, np.float32)  # uniform over all 5 keys, non-causal
    np.testing.assert_allclose(entropy_score(full), [1.0], atol=1e-6)


@pytest.mark.parametrize(
    "prompt",
    [
        "The cat sat on the mat. The cat sat on the mat.",
        "aa bb aa: Mississippi, sassafras, aardvark!",  # equal neighbours: detect_head's self target
    ],
)
def test_detect_head_convention_equals_transformer_lens(prompt: str) -> None:
    """head_scores(..., convention="detect_head") equals detect_head("mul") on the same cache."""
    import headscope
    from transformer_lens.head_detector import detect_head

    model = headscope.load_model("builtin")
    tokens = model.to_tokens(prompt)
    _, cache = model.run_with_cache(
        tokens, remove_batch_dim=True, names_filter=lambda name: name.endswith("hook_pattern")
    )
    ours = headscope.head_scores(model, prompt, convention="detect_head")
    assert set(ours) == {"previous_token", "induction", "duplicate_token"}
    for name in ours:
        theirs = detect_head(model, prompt, f"{name}_head", cache=cache, error_measure="mul")
        np.testing.assert_allclose(ours[name], theirs.numpy(), atol=1e-5, err_msg=name)
    # the default convention is a different, documented quantity: not equal where rows lack targets
    rows = headscope.head_scores(model, prompt)
    assert not np.allclose(rows["induction"], ours["induction"], atol=1e-3)


def test_detect_head_custom_template_and_bad_convention() -> None:
    import headscope
    from transformer_lens.head_detector import compute_head_attention_similarity_score

    model = headscope.load_model("builtin")
    prompt = "one two one two"
    n = len(model.to_str_tokens(prompt))
    template = np.zeros((n, n))
    template[2:, 0] = 1  # rows 0 and 1 have no target
    ours = headscope.head_scores(model, prompt, template=template, convention="detect_head")
    from headscope._adapters import capture_patterns

    layer, head = 1, 3
    _, patterns = capture_patterns(model, model.to_tokens(prompt, truncate=False))
    theirs = compute_head_attention_similarity_score(
        patterns[layer][0, head], torch.as_tensor(template, dtype=torch.float32),
        exclude_bos=False, exclude_current_token=False, error_measure="mul",
    )
    assert ours["custom"][layer, head] == pytest.approx(theirs, abs=1e-5)  # exact: from the float weights
    # on a run, from its quantized weights: each within row max / 510, one target per row here
    run = headscope.show(model, prompt).run_result
    on_run = headscope.head_scores(run, template=template, convention="detect_head")
    assert on_run["custom"][layer, head] == pytest.approx(theirs, abs=1 / 510)
    with pytest.raises(ValueError, match="unknown convention 'mul'"):
        headscope.head_scores(model, prompt, convention="mul")

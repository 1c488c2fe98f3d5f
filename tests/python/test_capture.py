"""Streaming capture: each layer reduced as it is produced (headscope._capture).

The run keeps thumbnails, exact scores and the wire's quantized head form; these tests compare
each with the float reference it replaces, check the bytes a run holds, and the layers computed
again on demand under a memory budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from conftest import assert_quantized_close, causal_attention

import headscope
from headscope import _capture
from headscope._adapters import capture_patterns, run_model, run_token_ids
from headscope._run import PatternTooLargeError, make_run
from headscope._scores import layered_head_scores
from headscope._wire import decode_head, encode_atlas, encode_head


@pytest.fixture
def small_blocks(monkeypatch) -> None:
    """Row blocks of a few rows, so that every path across block boundaries is exercised."""
    monkeypatch.setattr(_capture, "BLOCK_ELEMENTS", 200)


def bidirectional(n_layers: int, n_heads: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    att = rng.random((n_layers, n_heads, n, n)).astype(np.float32) ** 4
    return (att / att.sum(-1, keepdims=True)).astype(np.float32)


def repeating_tokens(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [str(t) for t in rng.integers(0, 6, n)]  # few distinct tokens: many targets


def assert_scores_match(run: Any, att: np.ndarray) -> None:
    ids = run.score_ids()
    for convention in ("rows", "detect_head"):
        expected = layered_head_scores(list(torch.from_numpy(att)), ids, convention=convention)
        got = run.head_scores(convention)
        assert set(got) == set(expected)
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=f"{convention} {name}")


@pytest.mark.parametrize("n", [1, 2, 3, 37, 130])
def test_causal_heads_decode_within_half_a_step_and_match_the_wire_bytes(n, small_blocks) -> None:
    att = causal_attention(2, 3, n, seed=n)
    run = make_run(repeating_tokens(n), att)
    assert_quantized_close(run.pattern, att)
    for layer in range(2):
        for head in range(3):
            packing, scales, values = run.encode_head(layer, head)
            assert (packing, scales, values) == encode_head(att[layer, head])  # the same bytes
            assert packing == "tril" and len(values) == n * (n + 1) // 2
            np.testing.assert_array_equal(decode_head(scales, values, n, packing), run.head(layer, head))


def test_the_accelerator_packing_gives_the_same_bytes(small_blocks, monkeypatch) -> None:
    """The one-gather packing (used off the CPU) equals the row-by-row copy."""
    att = causal_attention(2, 3, 70, seed=9)
    by_rows = make_run([str(i) for i in range(70)], att)
    monkeypatch.setattr(_capture, "_copy_rows", lambda device: False)
    gathered = make_run([str(i) for i in range(70)], att)
    for layer in range(2):
        for head in range(3):
            assert gathered.encode_head(layer, head) == by_rows.encode_head(layer, head) == encode_head(att[layer, head])


def test_bidirectional_heads_travel_whole_and_decode(small_blocks) -> None:
    att = bidirectional(2, 3, 40)
    run = make_run([str(i) for i in range(40)], att, causal=False)
    for layer in range(2):
        for head in range(3):
            assert run.encode_head(layer, head) == encode_head(att[layer, head])
            assert run.encode_head(layer, head)[0] == "full"
    assert_quantized_close(run.pattern, att)


def test_a_bidirectional_run_whose_heads_are_causal_is_packed_as_a_triangle() -> None:
    att = causal_attention(1, 2, 20)
    run = make_run([str(i) for i in range(20)], att, causal=False)
    assert run.encode_head(0, 1) == encode_head(att[0, 1])
    assert run.encode_head(0, 1)[0] == "tril"


@pytest.mark.parametrize("n", [1, 2, 5, 64, 129])
def test_scores_equal_the_float_reference(n, small_blocks) -> None:
    att = causal_attention(2, 3, n, seed=7)
    assert_scores_match(make_run(repeating_tokens(n, seed=n), att), att)


def test_scores_of_bidirectional_attention_equal_the_float_reference(small_blocks) -> None:
    att = bidirectional(2, 3, 50, seed=3)
    att[1, 2] = np.tril(att[1, 2])  # one causal head among bidirectional ones (entropy's keys)
    att[1, 2] /= att[1, 2].sum(-1, keepdims=True)
    assert_scores_match(make_run(repeating_tokens(50, seed=3), att, causal=False), att)


def test_scores_with_every_token_distinct_and_every_token_equal(small_blocks) -> None:
    att = causal_attention(1, 2, 48, seed=1)
    assert_scores_match(make_run([str(i) for i in range(48)], att), att)
    assert_scores_match(make_run(["a"] * 48, att), att)


@pytest.mark.parametrize(("n", "causal"), [(150, True), (128, True), (192, True), (128, False), (64, True)])
def test_thumbnails_equal_max_pooling_of_the_floats(n, causal, small_blocks) -> None:
    """Bins of equal width (n a multiple of 64) are pooled block by block; others at the end."""
    att = causal_attention(2, 2, n, seed=2) if causal else bidirectional(2, 2, n, seed=2)
    size, atlas = encode_atlas(make_run([str(i) for i in range(n)], att, causal=causal))
    pooled = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(att).flatten(0, 1), size)
    expected = (pooled * 255).round().to(torch.uint8).numpy().reshape(2, 2, size, size)
    assert size == 64
    np.testing.assert_array_equal(np.frombuffer(atlas, np.uint8).reshape(2, 2, size, size), expected)


@pytest.mark.parametrize(("n", "block_rows", "by_rows"), [(128, 4, True), (256, 128, True), (192, 128, False), (128, 3, False)])
def test_thumbnails_pooled_by_blocks_equal_max_pooling(n, block_rows, by_rows, monkeypatch) -> None:
    """Blocks of rows that fill whole bins pool their rows as they pass; others pool keys."""
    monkeypatch.setattr(_capture, "BLOCK_ELEMENTS", 2 * n * block_rows)
    assert _capture.BlockPool(2, n, 64, block_rows, torch.device("cpu")).by_rows == by_rows
    att = causal_attention(1, 2, n, seed=4)
    size, atlas = encode_atlas(make_run([str(i) for i in range(n)], att))
    pooled = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(att[0]), size)
    expected = (pooled * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(np.frombuffer(atlas, np.uint8).reshape(2, size, size), expected)


def test_thumbnails_shrink_with_the_head_count() -> None:
    assert _capture.thumb_size(1024, 144) == 64
    assert _capture.thumb_size(1024, 256) == 64
    assert _capture.thumb_size(20, 1024) == 20
    for heads in (367, 1024, 4096):
        size = _capture.thumb_size(4096, heads)
        assert size < 64 and heads * size * size <= _capture.ATLAS_BUDGET < heads * (size + 1) ** 2


def test_bytes_held_at_512_tokens_are_the_quantized_triangle() -> None:
    n, layers, heads = 512, 2, 3
    run = make_run([str(i % 50) for i in range(n)], causal_attention(layers, heads, n, seed=5))
    per_head = n * (n + 1) // 2 + 4 * n  # uint8 lower triangle + float32 row maxima
    thumbs = layers * heads * 64 * 64
    scores = (5 + 3) * layers * heads * 4  # float32 [layer, head]: both conventions
    assert run.nbytes == layers * heads * per_head + thumbs + scores
    assert run.nbytes < layers * heads * n * n * 4 / 7  # float32 would be 7.5x more


def test_pattern_too_large_points_to_head(monkeypatch) -> None:
    run = make_run(["a", "b", "c"], causal_attention(2, 2, 3))
    assert run.pattern.shape == (2, 2, 3, 3)
    monkeypatch.setattr(headscope._run, "PATTERN_LIMIT", 2 * 2 * 3 * 3 * 4 - 1)
    with pytest.raises(PatternTooLargeError, match=r"run.pattern would take .* run.head\(layer, head\)"):
        run.pattern
    assert run.head(1, 1).shape == (3, 3)  # one head still decodes


def test_a_bad_weight_in_a_later_block_is_located(small_blocks) -> None:
    att = causal_attention(2, 3, 40)
    att[1, 2, 33, 5] = np.nan
    with pytest.raises(ValueError, match="1 NaN.*layer 1, head 2, query_pos 33, key_pos 5"):
        make_run([str(i) for i in range(40)], att)
    att = causal_attention(2, 3, 40)
    att[0, 1, 30] *= 0.99
    att[0, 1, 30, 35] = 0.01  # the row still sums to 1
    with pytest.raises(ValueError, match="above the diagonal: layer 0, head 1, query_pos 30 attends to the later key_pos 35"):
        make_run([str(i) for i in range(40)], att)
    att = causal_attention(2, 3, 40)
    att[1, 0, 38] *= 0.9
    with pytest.raises(ValueError, match="layer 1, head 0, query_pos 38 sums to 0.9"):
        make_run([str(i) for i in range(40)], att)


def test_half_precision_input_is_reduced_in_float32() -> None:
    att = causal_attention(1, 2, 30, seed=4)
    run = make_run([str(i) for i in range(30)], torch.from_numpy(att).to(torch.bfloat16))
    assert_quantized_close(run.pattern, torch.from_numpy(att).to(torch.bfloat16).float())


# --- a model -------------------------------------------------------------------------------
PROMPT = "The cat sat on the mat. The cat sat on the mat."


def hook_patterns(model: Any, ids: torch.Tensor) -> list[torch.Tensor]:
    _, patterns = capture_patterns(model, ids[None])
    return [p[0] for p in patterns]


def test_a_model_run_matches_hook_pattern_and_its_scores(tiny_model, small_blocks) -> None:
    run = run_model(tiny_model, PROMPT)
    floats = hook_patterns(tiny_model, run.token_ids)
    assert run.kept_layers == [0, 1]
    for layer, pattern in enumerate(floats):
        assert_quantized_close(run.layer_pattern(layer), pattern)
        for head in range(run.n_heads):
            assert run.encode_head(layer, head) == encode_head(pattern[head].numpy())
    ids = run.score_ids()
    for convention in ("rows", "detect_head"):
        expected = layered_head_scores(floats, ids, convention=convention)
        for name, value in run.head_scores(convention).items():
            np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6)


def test_layers_over_the_budget_are_computed_again_exactly(tiny_model, monkeypatch) -> None:
    full = run_model(tiny_model, PROMPT)
    n = full.seq_len
    per_layer = _capture.layer_nbytes(4, n)
    other = full.nbytes - 2 * per_layer  # thumbnails and scores
    assert run_model(tiny_model, PROMPT, memory_budget=2 * per_layer).kept_layers == [0, 1]
    budget = 2 * per_layer - 1  # not both: room is left for one layer computed again
    run = run_model(tiny_model, PROMPT, memory_budget=budget)
    assert run.kept_layers == []
    assert run.nbytes == other

    stops: list[Any] = []
    original = tiny_model.run_with_hooks

    def spy(*args: Any, **kwargs: Any) -> Any:
        stops.append((kwargs.get("stop_at_layer"), [name for name, _ in kwargs.get("fwd_hooks", ())]))
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny_model, "run_with_hooks", spy)
    for head in range(4):
        assert run.encode_head(1, head) == full.encode_head(1, head)
    assert stops == [(None, ["blocks.1.attn.hook_pattern"])]  # once for the layer: then cached
    assert run.nbytes == other + per_layer
    assert run.encode_head(0, 3) == full.encode_head(0, 3)  # the cache moves to layer 0
    assert stops[1] == (1, ["blocks.0.attn.hook_pattern"]) and run.nbytes == other + per_layer
    np.testing.assert_array_equal(run.pattern, full.pattern)
    for name, value in run.head_scores().items():
        np.testing.assert_array_equal(value, full.head_scores()[name])


def test_a_recomputed_layer_stops_the_model_after_it(monkeypatch) -> None:
    from headscope._builtin.model import ModelSpec, build_model

    model = build_model(ModelSpec(n_layers=3, n_heads=2, d_model=16, d_head=8, n_ctx=32), seed=1).eval()
    full = run_model(model, "abcabc")
    run = run_model(model, "abcabc", memory_budget=1)  # nothing kept
    assert run.kept_layers == []
    calls: list[Any] = []
    original = model.run_with_hooks
    monkeypatch.setattr(model, "run_with_hooks", lambda *a, **k: calls.append(k.get("stop_at_layer")) or original(*a, **k))
    assert run.encode_head(0, 1) == full.encode_head(0, 1)
    assert run.encode_head(2, 0) == full.encode_head(2, 0)
    assert calls == [1, None]  # layer 0: the first block only; layer 2: the last, so no stop
    assert run.nbytes - full.nbytes + 3 * _capture.layer_nbytes(2, run.seq_len) == _capture.layer_nbytes(2, run.seq_len)


def test_memory_budget_through_show_and_reruns(tiny_model, recorder) -> None:
    w = headscope.show(tiny_model, PROMPT, memory_budget=1)
    w.send = recorder
    assert w.run_result.kept_layers == []
    w._handle_custom_msg({"type": "request_head", "request_id": "r-1", "layer": 1, "head": 2})
    content, (scales, values) = recorder.last
    expected = hook_patterns(tiny_model, w.run_result.token_ids)[1][2]
    assert_quantized_close(decode_head(scales, values, content["seq_len"], content["packing"]), expected)
    w.run("ab ab")
    assert w.run_result.kept_layers == []  # the widget keeps its budget for new prompts
    with pytest.raises(ValueError, match="memory_budget must be a positive number of bytes"):
        headscope.show(tiny_model, PROMPT, memory_budget=0)
    with pytest.raises(TypeError, match="memory_budget must be an int"):
        headscope.show(tiny_model, PROMPT, memory_budget=1.5)
    w.close()


def test_template_scores_on_a_run_are_within_the_stated_bound(tiny_model) -> None:
    run = run_model(tiny_model, PROMPT)
    n = run.seq_len
    template = np.eye(n, k=-2)  # one target per row
    exact = headscope.head_scores(tiny_model, PROMPT, template=template)["custom"]
    on_run = headscope.head_scores(run, template=template)["custom"]
    assert np.abs(on_run - exact).max() <= 1 / 510
    from headscope._scores import custom_score

    floats = hook_patterns(tiny_model, run.token_ids)
    reference = np.stack([np.asarray(custom_score(p, run.score_ids(), template)) for p in floats])
    np.testing.assert_allclose(exact, reference, rtol=1e-5, atol=1e-7)


def test_run_token_ids_keeps_no_float_pattern(tiny_model) -> None:
    run = run_token_ids(tiny_model, [256, 97, 98, 99])
    held = [v for v in vars(run).values() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    assert held == []
    for compact in run._compact:
        assert compact.values.dtype == torch.uint8 and compact.scales.dtype == torch.float32
        assert compact.scales.shape == (4, 4)


def gpt2_style_model(n_layers: int = 3) -> Any:
    """A TransformerBridge with absolute positions (GPT-2 style): its hook_q and hook_k are what
    the softmax sees, so heads can be computed again from them."""
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    from headscope._builtin.tokenizer import ByteTokenizer

    cfg = TransformerBridgeConfig(
        d_model=32, d_head=8, n_heads=4, n_layers=n_layers, d_mlp=64, n_ctx=128, d_vocab=259,
        act_fn="gelu_new", normalization_type="LN", seed=0, model_name="gpt2-style-tiny",
    )
    return TransformerBridge.boot_native(cfg, tokenizer=ByteTokenizer()).eval()


def test_heads_over_the_budget_come_from_q_and_k_on_a_gpt2_style_model(small_blocks) -> None:
    model = gpt2_style_model()
    assert model.cfg.positional_embedding_type == "standard"
    full = run_model(model, PROMPT)
    run = run_model(model, PROMPT, memory_budget=1)
    assert run.kept_layers == [] and run._recompute_head is not None
    floats = hook_patterns(model, run.token_ids)
    for layer in range(3):
        for head in range(4):  # decoded within half a step of hook_pattern (Q and K: within 1e-6)
            assert_quantized_close(run.head(layer, head), floats[layer][head])
            packing, _, values = run.encode_head(layer, head)
            assert packing == "tril" and len(values) == len(full.encode_head(layer, head)[2])
    n, d_model = run.seq_len, 32
    assert run._extra_bytes == 3 * n * d_model * 4  # every layer's attention input, float32


LONG_PROMPT = "When Mary and John went to the store, John gave a drink to Mary. " * 2  # 131 tokens


def test_a_long_prompt_keeps_the_attention_input_instead_of_the_heads() -> None:
    """Past ``8 * d_head`` tokens the attention input (``n * d_model`` floats a layer) is smaller
    than the quantized heads; every layer keeps it and computes a head from it."""
    model = gpt2_style_model()
    model.cfg.n_ctx = 256
    run = run_model(model, LONG_PROMPT[:120])
    n = run.seq_len
    assert n == 121
    assert run.kept_layers == []  # the check ran in layer 0's hook, before its heads were kept
    assert run._extra_bytes == 3 * n * 32 * 4  # n * d_model float32 a layer
    floats = hook_patterns(model, run.token_ids)
    for layer in range(3):
        for head in range(4):
            assert_quantized_close(run.head(layer, head), floats[layer][head])
    # the whole layer, as .pattern and template scores read it, comes from the store too
    np.testing.assert_allclose(run.layer_pattern(2).numpy(), floats[2].numpy(), atol=1 / 510 + 1e-6)
    from headscope._capture import layer_nbytes

    assert run._extra_bytes < 0.5 * 3 * layer_nbytes(4, n)  # less than half of every layer's heads


def test_a_model_without_its_attention_input_keeps_q_and_k(monkeypatch) -> None:
    from headscope._adapters import qk_store

    monkeypatch.setattr(qk_store, "_per_head_qk", lambda model, n_heads: False)
    model = gpt2_style_model()
    run = run_model(model, PROMPT, memory_budget=1)
    n, d = run.seq_len, 8
    assert run._extra_bytes == 3 * 2 * n * 4 * d * 4  # every layer's Q and K, float32
    floats = hook_patterns(model, run.token_ids)
    for layer in range(3):
        for head in range(4):
            assert_quantized_close(run.head(layer, head), floats[layer][head])


def test_q_and_k_reproduce_hook_pattern_to_1e6() -> None:
    from headscope._adapters import QK_TOLERANCE, as_adapter, capture_reduced
    from headscope._capture import Reducer

    model = gpt2_style_model(2)
    ids = model.to_tokens(PROMPT, truncate=False)
    adapter = as_adapter(model)
    qk = adapter.qk_store()
    assert qk is not None
    qk.layers = {0, 1}
    capture_reduced(adapter, ids, Reducer(ids[0], 8), range(2), keep=lambda _: False, qk=qk)
    assert qk.exact
    for layer, pattern in enumerate(hook_patterns(model, ids[0])):
        for head in range(4):
            assert float((qk.pattern(layer, head)[0] - pattern[head]).abs().max()) <= QK_TOLERANCE


def test_a_rotary_model_falls_back_to_running_the_model_again(tiny_model) -> None:
    """The built-in model is rotary: hook_q is taken before the rotation, so the check fails and
    heads over the budget come from a forward pass again, still exact."""
    assert tiny_model.cfg.positional_embedding_type == "rotary"
    full = run_model(tiny_model, PROMPT)
    run = run_model(tiny_model, PROMPT, memory_budget=1)
    assert run._recompute_head is None and run._extra_bytes == 0
    for layer in range(2):
        for head in range(4):
            assert run.encode_head(layer, head) == full.encode_head(layer, head)


def test_a_rotary_model_keeps_its_heads_when_the_store_would_be_smaller(tiny_model) -> None:
    """Past 56 tokens the tiny model's attention input would be smaller than its heads, but the
    check fails (rotary): every layer keeps its quantized heads and the store is dropped."""
    prompt = LONG_PROMPT[:61]
    run = run_model(tiny_model, prompt)
    n = run.seq_len
    from headscope._capture import layer_nbytes

    assert n == 62 and 4 * n * 32 < layer_nbytes(4, n)  # the input (float32 d_model) < the heads
    assert run.kept_layers == [0, 1] and run._extra_bytes == 0 and run._recompute_head is None
    floats = hook_patterns(tiny_model, run.token_ids)
    for layer in range(2):
        for head in range(4):
            assert_quantized_close(run.head(layer, head), floats[layer][head])


def test_a_capture_ends_in_the_last_layer_it_needs(tiny_model) -> None:
    """Stopping after the last layer's pattern skips the rest of that layer, the final norm and
    the logits; the model's hooks are as before and it runs normally afterwards."""
    from headscope._adapters import as_adapter

    def hooks() -> list[tuple[str, int, int]]:
        return [(n, len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in tiny_model.named_modules()
                if m._forward_hooks or m._forward_pre_hooks]

    adapter = as_adapter(tiny_model)
    ids = tiny_model.to_tokens(PROMPT, truncate=False)
    tiny_model(ids)  # (the bridge adds its own hooks on a first pass)
    before = hooks()
    seen: list[str] = []

    def after(tensor: torch.Tensor, hook: Any) -> None:
        seen.append(hook.name)

    later = [("blocks.1.hook_attn_out", after), ("ln_final.hook_scale", after), ("hook_unembed", after)]
    logits, kept = adapter.capture(ids, [0, 1], lambda layer, p: layer, stop_after=1, extra_hooks=later)
    assert logits is None and kept == {0: 0, 1: 1} and seen == []
    assert hooks() == before
    full, _ = adapter.capture(ids, [0, 1], lambda layer, p: None, extra_hooks=later)
    assert full is not None and full.shape[-1] == tiny_model.cfg.d_vocab
    assert len(seen) == 3  # (they do fire on a whole pass; names are the bridge's aliases)

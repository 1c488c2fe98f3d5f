"""Value-weighted attention (docs/value-weighted.md): norms ‖v_j W_O[h]‖ and weighted rows
against hand computations from each library's own hooks and weights; thumbnails against pooling
the hand-computed weighted pattern; nothing computed until asked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import headscope
from headscope import WeightsUnavailableError
from headscope._adapters import as_adapter, run_model, run_token_ids
from headscope._adapters.transformer_lens import TransformerLensAdapter
from headscope._capture import _thumbnails
from headscope._value_weighted import value_weight

from conftest import assert_quantized_close
from hf_tiny import make_model, make_tokenizer

PROMPT = "The cat sat on the mat. The cat sat on the"


def _tl_hand(model: Any, ids: torch.Tensor) -> tuple[np.ndarray, np.ndarray, list[torch.Tensor]]:
    """``(norms [layer, head, pos], weighted [layer, head, q, k], float patterns)`` from
    ``hook_v``, ``hook_pattern`` and ``model.W_O``, materializing ``v W_O`` in full."""
    values: list[torch.Tensor] = []
    patterns: list[torch.Tensor] = []
    n_layers = model.cfg.n_layers
    hooks = []
    for i in range(n_layers):
        hooks.append((f"blocks.{i}.attn.hook_v", lambda t, hook: values.append(t.detach()[0].clone())))
        hooks.append((f"blocks.{i}.attn.hook_pattern", lambda t, hook: patterns.append(t.detach()[0].clone())))
    with torch.no_grad():
        model.run_with_hooks(ids[None], fwd_hooks=hooks)
    assert len(values) == n_layers and len(patterns) == n_layers
    w_o = model.W_O.detach()  # [layer, head, d_head, d_model]
    norms, weighted = [], []
    for layer, (v, p) in enumerate(zip(values, patterns)):
        written = torch.einsum("phd,hdm->phm", v.float(), w_o[layer].float())  # [pos, head, d_model]
        n = written.norm(dim=-1).T  # [head, pos]
        w = p.float() * n[:, None, :]
        norms.append(n.numpy())
        weighted.append((w / w.sum(-1, keepdim=True)).numpy())
    return np.stack(norms), np.stack(weighted), patterns


def _check_run(run: Any, model: Any) -> None:
    hand_norms, hand_weighted, patterns = _tl_hand(model, run.token_ids)
    norms = run.value_norms()
    assert norms.shape == hand_norms.shape == (run.n_layers, run.n_heads, run.seq_len)
    assert norms.dtype == np.float32
    np.testing.assert_allclose(norms, hand_norms, rtol=1e-4, atol=1e-4)
    for layer in range(run.n_layers):
        # the model's float pattern weighted by the run's norms: the hand weights, to 1e-4
        got = value_weight(patterns[layer], torch.from_numpy(norms[layer])).numpy()
        np.testing.assert_allclose(got, hand_weighted[layer], atol=1e-4)
        for head in range(run.n_heads):
            # the run's weighted head: its decoded head weighted by the hand norms, renormalized
            decoded = run.head(layer, head)
            want = decoded * hand_norms[layer, head][None, :]
            want /= want.sum(-1, keepdims=True)
            np.testing.assert_allclose(run.head(layer, head, value_weighted=True), want, atol=1e-4)


def test_transformer_lens_norms_and_weights_match_hooks(tiny_model: Any) -> None:
    _check_run(run_model(tiny_model, PROMPT), tiny_model)


def test_builtin_model_norms_match_hooks() -> None:
    from headscope._builtin import load_builtin

    model = load_builtin()
    _check_run(run_model(model, "ab ab cd ab cd ef ab"), model)


def test_value_weighted_thumbnails_pool_the_hand_weighted_pattern(tiny_model: Any) -> None:
    run = run_model(tiny_model, PROMPT)  # (pooling to a smaller side: the next test)
    _, hand_weighted, _ = _tl_hand(tiny_model, run.token_ids)
    thumbs = run.value_weighted_thumbs()
    assert thumbs.shape == run.thumbs.shape and thumbs.dtype == np.uint8
    for layer in range(run.n_layers):
        expected = _thumbnails(torch.from_numpy(hand_weighted[layer]), run.thumb_size)
        assert np.abs(thumbs[layer].astype(int) - expected.astype(int)).max() <= 1
    assert not np.array_equal(thumbs, run.thumbs)  # the weighting changes the picture


def test_thumbnails_pool_in_blocks_like_the_whole_layer(monkeypatch: Any) -> None:
    """Pooling block by block of query rows (separable max) equals pooling the whole layer,
    also when the side is smaller than the prompt."""
    import headscope._capture as capture
    import headscope._value_weighted as vw

    rng = np.random.default_rng(1)
    n, heads = 150, 3
    logits = rng.normal(size=(heads, n, n)).astype(np.float32) * 3
    logits[:, np.triu(np.ones((n, n), dtype=bool), 1)] = -np.inf
    p = torch.from_numpy(logits).softmax(-1)
    norms = torch.from_numpy(rng.uniform(0.1, 3.0, size=(heads, n)).astype(np.float32))
    for rows, size in ((7, 64), (6, 50)):  # 7-row blocks pool keys; 150 = 50 bins of 3 rows: rows
        monkeypatch.setattr(vw, "BLOCK_ELEMENTS", heads * n * rows)
        got = vw.weighted_thumbnails(p, norms, size)
        np.testing.assert_array_equal(got, _thumbnails(value_weight(p, norms), size))


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
def test_hf_norms_match_the_modules(family: str) -> None:
    """GPT-2 (fused c_attn, value bias), Llama (grouped-query v_proj) and Qwen2 (v_proj with a
    bias): v = x W + b from the attention's input and the module weights, W_O from the output
    projection's columns of each head."""
    model = make_model(family, n_layers=2, n_heads=4)
    adapter = as_adapter(model, tokenizer=make_tokenizer())
    run = run_model(adapter, PROMPT)
    ids = run.token_ids
    inputs: dict[int, torch.Tensor] = {}

    def pre(layer: int) -> Any:
        def call(module: Any, args: Any, kwargs: Any) -> None:
            inputs[layer] = (args[0] if args else kwargs["hidden_states"])[0].detach()

        return call

    handles = [adapter.attention[i].register_forward_pre_hook(pre(i), with_kwargs=True) for i in range(2)]
    try:
        with torch.no_grad(), adapter.eager():
            out = model(input_ids=ids[None], output_attentions=True)
    finally:
        for h in handles:
            h.remove()
    d, heads = adapter.d_head, adapter.n_heads
    for layer in range(2):
        x = inputs[layer]
        attn = adapter.attention[layer]
        if family == "gpt2":
            w = attn.c_attn.weight.detach()  # [d_model, 3 d_model]
            v = x @ w[:, 2 * heads * d:] + attn.c_attn.bias.detach()[2 * heads * d:]
            o = attn.c_proj.weight.detach()  # [heads * d, d_model]
            per_head_o = [o[h * d:(h + 1) * d] for h in range(heads)]
        else:
            v = attn.v_proj(x).detach()  # [pos, kv * d] (bias included for Qwen2)
            if family == "qwen2":
                assert attn.v_proj.bias is not None
            o = attn.o_proj.weight.detach()  # [d_model, heads * d]
            per_head_o = [o[:, h * d:(h + 1) * d].T for h in range(heads)]
        v = v.reshape(v.shape[0], -1, d)
        group = heads // v.shape[1]
        hand = np.stack([(v[:, h // group] @ per_head_o[h]).norm(dim=-1).numpy() for h in range(heads)])
        np.testing.assert_allclose(run.value_norms()[layer], hand, rtol=1e-4, atol=1e-5)
        pattern = out.attentions[layer][0].detach()
        want = pattern * torch.from_numpy(hand)[:, None, :]
        want = want / want.sum(-1, keepdim=True)
        np.testing.assert_allclose(value_weight(pattern, torch.from_numpy(run.value_norms()[layer])).numpy(), want.numpy(), atol=1e-4)
        for head in range(heads):
            assert_quantized_close(run.head(layer, head), pattern[head])  # (the run's own pattern)
    if family == "llama":  # grouped-query: heads of one group share values, not W_O
        assert adapter.config.num_key_value_heads == 2


def test_nnsight_local_norms_equal_the_hf_adapters() -> None:
    pytest.importorskip("nnsight")
    from nnsight.modeling.transformers import TransformersModel

    model = make_model("llama", n_layers=2, n_heads=4)
    tok = make_tokenizer()
    hf_run = run_model(as_adapter(model, tokenizer=tok), PROMPT)
    lm = TransformersModel(model, tokenizer=tok)
    nn_run = run_model(lm, PROMPT)
    np.testing.assert_allclose(nn_run.value_norms(), hf_run.value_norms(), rtol=1e-5, atol=1e-6)


def test_a_run_without_the_toggle_captures_no_values(tiny_model: Any, monkeypatch: Any) -> None:
    calls: list[int] = []
    original = TransformerLensAdapter.capture_values

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TransformerLensAdapter, "capture_values", counted)
    w = headscope.show(tiny_model, PROMPT)
    w.run("The dog sat on the log.")
    w.layer = 1
    run = w.run_result
    assert calls == [] and w.value_norms == b"" and w.atlas_value_weighted == b""
    assert run._values is not None and run._values.nbytes == 0
    w.value_weighted = True
    assert calls == [1]
    w.layer = 0
    w.value_weighted = False
    w.value_weighted = True
    assert calls == [1]  # cached on the run
    run.value_norms()
    assert calls == [1]


def test_widget_sends_the_selected_layers_norms_and_the_weighted_atlas(tiny_model: Any) -> None:
    w = headscope.show(tiny_model, PROMPT)
    assert w.value_weighted_reason == ""
    w.value_weighted = True
    run = w.run_result
    norms = run.value_norms()
    assert (w.value_norms_layer, w.value_norms_run_id) == (0, w.run_id)
    np.testing.assert_array_equal(np.frombuffer(w.value_norms, "<f4").reshape(run.n_heads, run.seq_len), norms[0])
    assert w.atlas_value_weighted_run_id == w.run_id
    assert w.atlas_value_weighted == run.value_weighted_thumbs().tobytes()
    assert len(w.atlas_value_weighted) == len(w.atlas) and w.atlas_value_weighted != w.atlas
    w.layer = 1
    assert w.value_norms_layer == 1
    np.testing.assert_array_equal(np.frombuffer(w.value_norms, "<f4").reshape(run.n_heads, run.seq_len), norms[1])
    # a new run with the toggle on gets its own norms and atlas
    w.run("The dog sat on the log. The dog")
    assert (w.value_norms_run_id, w.atlas_value_weighted_run_id) == (w.run_id, w.run_id)
    np.testing.assert_array_equal(
        np.frombuffer(w.value_norms, "<f4"), w.run_result.value_norms()[1].reshape(-1)
    )


def test_a_parked_widget_drops_its_value_weighting_and_gets_it_back(tiny_model: Any) -> None:
    w = headscope.show(tiny_model, PROMPT)
    w.value_weighted = True
    norms, atlas, run_id = w.value_norms, w.atlas_value_weighted, w.run_id
    w._handle_custom_msg({"type": "view", "view": "a", "open": True})
    w._handle_custom_msg({"type": "view", "view": "a", "open": False})
    assert w.parked and w._held_bytes() == 0
    assert (w.value_norms, w.atlas_value_weighted, w.value_norms_run_id) == (b"", b"", 0)
    w._handle_custom_msg({"type": "view", "view": "b", "open": True})
    w._handle_custom_msg({"type": "request_head", "request_id": "r-1", "layer": 0, "head": 0})
    assert not w.parked and w.value_weighted and w.run_id == run_id
    assert (w.value_norms, w.atlas_value_weighted) == (norms, atlas)
    assert (w.value_norms_run_id, w.atlas_value_weighted_run_id) == (run_id, run_id)
    assert w._held_bytes() >= len(norms) + len(atlas)
    w.close()


def test_text_transport_mirrors_the_new_bytes_traits(tiny_model: Any) -> None:
    import base64

    w = headscope.show(tiny_model, PROMPT)
    w.use_text_transport()
    w.value_weighted = True
    assert base64.b64decode(w.text_data["value_norms"]) == w.value_norms != b""
    assert base64.b64decode(w.text_data["atlas_value_weighted"]) == w.atlas_value_weighted != b""


def test_precomputed_attention_and_remote_models_say_why(make_attention: Any) -> None:
    w = headscope.show_attention(["a", "b", "c"], make_attention(1, 2, 3))
    assert "precomputed attention" in w.value_weighted_reason
    with pytest.raises(ValueError, match="unavailable"):
        w.value_weighted = True
    assert w.value_weighted is False
    with pytest.raises(WeightsUnavailableError, match="precomputed"):
        w.run_result.value_norms()
    with pytest.raises(WeightsUnavailableError):
        w.run_result.head(0, 0, value_weighted=True)


def test_remote_nnsight_adapter_refuses_values() -> None:
    pytest.importorskip("nnsight")
    from nnsight.modeling.transformers import TransformersModel

    model = make_model("gpt2", n_layers=1, n_heads=2)
    adapter = as_adapter(TransformersModel(model, tokenizer=make_tokenizer()), remote=True)
    reason = adapter.weights_unavailable()
    assert reason and "remote" in reason
    with pytest.raises(WeightsUnavailableError, match="remote"):
        adapter.capture_values(torch.tensor([[0, 1, 2]]), [0], lambda layer, v: v)


def test_transformer_lens_grouped_query_norms_equal_the_hf_adapters() -> None:
    """A Llama TransformerBridge (grouped-query: hook_v has 2 value heads for 4 query heads)
    gives the same norms as the Hugging Face adapter on the same weights."""
    from transformer_lens.model_bridge import TransformerBridge

    tok = make_tokenizer()
    model = make_model("llama")
    bridge = TransformerBridge.boot_transformers("meta-llama/Llama-3.2-1B", hf_model=make_model("llama"), tokenizer=tok, device="cpu")
    ids = bridge.to_tokens(PROMPT)[0]
    seen: list[tuple[int, ...]] = []
    bridge.run_with_hooks(ids[None], fwd_hooks=[("blocks.0.attn.hook_v", lambda t, hook: seen.append(tuple(t.shape)))])
    assert seen and seen[0][2] == 2  # the value heads, repeated by the adapter
    tl_run = run_model(bridge, PROMPT)
    hf_run = run_token_ids(as_adapter(model, tokenizer=tok), ids)
    np.testing.assert_allclose(tl_run.value_norms(), hf_run.value_norms(), rtol=1e-4, atol=1e-5)

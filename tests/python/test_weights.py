"""Adapters' weights (the OV side): ``head_weights`` gives each head's W_V and W_O as the model
applies them, ``embedding``/``unembedding`` W_E and W_U; a model whose weights cannot be read
says why."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from headscope import WeightsUnavailableError
from headscope._adapters import as_adapter

from hf_tiny import make_model, make_tokenizer


def _hf_head_io(model: Any, adapter: Any, layer: int, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The attention's input ``x [pos, d_model]``, the output projection's input ``z [pos,
    head, d_head]`` and its output ``[pos, d_model]``, read with hooks in eager attention."""
    seen: dict[str, torch.Tensor] = {}
    attn = adapter.attention[layer]
    out = adapter.out_proj[layer]

    def attn_in(module: Any, args: Any, kwargs: Any) -> None:
        seen["x"] = (args[0] if args else kwargs["hidden_states"])[0].detach()

    def out_io(module: Any, args: Any, output: Any) -> None:
        seen["z"] = args[0][0].detach()
        seen["out"] = output[0].detach()

    handles = [attn.register_forward_pre_hook(attn_in, with_kwargs=True), out.register_forward_hook(out_io)]
    try:
        with torch.no_grad(), adapter.eager():
            model(input_ids=ids[None])
    finally:
        for h in handles:
            h.remove()
    z = seen["z"].reshape(seen["z"].shape[0], adapter.n_heads, adapter.d_head)
    return seen["x"], z, seen["out"]


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_hf_head_weights_reproduce_the_model(family: str) -> None:
    model = make_model(family, n_layers=2, n_heads=4)
    adapter = as_adapter(model, tokenizer=make_tokenizer())
    ids = adapter.to_ids("The cat sat on the mat.")
    layer = 1
    w_v, w_o = adapter.head_weights(layer)
    assert w_v.shape == (4, adapter.d_model, adapter.d_head)
    assert w_o.shape == (4, adapter.d_head, adapter.d_model)
    x, z, out = _hf_head_io(model, adapter, layer, ids)
    # W_O: the projection's output is the sum over heads of z[h] @ W_O[h], plus its bias
    bias = getattr(adapter.out_proj[layer], "bias", None)
    rebuilt = torch.einsum("phd,hdm->pm", z, w_o) + (bias if bias is not None else 0)
    torch.testing.assert_close(rebuilt, out, atol=1e-5, rtol=1e-5)
    # W_V: a row of causal attention that puts all its weight on key 0 (the first query) gives
    # z[0, h] = v_0[h] = x_0 @ W_V[h] (+ the value bias; Llama has none)
    attn = adapter.attention[layer]
    v_bias = 0.0
    if family == "gpt2":
        b = attn.c_attn.bias.detach()
        v_bias = b[2 * adapter.d_model :].reshape(4, adapter.d_head)
    else:
        assert attn.v_proj.bias is None
    if family == "gpt2":  # GPT-2's block applies ln_1 before the attention: x is already normalized
        v0 = torch.einsum("m,hmd->hd", x[0], w_v) + v_bias
    else:
        v0 = torch.einsum("m,hmd->hd", x[0], w_v)
    torch.testing.assert_close(v0, z[0], atol=1e-5, rtol=1e-5)
    # W_E and W_U as the model applies them
    torch.testing.assert_close(adapter.embedding(), model.get_input_embeddings().weight.detach())
    hidden = torch.randn(3, adapter.d_model)
    torch.testing.assert_close(hidden @ adapter.unembedding(), model.get_output_embeddings()(hidden).detach())
    assert adapter.weights_unavailable() is None


def test_grouped_query_heads_share_their_value_head() -> None:
    model = make_model("llama", n_layers=1, n_heads=4)  # 2 key/value heads
    adapter = as_adapter(model, tokenizer=make_tokenizer())
    w_v, _ = adapter.head_weights(0)
    torch.testing.assert_close(w_v[0], w_v[1])
    torch.testing.assert_close(w_v[2], w_v[3])
    assert not torch.equal(w_v[0], w_v[2])


def test_transformer_lens_head_weights_are_its_own(tiny_model: Any) -> None:
    adapter = as_adapter(tiny_model)
    w_v, w_o = adapter.head_weights(1)
    torch.testing.assert_close(w_v, tiny_model.W_V[1])
    torch.testing.assert_close(w_o, tiny_model.W_O[1])
    torch.testing.assert_close(adapter.embedding(), tiny_model.W_E)
    torch.testing.assert_close(adapter.unembedding(), tiny_model.W_U)
    # and W_O maps hook_z to the attention's output (minus b_O)
    seen: dict[str, torch.Tensor] = {}
    tiny_model.run_with_hooks(
        tiny_model.to_tokens("ab ab"),
        fwd_hooks=[
            ("blocks.1.attn.hook_z", lambda t, hook: seen.__setitem__("z", t[0].detach())),
            ("blocks.1.hook_attn_out", lambda t, hook: seen.__setitem__("out", t[0].detach())),
        ],
    )
    rebuilt = torch.einsum("phd,hdm->pm", seen["z"], w_o) + tiny_model.b_O[1]
    torch.testing.assert_close(rebuilt, seen["out"], atol=1e-5, rtol=1e-5)


def test_layer_out_of_range_is_named(tiny_model: Any) -> None:
    adapter = as_adapter(tiny_model)
    with pytest.raises(ValueError, match="layer 5 is out of range: the model has layers 0-1"):
        adapter.head_weights(5)
    with pytest.raises(TypeError, match="layer must be an int"):
        adapter.head_weights(1.0)


def test_remote_nnsight_model_says_why_there_are_no_weights() -> None:
    pytest.importorskip("nnsight")
    from nnsight.modeling.transformers import TransformersModel

    lm = TransformersModel(make_model("gpt2", n_layers=1, n_heads=2), tokenizer=make_tokenizer())
    local = as_adapter(lm)
    assert local.weights_unavailable() is None
    assert local.head_weights(0)[0].shape == (2, local.d_model, local.d_head)
    remote = as_adapter(lm, remote=True)
    assert "NDIF" in (remote.weights_unavailable() or "")
    for call in (lambda: remote.head_weights(0), remote.embedding, remote.unembedding):
        with pytest.raises(WeightsUnavailableError, match="runs remotely"):
            call()

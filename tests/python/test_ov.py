"""The OV circuit, direct logit attribution and the copying score (docs/ov.md), checked against
hand computations from TransformerLens's and Hugging Face's own weights and hooks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import headscope
from headscope import WeightsUnavailableError
from headscope._adapters import as_adapter

from hf_tiny import make_model, make_tokenizer

PROMPT = "The cat sat on the mat. The cat sat on the mat."


@pytest.fixture(scope="module")
def builtin() -> Any:
    return headscope.load_model("builtin")


def _hand_ov(w_e: torch.Tensor, w_v: torch.Tensor, w_o: torch.Tensor, w_u: torch.Tensor, t: int) -> np.ndarray:
    with torch.no_grad():
        return (w_e[t].double() @ w_v.double() @ w_o.double() @ w_u.double()).numpy()


def _check_ov(result: Any, hand: np.ndarray, k: int, strings: Any) -> None:
    order = np.argsort(-hand, kind="stable")
    raised_ids, lowered_ids = order[:k].copy(), np.argsort(hand, kind="stable")[:k]
    got_raised = [v for _, v in result.raised]
    got_lowered = [v for _, v in result.lowered]
    np.testing.assert_allclose(got_raised, hand[raised_ids], atol=1e-4)
    np.testing.assert_allclose(got_lowered, hand[lowered_ids], atol=1e-4)
    assert [s for s, _ in result.raised] == strings(raised_ids)
    assert [s for s, _ in result.lowered] == strings(lowered_ids)
    assert len(result.raised) == len(result.lowered) == k


@pytest.mark.parametrize("which", ["tiny", "builtin"])
def test_ov_equals_transformer_lens_weights(which: str, tiny_model: Any, builtin: Any) -> None:
    model = tiny_model if which == "tiny" else builtin
    layer, head, token = (1, 2, 40) if which == "tiny" else (1, 0, "e")
    t = token if isinstance(token, int) else int(model.to_tokens(token, prepend_bos=False)[0, 0])
    hand = _hand_ov(model.W_E, model.W_V[layer, head], model.W_O[layer, head], model.W_U, t)
    result = headscope.ov_top_tokens(model, layer, head, token, k=7)
    assert (result.layer, result.head, result.token_id) == (layer, head, t)
    assert result.token == model.to_str_tokens(torch.tensor([t]))[0]
    _check_ov(result, hand, 7, lambda ids: [str(s) for s in model.to_str_tokens(torch.tensor(ids))])
    text = repr(result)
    assert f"layer {layer}, head {head}" in text and "raised" in text and "lowered" in text


def _hook_z_and_scale(model: Any, tokens: torch.Tensor) -> tuple[Any, dict[str, torch.Tensor]]:
    names = {f"blocks.{i}.attn.hook_z" for i in range(model.cfg.n_layers)} | {"ln_final.hook_scale", "ln_final.hook_in"}
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    return logits, cache


@pytest.mark.parametrize("which", ["tiny", "builtin"])
def test_dla_equals_a_hand_computation_from_transformer_lens_hooks(which: str, tiny_model: Any, builtin: Any) -> None:
    model = tiny_model if which == "tiny" else builtin
    prompt = "abcab abcab" if which == "tiny" else PROMPT
    tokens = model.to_tokens(prompt)
    p = tokens.shape[1] - 4
    named = ["c", 7]
    result = headscope.direct_logit_attribution(model, prompt, p, named)
    logits, cache = _hook_z_and_scale(model, tokens)
    predicted = int(logits[0, p].argmax())
    ids = [predicted, int(model.to_tokens("c", prepend_bos=False)[0, 0]), 7]
    assert result.target_ids == ids and result.position == p
    assert result.predicted == model.to_str_tokens(torch.tensor([predicted]))[0]
    scale = cache["ln_final.hook_scale"][0, p, 0]
    for layer in range(model.cfg.n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"][0, p]  # [head, d_head]
        out = torch.einsum("hd,hdm->hm", z, model.W_O[layer])
        out = (out - out.mean(-1, keepdim=True)) / scale * model.ln_final.w
        hand = (out @ model.W_U[:, ids]).T.detach().numpy()  # [target, head]
        np.testing.assert_allclose(result.values[:, layer], hand, atol=1e-4)
    np.testing.assert_allclose(result.logits, logits[0, p, ids].detach().numpy(), atol=1e-4)
    np.testing.assert_array_equal(result.of("c"), result.values[1])
    # query positions count from the end too
    np.testing.assert_allclose(
        headscope.direct_logit_attribution(model, prompt, p - tokens.shape[1]).values[0], result.values[0], atol=1e-5
    )


def test_a_heads_dla_is_the_change_of_the_predicted_logits_direct_path(builtin: Any) -> None:
    """Remove one head's output from the final residual with the norm's scale frozen: the
    predicted logit changes by exactly that head's DLA (LayerNorm applied by hand, and checked
    to give the model's own logits first)."""
    model = builtin
    tokens = model.to_tokens(PROMPT)
    p = 30
    logits, cache = _hook_z_and_scale(model, tokens)
    resid = cache["ln_final.hook_in"][0, p]
    scale = cache["ln_final.hook_scale"][0, p, 0]
    ln = model.ln_final

    def logit_of(x: torch.Tensor, u: int) -> float:
        with torch.no_grad():
            normed = (x - x.mean()) / scale * ln.w + ln.b
            return float(normed @ model.W_U[:, u] + model.b_U[u])

    u = int(logits[0, p].argmax())
    assert logit_of(resid, u) == pytest.approx(float(logits[0, p, u]), abs=1e-4)  # the norm, by hand
    result = headscope.direct_logit_attribution(model, PROMPT, p)
    for layer, head in [(1, 0), (0, 6), (1, 3)]:
        head_out = (cache[f"blocks.{layer}.attn.hook_z"][0, p, head] @ model.W_O[layer, head]).detach()
        change = logit_of(resid, u) - logit_of(resid - head_out, u)
        assert result.values[0, layer, head] == pytest.approx(change, abs=1e-4)


def _hf_hand(model: Any, adapter: Any, ids: torch.Tensor, p: int, targets: list[int]) -> np.ndarray:
    """DLA from the HF model's own modules: z from the output projection's input, the final
    norm's input from a hook, its scale recomputed, its weight read from the module."""
    seen: dict[str, torch.Tensor] = {}
    handles = [adapter.out_proj[i].register_forward_pre_hook(
        lambda m, a, i=i: seen.__setitem__(f"z{i}", a[0][0, p].detach())) for i in range(adapter.n_layers)]
    norm = model.transformer.ln_f if hasattr(model, "transformer") else model.model.norm
    handles.append(norm.register_forward_hook(lambda m, a, o: seen.__setitem__("x", a[0][0, p].detach())))
    try:
        with torch.no_grad():
            model(input_ids=ids[None])
    finally:
        for h in handles:
            h.remove()
    x = seen["x"]
    gpt2 = hasattr(model, "transformer")
    if gpt2:
        w_u = model.transformer.wte.weight.T
        scale = (x.var(unbiased=False) + norm.eps).sqrt()
    else:
        w_u = model.lm_head.weight.T
        scale = (x.pow(2).mean() + norm.variance_epsilon).sqrt()
    out = []
    for layer in range(adapter.n_layers):
        z = seen[f"z{layer}"].reshape(adapter.n_heads, adapter.d_head)
        proj = adapter.out_proj[layer].weight  # Conv1D [in, out] for GPT-2, Linear [out, in] otherwise
        w_o = (proj if gpt2 else proj.T).reshape(adapter.n_heads, adapter.d_head, -1)
        head_out = torch.einsum("hd,hdm->hm", z, w_o)
        if gpt2:
            head_out = head_out - head_out.mean(-1, keepdim=True)
        head_out = head_out / scale * norm.weight
        out.append((head_out @ w_u[:, targets]).T.detach().numpy())
    return np.stack(out, axis=1)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_hf_ov_and_dla_equal_a_hand_computation(family: str) -> None:
    model = make_model(family, n_layers=2, n_heads=4)
    tok = make_tokenizer()
    with torch.no_grad():  # a final norm weight that is not all ones, so that γ matters
        norm = model.transformer.ln_f if family == "gpt2" else model.model.norm
        norm.weight.copy_(torch.linspace(0.5, 1.5, norm.weight.numel()))
    adapter = as_adapter(model, tokenizer=tok)
    # OV from the HF weights: GPT-2's fused c_attn (V last) and Conv1D c_proj; Llama's v_proj/o_proj
    layer, head, t = 1, 2, 45
    if family == "gpt2":
        d = adapter.d_model
        w_v = model.transformer.h[layer].attn.c_attn.weight[:, 2 * d:].reshape(d, 4, 8)[:, head]
        w_o = model.transformer.h[layer].attn.c_proj.weight.reshape(4, 8, d)[head]
        w_e, w_u = model.transformer.wte.weight, model.lm_head.weight.T
    else:
        attn = model.model.layers[layer].self_attn
        kv = head // 2  # two query heads per key/value head
        w_v = attn.v_proj.weight.reshape(2, 8, -1)[kv].T
        w_o = attn.o_proj.weight.T.reshape(4, 8, -1)[head]
        w_e, w_u = model.model.embed_tokens.weight, model.lm_head.weight.T
    hand = _hand_ov(w_e, w_v, w_o, w_u, t)
    result = headscope.ov_top_tokens(model, layer, head, t, k=5, tokenizer=tok)
    _check_ov(result, hand, 5, lambda ids: [tok.decode([int(i)]) for i in ids])
    # DLA
    prompt = "When Mary and John went to the store"
    ids = adapter.to_ids(prompt)
    p = len(ids) - 2
    named = "Mary" if len(tok("Mary", add_special_tokens=False)["input_ids"]) == 1 else 50
    dla = headscope.direct_logit_attribution(model, prompt, p, [named], tokenizer=tok)
    expected = _hf_hand(model, adapter, ids, p, dla.target_ids)
    np.testing.assert_allclose(dla.values, expected, atol=1e-4)
    assert ("LayerNorm" if family == "gpt2" else "RMSNorm") in dla.norm


def test_builtin_induction_head_is_its_best_copier(builtin: Any) -> None:
    """L1H0, the built-in model's induction head, has the highest copying score of the 16 heads
    (0.595: 154 of its 259 tokens are in their own OV row's top 5), and its OV circuit ranks the
    source token itself in the top 5 for most printable ASCII bytes (78 %; asserted: 60 %)."""
    scores = headscope.copying_scores(builtin)
    assert scores.shape == (2, 8)
    assert np.unravel_index(int(np.argmax(scores)), scores.shape) == (1, 0)
    assert scores[1, 0] > 0.5 and scores[1, 0] - np.sort(scores.ravel())[-2] > 0.05
    hits = 0
    printable = [chr(c) for c in range(32, 127)]
    for ch in printable:
        result = headscope.ov_top_tokens(builtin, 1, 0, ch, k=5)
        hits += ch in [s for s, _ in result.raised]
    assert hits / len(printable) >= 0.6
    # the definition, by hand for that head over the whole vocabulary
    full = builtin.W_E @ builtin.W_V[1, 0] @ builtin.W_O[1, 0] @ builtin.W_U  # 259 x 259: tiny
    own = full.diagonal()
    above = (full > own[:, None]).sum(-1)
    assert scores[1, 0] == pytest.approx(float((above < 5).float().mean()), abs=1e-6)


def test_copying_score_is_in_head_scores_and_cached(builtin: Any) -> None:
    scores = headscope.head_scores(builtin, "ab ab")
    np.testing.assert_array_equal(scores["copying"], headscope.copying_scores(builtin))
    assert "copying" not in headscope.head_scores(builtin, "ab ab", convention="detect_head")
    from headscope._ov import _COPYING_CACHE

    adapter = as_adapter(builtin)
    assert adapter.module in _COPYING_CACHE


def test_large_vocabularies_are_scored_on_an_even_sample() -> None:
    from headscope._ov import COPY_SAMPLE, copy_sample

    assert copy_sample(300).tolist() == list(range(300))
    sample = copy_sample(50257)
    assert len(sample) == COPY_SAMPLE and sample[0] == 0 and sample[-1] == 50256


def test_bad_layer_head_token_and_k_are_named(tiny_model: Any, builtin: Any) -> None:
    with pytest.raises(ValueError, match="layer 2 is out of range"):
        headscope.ov_top_tokens(tiny_model, 2, 0, 5)
    with pytest.raises(ValueError, match="head 4 is out of range: layer 1 has heads 0-3"):
        headscope.ov_top_tokens(tiny_model, 1, 4, 5)
    with pytest.raises(ValueError, match=r"the token 'ab' is 2 tokens \('a', 'b'\), not one token"):
        headscope.ov_top_tokens(builtin, 1, 0, "ab")
    with pytest.raises(ValueError, match="token id 259 is out of range: token ids must lie in 0-258"):
        headscope.ov_top_tokens(builtin, 1, 0, 259)
    with pytest.raises(TypeError, match="token string or an int id, got float"):
        headscope.ov_top_tokens(builtin, 1, 0, 1.0)
    with pytest.raises(ValueError, match="empty"):
        headscope.ov_top_tokens(builtin, 1, 0, "")
    with pytest.raises(ValueError, match="k must be a positive int"):
        headscope.ov_top_tokens(builtin, 1, 0, "a", k=0)
    with pytest.raises(ValueError, match="query_pos 99 is out of range: the prompt has positions 0-3"):
        headscope.direct_logit_attribution(builtin, "abc", 99)
    with pytest.raises(ValueError, match="'xy' is 2 tokens"):
        headscope.direct_logit_attribution(builtin, "abc", 1, ["xy"])


def test_remote_model_says_why(tmp_path: Any) -> None:
    pytest.importorskip("nnsight")
    from nnsight.modeling.transformers import TransformersModel

    lm = TransformersModel(make_model("gpt2", n_layers=1, n_heads=2), tokenizer=make_tokenizer())
    remote = as_adapter(lm, remote=True)
    with pytest.raises(WeightsUnavailableError, match="runs remotely"):
        headscope.ov_top_tokens(remote, 0, 0, 5)
    with pytest.raises(WeightsUnavailableError, match="runs remotely"):
        headscope.direct_logit_attribution(remote, "The cat", 1)
    with pytest.raises(WeightsUnavailableError, match="runs remotely"):
        headscope.copying_scores(remote)
    with pytest.raises(WeightsUnavailableError, match="runs remotely"):
        remote.run_with_final_norm(torch.tensor([[0, 1]]), {})
    # the same model run locally through nnsight gives the Hugging Face numbers
    local = as_adapter(lm)
    hf = as_adapter(lm._module, tokenizer=make_tokenizer())
    a = headscope.direct_logit_attribution(local, "The cat sat", 2)
    b = headscope.direct_logit_attribution(hf, "The cat sat", 2)
    np.testing.assert_allclose(a.values, b.values, atol=1e-5)

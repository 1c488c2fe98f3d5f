"""The Hugging Face transformers adapter on tiny random models built from configs (offline)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import headscope
from headscope._adapters import as_adapter, capture_patterns
from headscope._adapters.hf import HFAdapter

from conftest import assert_quantized_close
from hf_tiny import make_model, make_tokenizer

PROMPT = "When Mary and John went to the store, John gave a drink to"
FAMILIES = ["gpt2", "llama", "qwen2", "gemma2"]


def hf_eager_attentions(model, ids: torch.Tensor) -> list[torch.Tensor]:
    """HF's own output_attentions under eager attention, each layer ``[head, q, k]``."""
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(input_ids=ids[None], output_attentions=True, use_cache=False)
    finally:
        model.set_attn_implementation(before)
    return [a[0] for a in out.attentions]


@pytest.mark.parametrize("family", FAMILIES)
def test_patterns_match_hf_output_attentions(family: str) -> None:
    model, tok = make_model(family), make_tokenizer()
    before = model.config._attn_implementation
    run = headscope.show(model, PROMPT, tokenizer=tok).run_result
    assert model.config._attn_implementation == before  # the user's implementation is back
    assert run.token_ids is not None and int(run.token_ids[0]) == tok.bos_token_id
    expected = hf_eager_attentions(model, run.token_ids)
    assert len(expected) == run.n_layers == 2 and run.n_heads == 4
    for layer in range(run.n_layers):
        assert_quantized_close(run.layer_pattern(layer), expected[layer])
    scores = run.head_scores()
    assert scores["previous_token"].shape == (2, 4) and np.isfinite(scores["previous_token"]).all()


#: Hub names TransformerLens maps to each family's bridge (only the architecture is read).
TL_NAMES = {"gpt2": "gpt2", "llama": "meta-llama/Llama-3.2-1B", "qwen2": "Qwen/Qwen2-0.5B", "gemma2": "google/gemma-2-2b"}


@pytest.mark.parametrize("family", FAMILIES)
def test_patterns_match_transformer_lens_on_the_same_weights(family: str) -> None:
    from transformer_lens.model_bridge import TransformerBridge

    from headscope._adapters import run_token_ids

    tok = make_tokenizer()
    model = make_model(family)
    # TransformerLens switches the model it is given to eager for good: give it a copy
    bridge = TransformerBridge.boot_transformers(TL_NAMES[family], hf_model=make_model(family), tokenizer=tok, device="cpu")
    ids = bridge.to_tokens(PROMPT)[0]
    run = run_token_ids(as_adapter(model, tokenizer=tok), ids)
    _, cache = bridge.run_with_cache(ids[None])
    for layer in range(run.n_layers):
        assert_quantized_close(run.layer_pattern(layer), cache[f"blocks.{layer}.attn.hook_pattern"][0])
    if family != "qwen2":  # TransformerLens prepends no BOS for Qwen2; headscope follows the tokenizer
        assert headscope.show(model, PROMPT, tokenizer=tok).tokens == bridge.to_str_tokens(PROMPT)


def test_sdpa_model_runs_and_keeps_its_implementation() -> None:
    model = make_model("llama")
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        ids = as_adapter(model, tokenizer=make_tokenizer()).to_ids(PROMPT)
        before = model(input_ids=ids[None]).logits
    widget = headscope.show(model, PROMPT, tokenizer=make_tokenizer())
    widget.run("The cat sat on the mat.")
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids[None]).logits, before)


def test_a_failed_capture_restores_the_implementation(monkeypatch: pytest.MonkeyPatch) -> None:
    model, tok = make_model("qwen2"), make_tokenizer()
    adapter = as_adapter(model, tokenizer=tok)

    def fail(layer: int, pattern: torch.Tensor) -> None:
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        adapter.capture(adapter.to_ids(PROMPT)[None], [0], fail)
    assert model.config._attn_implementation == "sdpa"
    assert all(not m._forward_hooks for m in model.modules())  # no hook left behind


def test_capture_stops_after_the_last_layer_asked_for() -> None:
    model, tok = make_model("gpt2", n_layers=3), make_tokenizer()
    adapter = as_adapter(model, tokenizer=tok)
    logits, kept = adapter.capture(adapter.to_ids(PROMPT)[None], [1], lambda layer, p: p.shape, stop_after=1)
    assert logits is None and list(kept) == [1] and kept[1][1] == 4
    # the last layer too: the pass ends in its attention, before the language-model head
    heads: list[int] = []
    handle = model.lm_head.register_forward_hook(lambda *args: heads.append(1))
    try:
        logits, kept = adapter.capture(adapter.to_ids(PROMPT)[None], [0, 2], lambda layer, p: layer, stop_after=2)
        assert logits is None and kept == {0: 0, 2: 2} and heads == []
        logits, _ = adapter.capture(adapter.to_ids(PROMPT)[None], [0, 2], lambda layer, p: layer)
        assert logits is not None and heads == [1]
    finally:
        handle.remove()


def test_bos_follows_the_tokenizer() -> None:
    model = make_model("qwen2")
    no_bos = make_tokenizer(bos=False)
    run = headscope.show(model, PROMPT, tokenizer=no_bos).run_result
    assert "".join(run.tokens) == PROMPT  # Qwen2-style: no BOS token, none added
    with pytest.raises(ValueError, match="adds no BOS token"):
        headscope.induction_probe(model, tokenizer=no_bos, length=10)


def test_ablation_equals_a_hand_written_hook() -> None:
    model, tok = make_model("llama"), make_tokenizer()
    ids = as_adapter(model, tokenizer=tok).to_ids(PROMPT)[None]
    heads = [(0, 1), (1, 3)]
    result = headscope.ablate(model, PROMPT, heads, tokenizer=tok)

    def zero(head: int):  # o_proj's input is [batch, pos, head * d_head]: zero one head's slice
        def hook(module, args):
            x = args[0].clone()
            x[..., head * 8 : (head + 1) * 8] = 0
            return (x,)

        return hook

    handles = [model.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(zero(h)) for layer, h in heads]
    try:
        with torch.no_grad():
            logits = model(input_ids=ids).logits
    finally:
        for handle in handles:
            handle.remove()
    log_probs = torch.log_softmax(logits.float(), -1)
    expected = -log_probs[0, :-1].gather(-1, ids[0, 1:, None])[..., 0]
    np.testing.assert_allclose(result.ablated_loss, expected.numpy(), atol=1e-4)
    assert abs(result.total_change) > 0


def test_patching_equals_a_hand_written_hook() -> None:
    model, tok = make_model("gpt2"), make_tokenizer()
    clean, corrupted = "John gave a drink to Mary", "Mary gave a drink to John"
    adapter = as_adapter(model, tokenizer=tok)
    clean_ids, corrupted_ids = adapter.to_ids(clean)[None], adapter.to_ids(corrupted)[None]
    assert clean_ids.shape == corrupted_ids.shape
    result = headscope.patch_heads(model, clean, corrupted, answer=(" Mary", " John"), tokenizer=tok)
    good, bad = (int(adapter.to_ids(a, prepend_bos=False)[0]) for a in (" Mary", " John"))
    c_proj = model.transformer.h[1].attn.c_proj
    kept: dict[str, torch.Tensor] = {}
    handle = c_proj.register_forward_pre_hook(lambda m, a: kept.__setitem__("z", a[0].clone()))
    with torch.no_grad():
        model(input_ids=clean_ids)
    handle.remove()

    def patch(module, args):  # head 2 of layer 1 from the clean run
        x = args[0].clone()
        x[..., 16:24] = kept["z"][..., 16:24]
        return (x,)

    handle = c_proj.register_forward_pre_hook(patch)
    with torch.no_grad():
        last = model(input_ids=corrupted_ids).logits[0, -1]
    handle.remove()
    assert result.patched[1, 2] == pytest.approx(float(last[good] - last[bad]), abs=1e-4)


def test_not_a_causal_lm_is_refused() -> None:
    import transformers as tf

    bare = tf.GPT2Model(tf.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=300))
    with pytest.raises(ValueError, match=r"GPT2Model is not a causal language model.*AutoModelForCausalLM"):
        headscope.show(bare, PROMPT, tokenizer=make_tokenizer())
    with pytest.raises(TypeError, match=r"list is not a supported model.*TransformerLens.*transformers.*nnsight"):
        headscope.show([1, 2], PROMPT)


def test_a_missing_tokenizer_is_named() -> None:
    model = make_model("gpt2")
    with pytest.raises(TypeError, match=r"no tokenizer.*tokenizer=AutoTokenizer"):
        headscope.show(model, PROMPT)


def test_gpt2_small_known_heads_show_for_a_hf_gpt2() -> None:
    model = make_model("gpt2", n_layers=12, n_heads=12)
    model.config.name_or_path = "openai-community/gpt2"
    widget = headscope.show(model, "The cat sat.", tokenizer=make_tokenizer())
    assert {"role": "induction", "layer": 5, "head": 5} in widget.known_heads
    assert widget.model_name == "openai-community/gpt2"


def test_widget_reruns_probes_and_ablates_through_the_adapter() -> None:
    model, tok = make_model("gpt2"), make_tokenizer()
    widget = headscope.show(model, PROMPT, tokenizer=tok)
    widget.layer, widget.head = 1, 2
    prompt = "The cat sat on the mat. The cat sat on the mat."
    widget.run(prompt)
    assert widget.tokens[0] == tok.bos_token and "".join(widget.tokens[1:]) == prompt
    assert widget.status == "ready" and (widget.layer, widget.head) == (1, 2)
    result = widget.probe(length=8)
    assert result.induction.shape == (2, 4)
    assert len(widget.tokens) == 17
    widget.ablate([(0, 0)])
    assert widget.ablation_heads == [[0, 0]]


def test_tiny_model_over_a_small_memory_budget_runs_again_for_a_head() -> None:
    model, tok = make_model("gpt2", n_layers=3), make_tokenizer()
    run = headscope.show(model, PROMPT, tokenizer=tok, memory_budget=1).run_result
    ids = run.token_ids
    expected = hf_eager_attentions(model, ids)
    assert_quantized_close(run.head(2, 3), expected[2][3])


def test_a_batch_captures_each_row_as_hf_does() -> None:
    model, tok = make_model("gpt2"), make_tokenizer()
    adapter = as_adapter(model, tokenizer=tok)
    assert isinstance(adapter, HFAdapter)
    ids = torch.stack([adapter.to_ids(PROMPT), adapter.to_ids(PROMPT).flip(0)])
    logits, patterns = capture_patterns(adapter, ids)
    assert logits.shape[:2] == ids.shape and patterns[0].shape == (2, 4, ids.shape[1], ids.shape[1])
    for row in range(2):  # float patterns, unquantized: HF's own eager output
        expected = hf_eager_attentions(model, ids[row])
        for layer in range(2):
            torch.testing.assert_close(patterns[layer][row], expected[layer], atol=1e-6, rtol=0)


def test_device_map_auto(tmp_path) -> None:
    """accelerate's device_map="auto" (one device here): its hooks and ours work together."""
    import transformers as tf

    make_model("llama").save_pretrained(tmp_path)
    model = tf.AutoModelForCausalLM.from_pretrained(tmp_path, device_map="auto")
    run = headscope.show(model, PROMPT, tokenizer=make_tokenizer()).run_result
    assert_quantized_close(run.layer_pattern(1), hf_eager_attentions(model, run.token_ids)[1])

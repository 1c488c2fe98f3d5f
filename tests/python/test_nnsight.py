"""The nnsight adapter on tiny random Hugging Face models wrapped in a LanguageModel, traced
locally (the code path of a remote run, without NDIF)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import headscope
from headscope._adapters import as_adapter
from headscope._adapters.nnsight import NNsightAdapter

from conftest import assert_quantized_close
from hf_tiny import make_model, make_tokenizer
from test_hf import PROMPT, hf_eager_attentions

nnsight = pytest.importorskip("nnsight")


def wrap(model):
    from nnsight.modeling.transformers import TransformersModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TransformersModel(model, tokenizer=make_tokenizer())


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_patterns_match_hf_eager(family: str) -> None:
    model = make_model(family)
    lm = wrap(model)
    run = headscope.show(lm, PROMPT).run_result
    assert isinstance(as_adapter(lm), NNsightAdapter)
    assert model.config._attn_implementation == "sdpa"  # restored after the trace
    expected = hf_eager_attentions(model, run.token_ids)
    for layer in range(run.n_layers):
        assert_quantized_close(run.layer_pattern(layer), expected[layer])


def test_only_the_reductions_are_saved_from_the_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a remote run would send back: each layer's reduction, never a float pattern."""
    saved: list = []
    original = nnsight.save

    def spy(value):
        saved.append(value)
        return original(value)

    monkeypatch.setattr(nnsight, "save", spy)
    run = headscope.show(wrap(make_model("gpt2")), PROMPT).run_result
    assert len(saved) == 1 and sorted(saved[0]) == [0, 1]
    layer = saved[0][0]
    assert type(layer).__name__ == "ReducedLayer" and layer.compact.values.dtype == torch.uint8
    assert run.n_layers == 2


def test_interventions_equal_hand_written_hooks() -> None:
    model = make_model("llama")
    lm = wrap(model)
    adapter = as_adapter(lm)
    ids = adapter.to_ids(PROMPT)[None]
    result = headscope.ablate(lm, PROMPT, [(1, 2)])

    def zero(module, args):
        x = args[0].clone()
        x[..., 16:24] = 0
        return (x,)

    handle = model.model.layers[1].self_attn.o_proj.register_forward_pre_hook(zero)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    handle.remove()
    expected = -torch.log_softmax(logits.float(), -1)[0, :-1].gather(-1, ids[0, 1:, None])[..., 0]
    np.testing.assert_allclose(result.ablated_loss, expected.numpy(), atol=1e-4)

    clean, corrupted = "John gave a drink to Mary", "Mary gave a drink to John"
    patched = headscope.patch_heads(lm, clean, corrupted, answer=(" Mary", " John"))
    reference = headscope.patch_heads(model, clean, corrupted, answer=(" Mary", " John"), tokenizer=make_tokenizer())
    np.testing.assert_allclose(patched.patched, reference.patched, atol=1e-4)


def test_widget_runs_again_and_recomputes_over_budget() -> None:
    model = make_model("gpt2", n_layers=3)
    lm = wrap(model)
    widget = headscope.show(lm, PROMPT, memory_budget=1)
    expected = hf_eager_attentions(model, widget.run_result.token_ids)
    assert_quantized_close(widget.run_result.head(2, 1), expected[2][1])
    widget.run("The cat sat on the mat.")
    assert widget.status == "ready" and widget.tokens[0] == make_tokenizer().bos_token


def test_remote_needs_an_nnsight_model() -> None:
    with pytest.raises(TypeError, match=r"remote=True runs a model on NDIF through nnsight.*LanguageModel"):
        headscope.show(make_model("gpt2"), PROMPT, tokenizer=make_tokenizer(), remote=True)

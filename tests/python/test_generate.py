"""Generate, then inspect: ``AttentionWidget.generate`` and the ``generate`` message."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import headscope
from headscope._adapters import as_adapter, run_token_ids
from headscope._generate import generate_ids

PROMPT = "The cat sat on the mat. The cat"


@pytest.fixture(scope="module")
def builtin() -> Any:
    from headscope._builtin import load_builtin

    return load_builtin()


def test_greedy_generation_is_deterministic_and_appends_marked_tokens(builtin: Any) -> None:
    a = headscope.show(builtin, PROMPT)
    n = len(a.tokens)
    assert a.generated_from == -1 and a.bos_first
    a.generate(8)
    b = headscope.show(builtin, PROMPT)
    b.generate(8)
    assert a.run_result.token_ids.tolist() == b.run_result.token_ids.tolist()
    assert len(a.tokens) == n + 8 and a.generated_from == n
    assert a.tokens[:n] == b.tokens[:n] and a.tokens == b.tokens
    # greedy: each new token is the argmax of the model's logits at the position before it
    ids = a.run_result.token_ids
    logits = builtin(ids[None])[0]
    assert ids[n:].tolist() == logits[n - 1 : -1].argmax(-1).tolist()
    # the prompt box and the history keep the prompt as typed; the status says what happened
    assert a.prompt == PROMPT and a.history == []
    assert a.note == "8 generated tokens after the prompt (greedy)" and a.status == "ready"


def test_generating_again_appends_and_a_new_prompt_clears(builtin: Any) -> None:
    w = headscope.show(builtin, PROMPT)
    n = len(w.tokens)
    w.generate(3)
    first = list(w.tokens)
    w.generate(2)
    assert w.tokens[: n + 3] == first and len(w.tokens) == n + 5
    assert w.generated_from == n  # the mark starts where the prompt ends, not at the last call
    w.run("ab ab")
    assert w.generated_from == -1 and w.tokens == ["<|bos|>", "a", "b", " ", "a", "b"]
    assert w.history == [PROMPT]


def test_sampling_with_a_seed_is_reproducible(builtin: Any) -> None:
    adapter = as_adapter(builtin)
    ids = adapter.to_ids(PROMPT)
    one = generate_ids(adapter, ids, 12, temperature=1.5, seed=3)
    two = generate_ids(adapter, ids, 12, temperature=1.5, seed=3)
    assert one.tolist() == two.tolist()
    assert one[: ids.numel()].tolist() == ids.tolist()
    # sampling is not greedy: other seeds give other continuations
    greedy = generate_ids(adapter, ids, 12)
    others = {tuple(generate_ids(adapter, ids, 12, temperature=1.5, seed=s).tolist()) for s in range(4, 9)}
    assert len(others | {tuple(one.tolist())}) > 1
    assert any(o != tuple(greedy.tolist()) for o in others)
    # the widget's sampling draws the same tokens
    w = headscope.show(builtin, PROMPT)
    w.generate(12, temperature=1.5, seed=3)
    assert w.run_result.token_ids.tolist() == one.tolist()
    assert w.note == "12 generated tokens after the prompt (sampled at temperature 1.5, seed 3)"


def test_patterns_of_generated_tokens_equal_a_fresh_run(builtin: Any) -> None:
    w = headscope.show(builtin, PROMPT)
    w.generate(6)
    run = w.run_result
    fresh = run_token_ids(builtin, run.token_ids.clone())
    assert fresh.tokens == run.tokens
    for layer in range(run.n_layers):
        for head in range(run.n_heads):
            np.testing.assert_array_equal(run.head(layer, head), fresh.head(layer, head))
    for name, value in fresh.head_scores().items():
        np.testing.assert_array_equal(run.head_scores()[name], value)


def test_tiny_bridge_generation_matches_a_fresh_run(tiny_model: Any) -> None:
    w = headscope.show(tiny_model, "abc abc")
    n = len(w.tokens)
    w.generate(5)
    w2 = headscope.show(tiny_model, "abc abc")
    w2.generate(5)
    ids = w.run_result.token_ids
    assert ids.tolist() == w2.run_result.token_ids.tolist() and ids.numel() == n + 5
    fresh = run_token_ids(tiny_model, ids.clone())
    np.testing.assert_array_equal(w.run_result.head(1, 3), fresh.head(1, 3))


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"max_new_tokens": 0}, ValueError, "max_new_tokens must be at least 1"),
        ({"max_new_tokens": -3}, ValueError, "max_new_tokens must be at least 1"),
        ({"max_new_tokens": 2.5}, TypeError, "max_new_tokens must be a whole number"),
        ({"max_new_tokens": True}, TypeError, "max_new_tokens must be a whole number"),
        ({"max_new_tokens": "20"}, TypeError, "max_new_tokens must be a whole number"),
        ({"temperature": -0.5}, ValueError, "temperature must be a finite number >= 0"),
        ({"temperature": float("nan")}, ValueError, "temperature must be a finite number >= 0"),
        ({"temperature": "hot"}, TypeError, "temperature must be a number"),
        ({"seed": 1.5}, TypeError, "seed must be an int or None"),
    ],
)
def test_bad_arguments_raise_naming_the_argument_and_change_nothing(
    builtin: Any, kwargs: dict[str, Any], error: type, text: str
) -> None:
    w = headscope.show(builtin, "ab ab")
    before, run_id = list(w.tokens), w.run_id
    with pytest.raises(error, match=text):
        w.generate(**kwargs)
    assert w.tokens == before and w.run_id == run_id and w.generated_from == -1
    assert w.status == "error" and text in w.error


def test_the_context_limit_refuses_and_says_how_many_fit(tiny_model: Any) -> None:
    w = headscope.show(tiny_model, "x" * 50)  # 51 tokens of a 64-token context
    with pytest.raises(ValueError, match=r"would make the sequence 71 tokens long, but the model's context holds 64.*at most 13 more fit"):
        w.generate(20)
    assert len(w.tokens) == 51 and w.generated_from == -1
    w.generate(13)
    assert len(w.tokens) == 64 and w.generated_from == 51
    with pytest.raises(ValueError, match="no more fit"):
        w.generate(1)


def test_generation_from_precomputed_attention_needs_a_model(make_attention: Any) -> None:
    w = headscope.show_attention(["a", "b"], make_attention(1, 1, 2))
    with pytest.raises(TypeError, match="generation needs a model"):
        w.generate(2)
    assert not w.bos_first and w.generated_from == -1


def test_the_generate_message_runs_and_bad_counts_show_errors(builtin: Any) -> None:
    w = headscope.show(builtin, "ab ab")
    n = len(w.tokens)
    w._handle_custom_msg({"type": "generate", "max_new_tokens": 4}, [])
    assert len(w.tokens) == n + 4 and w.generated_from == n and w.status == "ready"
    for count, text in [(0, "at least 1"), ("abc", "whole number, got the text 'abc'"), (None, "whole number"), (1.5, "whole number")]:
        w._handle_custom_msg({"type": "generate", "max_new_tokens": count}, [])  # the kernel lives on
        assert w.status == "error" and text in w.error, (count, w.error)
        assert len(w.tokens) == n + 4
    w._handle_custom_msg({"type": "generate", "max_new_tokens": 2.0, "temperature": 0.7, "seed": 1}, [])
    assert w.status == "ready" and len(w.tokens) == n + 6


def test_a_parked_generated_run_comes_back_whole(builtin: Any) -> None:
    w = headscope.show(builtin, "ab ab")
    w._handle_custom_msg({"type": "view", "view": "v1", "open": True}, [])
    w.generate(4)
    ids = w.run_result.token_ids.tolist()
    head = w.run_result.head(1, 0)
    w._handle_custom_msg({"type": "view", "view": "v1", "open": False}, [])
    assert w.parked
    assert w.run_result.token_ids.tolist() == ids and w.generated_from == 6
    np.testing.assert_array_equal(w.run_result.head(1, 0), head)


def test_bos_first_follows_the_run(builtin: Any) -> None:
    w = headscope.show(builtin, "ab")
    assert w.bos_first
    # token ids without the BOS in front (the probe path takes any ids)
    run = run_token_ids(builtin, torch.tensor([97, 98, 99]))
    w._apply(run)
    assert not w.bos_first


@pytest.mark.parametrize(("family", "bos"), [("gpt2", True), ("qwen2", False)])
def test_hugging_face_generation_and_bos_first(family: str, bos: bool) -> None:
    from hf_tiny import make_model, make_tokenizer

    model, tok = make_model(family), make_tokenizer(bos=bos)
    w = headscope.show(model, "ab ab", tokenizer=tok)
    assert w.bos_first is bos  # Qwen2's tokenizer prepends no BOS: nothing to hide
    n = len(w.tokens)
    w.generate(4)
    ids = w.run_result.token_ids
    assert ids.numel() == n + 4 and w.generated_from == n
    logits = model(ids[None]).logits[0]
    assert ids[n:].tolist() == logits[n - 1 : -1].argmax(-1).tolist()
    fresh = run_token_ids(w._model, ids.clone())
    np.testing.assert_array_equal(w.run_result.head(1, 2), fresh.head(1, 2))

"""The widget's kernel side: traits, head requests, runs and errors (docs/wire.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import headscope
from headscope._wire import decode_head

TOKENS = ["<bos>", "x", "y", "z", "</script><img src=x onerror=alert(1)>"]


@pytest.fixture
def precomputed(make_attention, recorder) -> Any:
    w = headscope.show_attention(TOKENS, make_attention(2, 3, len(TOKENS)))
    w.send = recorder
    return w


@pytest.fixture
def live(tiny_model, recorder) -> Any:
    w = headscope.show(tiny_model, "The cat sat.")
    w.send = recorder
    return w


def test_precomputed_state(precomputed, make_attention) -> None:
    w = precomputed
    assert w.tokens == TOKENS
    assert (w.n_layers, w.n_heads, w.thumb_size, w.run_id) == (2, 3, 5, 1)
    assert len(w.atlas) == 2 * 3 * 5 * 5
    assert not w.can_run and w.status == "ready" and w.error == ""
    state = w.get_state()
    assert bytes(state["atlas"]) == w.atlas and state["tokens"] == TOKENS


def test_request_head_answers_with_two_buffers(precomputed, recorder, make_attention) -> None:
    expected = make_attention(2, 3, len(TOKENS))[1, 2]
    precomputed._handle_custom_msg({"type": "request_head", "request_id": 9, "layer": 1, "head": 2})
    content, (scales, values) = recorder.last
    assert content == {
        "type": "head",
        "request_id": 9,
        "run_id": 1,
        "layer": 1,
        "head": 2,
        "seq_len": 5,
        "packing": "tril",
    }
    np.testing.assert_allclose(decode_head(scales, values, 5, "tril"), expected, atol=1 / 510)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"type": "request_head", "request_id": 3, "layer": 7, "head": 0}, "layer 7 is out of range"),
        ({"type": "request_head", "request_id": 3, "layer": 0}, "head must be an int, got NoneType"),
        ({"type": "request_head", "request_id": 3, "layer": "0", "head": 0}, "layer must be an int"),
    ],
)
def test_bad_head_requests_get_an_error_reply(precomputed, recorder, message, error) -> None:
    precomputed._handle_custom_msg(message)
    content, buffers = recorder.last
    assert content["type"] == "head_error" and content["request_id"] == 3
    assert error in content["message"] and buffers == []


def test_unknown_and_malformed_messages_are_ignored(precomputed, recorder) -> None:
    for message in (None, [], "run", {"type": "nope"}, {}):
        precomputed._handle_custom_msg(message)
    assert recorder.sent == []


def test_layer_and_head_are_validated(precomputed) -> None:
    precomputed.layer, precomputed.head = 1, 2
    with pytest.raises(ValueError, match="layer 2 is out of range"):
        precomputed.layer = 2
    with pytest.raises(ValueError, match="head 3 is out of range"):
        precomputed.head = 3
    assert (precomputed.layer, precomputed.head) == (1, 2)


def test_precomputed_widget_cannot_run(precomputed) -> None:
    with pytest.raises(TypeError, match="precomputed attention"):
        precomputed.prompt = "new"
    precomputed._handle_custom_msg({"type": "run", "prompt": "new"})
    assert precomputed.status == "error" and "precomputed attention" in precomputed.error
    assert precomputed.tokens == TOKENS


def test_run_message_reruns_the_model(live, tiny_model) -> None:
    assert live.can_run and live.model_name == "headscope-builtin"
    live._handle_custom_msg({"type": "run", "prompt": "A dog ran."})
    assert live.tokens == tiny_model.to_str_tokens("A dog ran.")
    assert live.prompt == "A dog ran." and live.history == ["The cat sat."]
    assert live.run_id == 2 and live.status == "ready" and live.error == ""
    live._handle_custom_msg({"type": "run", "prompt": "The cat sat."})
    assert live.history == ["A dog ran."]  # the current prompt never shows in its own history


def test_bad_run_keeps_the_last_good_view(live) -> None:
    before = (live.tokens, live.atlas, live.run_id, live.prompt)
    live._handle_custom_msg({"type": "run", "prompt": "y" * 200})
    assert live.status == "error"
    assert "ValueError" in live.error and "context holds 64" in live.error
    assert (live.tokens, live.atlas, live.run_id, live.prompt) == before
    live._handle_custom_msg({"type": "run", "prompt": 5})
    assert "prompt must be a string" in live.error


def test_prompt_assignment_from_python(live, tiny_model) -> None:
    live.prompt = "Hi there"
    assert live.tokens == tiny_model.to_str_tokens("Hi there") and live.status == "ready"
    with pytest.raises(ValueError, match="prompt is empty"):
        live.prompt = ""
    assert live.prompt == "Hi there" and live.status == "error"


def test_a_model_that_fails_mid_run(live, tiny_model, monkeypatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(tiny_model, "run_with_hooks", broken)
    tokens = live.tokens
    live._handle_custom_msg({"type": "run", "prompt": "Another prompt"})
    assert live.status == "error" and "RuntimeError: CUDA out of memory" in live.error
    assert live.tokens == tokens


def test_layer_and_head_clamp_when_a_run_has_fewer(make_attention) -> None:
    w = headscope.show_attention(["a", "b"], make_attention(3, 4, 2), layer=2, head=3)
    assert (w.layer, w.head) == (2, 3)


def test_widgets_are_independent(make_attention) -> None:
    a = headscope.show_attention(["a", "b"], make_attention(1, 1, 2))
    b = headscope.show_attention(["c", "d", "e"], make_attention(2, 2, 3))
    a.layer = 0
    b.layer = 1
    assert a.tokens == ["a", "b"] and b.tokens == ["c", "d", "e"] and a.layer == 0


def test_show_with_the_builtin_model_by_name_or_none() -> None:
    w = headscope.show(None, "ab ab")
    assert w.model_name == "headscope-builtin" and w.tokens[1:] == ["a", "b", " ", "a", "b"]


def test_head_scores_from_a_widget_a_run_or_a_model(tiny_model) -> None:
    w = headscope.show(tiny_model, "abcabc")
    from_widget = headscope.head_scores(w)
    from_run = headscope.head_scores(w.run_result)
    from_model = headscope.head_scores(tiny_model, "abcabc")
    # copying comes from the weights: a widget with a model has it (docs/ov.md)
    assert set(from_widget) == {"previous_token", "induction", "duplicate_token", "bos_sink", "entropy", "copying"}
    assert "copying" not in from_run  # a run alone has no weights
    for name, value in from_widget.items():
        assert value.shape == (2, 4)
        assert np.all((value >= 0) & (value <= 1 + 1e-6)), (name, value)
        if name != "copying":
            np.testing.assert_allclose(value, from_run[name])
        np.testing.assert_allclose(value, from_model[name], atol=1e-6)
    from headscope._adapters import capture_patterns

    _, patterns = capture_patterns(tiny_model, w.run_result.token_ids[None])
    layer0 = patterns[0][0, 1].numpy()  # the float weights: the scores are exact
    expected = np.mean([layer0[q, q - 1] for q in range(1, len(w.tokens))])
    assert from_widget["previous_token"][0, 1] == pytest.approx(expected, abs=1e-6)
    decoded = w.run_result.head(0, 1)  # the quantized head: within row max / 510
    assert np.mean([decoded[q, q - 1] for q in range(1, len(w.tokens))]) == pytest.approx(expected, abs=1 / 510)


def test_head_scores_of_precomputed_attention_match_token_strings() -> None:
    tokens = ["<bos>", "a", "b", "c", "a", "b"]
    att = np.zeros((1, 1, 6, 6), np.float32)
    att[0, 0, [0, 1, 2, 3], [0, 0, 1, 2]] = 1  # previous token
    att[0, 0, 4, 2] = 1  # induction: the token after the earlier "a"
    att[0, 0, 5, 3] = 1  # induction: the token after the earlier "b"
    scores = headscope.head_scores(headscope.show_attention(tokens, att))
    assert scores["induction"][0, 0] == pytest.approx(1.0)
    assert scores["previous_token"][0, 0] == pytest.approx(3 / 5)


def test_head_scores_argument_errors(precomputed) -> None:
    with pytest.raises(TypeError, match="needs a prompt"):
        headscope.head_scores(object())
    with pytest.raises(TypeError, match="has its own"):
        headscope.head_scores(precomputed, "abc")


def test_head_scores_with_a_custom_template() -> None:
    tokens = ["<bos>", "a", "b", "c", "d"]
    att = np.zeros((1, 2, 5, 5), np.float32)
    att[0, :, 0, 0] = 1
    att[0, 0, np.arange(1, 5), 0] = 1  # head 0: BOS sink
    att[0, 1, np.arange(1, 5), np.arange(1, 5)] = 1  # head 1: attends to itself
    w = headscope.show_attention(tokens, att)
    diagonal = np.eye(5)
    scores = headscope.head_scores(w, template=diagonal)
    np.testing.assert_allclose(scores["custom"], [[0.2, 1.0]])  # head 0 hits the diagonal at row 0 only
    np.testing.assert_allclose(scores["bos_sink"], [[1.0, 0.0]])
    np.testing.assert_allclose(scores["entropy"], [[0.0, 0.0]])
    by_function = headscope.head_scores(w, template=lambda ids: np.eye(len(ids)))
    np.testing.assert_allclose(by_function["custom"], scores["custom"])


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (np.eye(4), r"template has shape \(4, 4\), but there are 5 tokens"),
        (np.triu(np.ones((5, 5))), "above the diagonal, where a causal head cannot attend"),
        (np.full((5, 5), np.nan), "NaN"),
        (lambda ids: "diagonal", "numeric"),
    ],
)
def test_bad_custom_templates(template, message) -> None:
    att = np.tril(np.ones((1, 1, 5, 5), np.float32))
    att /= att.sum(-1, keepdims=True)
    w = headscope.show_attention(["<bos>", "a", "b", "c", "d"], att)
    with pytest.raises((ValueError, TypeError), match=message):
        headscope.head_scores(w, template=template)


def test_upper_triangle_templates_are_fine_for_non_causal_attention() -> None:
    att = np.full((1, 1, 3, 3), 1 / 3, np.float32)
    w = headscope.show_attention(["a", "b", "c"], att, causal=False)
    scores = headscope.head_scores(w, template=np.triu(np.ones((3, 3)), 1))
    assert scores["custom"][0, 0] == pytest.approx((2 / 3 + 1 / 3) / 2)  # rows 0 and 1 have targets


def test_request_scores_fills_the_score_traits(live, tiny_model) -> None:
    assert live.scores == b"" and live.scores_run_id == 0
    live._handle_custom_msg({"type": "request_scores"})
    expected = headscope.head_scores(live)
    assert live.score_names == list(expected) and live.scores_run_id == live.run_id
    values = np.frombuffer(live.scores, "<f4").reshape(len(expected), 2, 4)
    for i, name in enumerate(live.score_names):
        np.testing.assert_allclose(values[i], expected[name], rtol=1e-6, equal_nan=True)
    live._handle_custom_msg({"type": "run", "prompt": "Another one"})
    assert live.scores_run_id != live.run_id  # stale until asked again
    live._handle_custom_msg({"type": "request_scores"})
    assert live.scores_run_id == live.run_id


def test_probe_message_shows_the_probe_and_its_loss(live, tiny_model) -> None:
    live._handle_custom_msg({"type": "probe"})
    # the default 50-token segment does not fit a 64-token context: the longest that fits, 31
    assert live.status == "ready" and len(live.tokens) == 63  # BOS + 2 x 31
    expected = headscope.induction_probe(tiny_model, length=31, seed=0)
    assert live.note == expected.summary()
    assert f"loss {expected.first_half_loss:.2f} on the first copy" in live.note
    assert live.tokens[1:32] == live.tokens[32:]  # the segment, repeated
    live._handle_custom_msg({"type": "run", "prompt": "abc"})
    assert live.note == ""  # a normal run clears the probe's line


def test_probe_errors_are_shown(precomputed, tiny_model) -> None:
    precomputed._handle_custom_msg({"type": "probe"})
    assert precomputed.status == "error" and "needs a model" in precomputed.error
    small = headscope.show(tiny_model, "abc")  # 64-token context: a 40-token probe cannot fit
    with pytest.raises(ValueError, match="use length <= 31"):
        small.probe(length=40)
    assert small.status == "error" and small.tokens == tiny_model.to_str_tokens("abc")

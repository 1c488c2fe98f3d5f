"""The widget's OV and direct-logit-attribution requests (docs/wire.md) and the copying score in
its score picker."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import headscope

from hf_tiny import make_model, make_tokenizer


@pytest.fixture
def live(recorder: Any) -> Any:
    w = headscope.show(None, "The cat sat on the mat. The cat sat on the mat.")
    w.send = recorder
    return w


def test_request_ov_answers_with_the_api_s_lists(live: Any, recorder: Any) -> None:
    position = 5  # " " ... the token at that position is the source
    live._handle_custom_msg({"type": "request_ov", "request_id": "r1", "layer": 1, "head": 0, "position": position})
    reply, buffers = recorder.last
    expected = headscope.ov_top_tokens(None, 1, 0, int(live.run_result.token_ids[position]), k=10)
    assert reply["type"] == "ov" and reply["request_id"] == "r1" and buffers == []
    assert (reply["run_id"], reply["layer"], reply["head"], reply["position"]) == (live.run_id, 1, 0, position)
    assert reply["token"] == live.tokens[position] == expected.token
    assert [tuple(x) for x in reply["raised"]] == [(s, pytest.approx(v)) for s, v in expected.raised]
    assert [tuple(x) for x in reply["lowered"]] == [(s, pytest.approx(v)) for s, v in expected.lowered]


def test_request_dla_gives_the_selected_head_and_its_rank(live: Any, recorder: Any) -> None:
    live._handle_custom_msg(
        {"type": "request_dla", "request_id": 7, "layer": 1, "head": 0, "position": 20, "tokens": ["x"]}
    )
    reply, _ = recorder.last
    assert reply["type"] == "dla" and reply["request_id"] == 7 and reply["n_heads"] == 16
    expected = headscope.direct_logit_attribution(None, live.prompt, 20, ["x"])
    assert [e["token"] for e in reply["entries"]] == expected.targets
    for entry, values, logit in zip(reply["entries"], expected.values, expected.logits):
        assert entry["value"] == pytest.approx(float(values[1, 0]), abs=1e-5)
        assert entry["rank"] == 1 + int((values > values[1, 0]).sum())
        assert entry["logit"] == pytest.approx(float(logit), abs=1e-5)
    assert "frozen" in reply["norm"]


def test_bad_requests_get_error_replies_and_the_kernel_lives_on(live: Any, recorder: Any) -> None:
    cases = [
        ({"type": "request_dla", "request_id": "a", "layer": 1, "head": 0, "position": 3, "tokens": ["xy"]},
         "dla_error", "the token 'xy' is 2 tokens ('x', 'y'), not one token"),
        ({"type": "request_dla", "request_id": "b", "layer": 1, "head": 0, "position": 3, "tokens": "x"},
         "dla_error", "tokens must be a list"),
        ({"type": "request_ov", "request_id": "c", "layer": 5, "head": 0, "position": 3}, "ov_error", "layer"),
        ({"type": "request_ov", "request_id": "d", "layer": 1, "head": 0, "position": 999}, "ov_error", "position must be"),
        ({"type": "request_ov", "request_id": "e", "layer": 1, "head": 0, "position": True}, "ov_error", "position must be"),
        ({"type": "request_ov", "request_id": None, "layer": 1, "head": 0, "position": 1}, "ov_error", "request_id"),
    ]
    for message, kind, text in cases:
        live._handle_custom_msg(message)
        reply, _ = recorder.last
        assert reply["type"] == kind and text in reply["message"], (message, reply)
    assert recorder.sent[0][0]["field"] == "token"  # shown next to the token input
    live._handle_custom_msg({"type": "request_ov", "request_id": "ok", "layer": 1, "head": 0, "position": 1})
    assert recorder.last[0]["type"] == "ov" and live.status == "ready"


def test_copying_is_offered_and_scored_once(live: Any) -> None:
    assert live.ov_unavailable == "" and live.score_names[-1] == "copying"
    live._handle_custom_msg({"type": "request_scores"})
    names = live.score_names
    values = np.frombuffer(live.scores, "<f4").reshape(len(names), 2, 8)
    np.testing.assert_array_equal(values[names.index("copying")], headscope.copying_scores(None))
    first = live._copying
    live._handle_custom_msg({"type": "run", "prompt": "ab ab"})
    live._handle_custom_msg({"type": "request_scores"})
    assert live._copying is first  # from the weights alone: not computed again for a new prompt
    assert live.score_names[-1] == "copying"


def test_without_weights_the_widget_says_why(recorder: Any) -> None:
    att = np.full((1, 1, 2, 2), 0.5, np.float32)
    att[..., 0, :] = [1, 0]
    w = headscope.show_attention(["a", "b"], att)
    w.send = recorder
    assert "no model" in w.ov_unavailable and "copying" not in w.score_names
    w._handle_custom_msg({"type": "request_ov", "request_id": "x", "layer": 0, "head": 0, "position": 1})
    reply, _ = recorder.last
    assert reply["type"] == "ov_error" and "no model" in reply["message"]


def test_remote_model_widget_says_why() -> None:
    pytest.importorskip("nnsight")
    from nnsight.modeling.transformers import TransformersModel

    from headscope._adapters import as_adapter
    from headscope._widget import AttentionWidget
    from headscope._run import make_run

    lm = TransformersModel(make_model("gpt2", n_layers=1, n_heads=2), tokenizer=make_tokenizer())
    remote = as_adapter(lm, remote=True)
    att = np.full((1, 2, 2, 2), 0.5, np.float32)
    att[..., 0, :] = [1, 0]
    w = AttentionWidget(make_run(["a", "b"], att), model=remote)
    assert "runs remotely" in w.ov_unavailable and "copying" not in w.score_names
    assert "copying" not in headscope.head_scores(w)

"""The widget in real notebooks: concurrent delivery, the prompt queue, rollback of invalid
browser updates, the user's own message callbacks, and memory that does not grow on re-run."""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets
import numpy as np
import pytest

import headscope
from headscope._widget import widget as widget_module
from headscope._wire import decode_head


@pytest.fixture
def live(tiny_model, recorder) -> Any:
    w = headscope.show(tiny_model, "The cat sat.")
    w.send = recorder
    return w


def run_messages(recorder: Any) -> list[dict[str, Any]]:
    return [content for content, _ in recorder.sent if content.get("type") == "run_done"]


def test_prompts_delivered_at_once_on_two_threads_are_queued_never_lost(live, recorder, monkeypatch) -> None:
    """A runs; B and C arrive on other threads meanwhile: C replaces B in the queue, B goes into
    the history, C is shown last, and nothing overlaps."""
    started, release = threading.Event(), threading.Event()
    active: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    real_run_model = widget_module.run_model

    def slow_run_model(model: Any, prompt: str, **kwargs: Any) -> Any:
        active.append(prompt)
        if len(active) > 1:
            overlaps.append(tuple(active))
        if prompt == "A":
            started.set()
            assert release.wait(10)
        try:
            return real_run_model(model, prompt, **kwargs)
        finally:
            active.remove(prompt)

    monkeypatch.setattr(widget_module, "run_model", slow_run_model)
    first = threading.Thread(target=live._handle_custom_msg, args=({"type": "run", "prompt": "A", "request_id": "v-1"},))
    first.start()
    assert started.wait(10)
    for prompt, rid in (("B", "w-1"), ("C", "w-2")):  # another window, another thread each
        other = threading.Thread(target=live._handle_custom_msg, args=({"type": "run", "prompt": prompt, "request_id": rid},))
        other.start()
        other.join(10)
        assert not other.is_alive(), "a queued prompt must not block its thread"
    release.set()
    first.join(10)

    assert overlaps == []
    assert live.prompt == "C" and live.status == "ready" and live.error == ""
    assert live.tokens == live._model.model.to_str_tokens("C")
    assert set(live.history) >= {"The cat sat.", "A", "B"}
    done = {m["request_id"]: m for m in run_messages(recorder)}
    assert done["w-1"]["superseded"] is True and done["w-1"]["ok"] is False
    assert done["v-1"]["ok"] is True and done["w-2"]["ok"] is True


def test_superseded_prompts_sent_by_the_browser_go_into_the_history(live, recorder) -> None:
    live._handle_custom_msg({"type": "run", "prompt": "new one", "request_id": 3, "superseded": ["typed first", 5]})
    assert live.prompt == "new one" and live.history[:2] == ["typed first", "The cat sat."]
    assert run_messages(recorder) == [{"type": "run_done", "request_id": 3, "ok": True, "superseded": False}]


def test_a_failed_run_still_answers_its_request(live, recorder) -> None:
    live._handle_custom_msg({"type": "run", "prompt": "", "request_id": "v-9"})
    assert live.status == "error" and "prompt is empty" in live.error
    assert run_messages(recorder)[-1] == {"type": "run_done", "request_id": "v-9", "ok": False, "superseded": False}


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"layer": -1}, "layer -1 is out of range"),
        ({"layer": 1, "head": 1000000000}, "head 1000000000 is out of range"),
        ({"head": "two"}, "head"),
        ({"known_heads": [{"role": "x", "layer": 9, "head": 0}]}, "known_heads[0]"),
    ],
)
def test_an_invalid_browser_update_is_rolled_back_and_said(live, update, message) -> None:
    sent: list[dict[str, Any]] = []
    live.layer, live.head = 0, 2

    def send_state(key: Any = None) -> None:
        names = [key] if isinstance(key, str) else list(key or [])
        sent.append({k: getattr(live, k) for k in names})

    live.send_state = send_state  # type: ignore[method-assign]
    known = list(live.known_heads)
    live.set_state(update)
    assert (live.layer, live.head, live.known_heads) == (0, 2, known)
    assert live.status == "error" and message in live.error, live.error
    # the browser is sent the values the kernel kept
    assert sent and all(sent[-1][k] == getattr(live, k) for k in update)
    live.set_state({"layer": 1, "head": 3})  # a good update afterwards works
    assert (live.layer, live.head) == (1, 3)


def test_the_users_own_message_callbacks_fire(live) -> None:
    seen: list[Any] = []
    live.on_msg(lambda widget, content, buffers: seen.append((widget, content)))
    live._handle_custom_msg({"type": "custom", "x": 1}, [])
    live._handle_custom_msg({"type": "request_scores"}, [])
    assert seen == [(live, {"type": "custom", "x": 1}), (live, {"type": "request_scores"})]
    assert live.scores_run_id == live.run_id  # and headscope's own handler still answers


@pytest.mark.parametrize("request_id", [None, [1], {"a": 1}, "x" * 65, True])
def test_a_head_request_needs_a_usable_id(live, recorder, request_id) -> None:
    live._handle_custom_msg({"type": "request_head", "request_id": request_id, "layer": 0, "head": 0})
    content, buffers = recorder.last
    assert content["type"] == "head_error" and "request_id" in content["message"] and buffers == []


def test_head_replies_echo_string_ids_and_name_their_head(live, recorder) -> None:
    live._handle_custom_msg({"type": "request_head", "request_id": "view-ab12-7", "layer": 1, "head": 3})
    content, _ = recorder.last
    assert (content["request_id"], content["run_id"], content["layer"], content["head"]) == ("view-ab12-7", 1, 1, 3)


def test_the_probe_selects_its_best_head_and_keeps_the_prompt_in_history(live) -> None:
    result = live.probe(length=20)
    layer, head, _ = result.top_heads("induction", 1)[0]
    assert (live.layer, live.head) == (layer, head)
    assert live.history[0] == "The cat sat."


def big_model() -> Any:
    from headscope._builtin.model import ModelSpec, build_model

    return build_model(ModelSpec(n_layers=2, n_heads=4, d_model=32, d_head=8, n_ctx=512), seed=0).eval()


def test_memory_does_not_grow_when_a_cell_is_run_again() -> None:
    """Twenty re-runs of `w = headscope.show(model, prompt)` at 512 tokens: each new output
    replaces the old one, whose view closes. The widgets together hold about one run."""
    model = big_model()
    prompt = "".join(chr(97 + (i * 7) % 26) for i in range(511))  # BOS + 511 bytes = 512 tokens
    widgets = []
    for i in range(20):
        w = headscope.show(model, prompt)
        w.send = lambda *args, **kwargs: None
        w._handle_custom_msg({"type": "view", "view": f"view-{i}", "open": True})
        if widgets:
            widgets[-1]._handle_custom_msg({"type": "view", "view": f"view-{i - 1}", "open": False})
        widgets.append(w)
    assert len(widgets[-1].tokens) == 512
    one_run = widgets[-1]._held_bytes()
    assert one_run >= 2 * 4 * (512 * 513 // 2 + 4 * 512)  # every head, quantized (lower triangle)
    # every widget is still alive, as in a kernel (ipywidgets keeps each until it is closed)
    live = list(ipywidgets.widgets.widget._instances.values())
    assert all(any(w is x for x in live) for w in widgets)
    held = sum(w._held_bytes() for w in widgets)
    assert held <= 1.1 * one_run, (held, one_run)
    assert all(w.parked for w in widgets[:-1]) and not widgets[-1].parked
    for w in widgets:
        w.close()


def test_a_parked_widget_computes_its_run_again_when_shown(live, recorder) -> None:
    before = live.run_result.head(1, 2).copy()
    run_id, atlas = live.run_id, live.atlas
    live._handle_custom_msg({"type": "view", "view": "a", "open": True})
    live._handle_custom_msg({"type": "view", "view": "b", "open": True})
    live._handle_custom_msg({"type": "view", "view": "a", "open": False})
    assert not live.parked  # view b still shows it
    live._handle_custom_msg({"type": "view", "view": "b", "open": False})
    assert live.parked and live._held_bytes() == 0 and live.atlas == b""
    # a head request (a view shown again) brings it back, same run, same values
    live._handle_custom_msg({"type": "request_head", "request_id": "c-1", "layer": 1, "head": 2})
    content, (scales, values) = recorder.last
    assert content["run_id"] == run_id and not live.parked and live.atlas == atlas
    np.testing.assert_allclose(decode_head(scales, values, len(live.tokens), content["packing"]), before, atol=1 / 510)
    live._handle_custom_msg({"type": "view", "view": "c", "open": True})
    assert live.run_id == run_id


def test_a_precomputed_widget_is_never_parked(make_attention) -> None:
    w = headscope.show_attention(["a", "b", "c"], make_attention(1, 2, 3))
    w._handle_custom_msg({"type": "view", "view": "a", "open": True})
    w._handle_custom_msg({"type": "view", "view": "a", "open": False})
    assert not w.parked and w.run_result.n_heads == 2


def test_close_frees_the_run(tiny_model) -> None:
    w = headscope.show(tiny_model, "abc")
    w.close()
    assert w._held_bytes() <= len(w.atlas) + len(w.scores)
    assert w._run is None


def test_a_closed_widget_says_so(tiny_model) -> None:
    w = headscope.show(tiny_model, "abc")
    w.close()
    with pytest.raises(RuntimeError, match="closed"):
        w.run_result

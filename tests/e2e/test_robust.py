"""Tier A: the widget in the situations real notebooks create (a host page with the real Python
widget behind a fake model; see test_host_page.py): several widgets, a dead kernel, selections
set from Python, rejected updates, foreign replies and prompts typed during runs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

import headscope
from headscope._widget import widget as widget_module
from test_host_page import TOKENS, Host, host, random_attention  # noqa: F401  (host is a fixture)

pytestmark = pytest.mark.browser


def head_replies(host: Host, widget_id: str) -> list[dict[str, Any]]:
    return [m for m in host.kernel.received[widget_id] if m.get("type") == "request_head"]


def test_three_widgets_have_their_own_ids(host: Host) -> None:
    for name in ("a", "b", "c"):
        host.mount(name, headscope.show(None, f"{name} prompt"))
    ids = host.page.eval_on_selector_all("[id]", "els => els.map(e => e.id)")
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    roots = host.page.eval_on_selector_all(".headscope", "els => els.map(e => e.id)")
    assert len(set(roots)) == 3 and all(r.startswith("headscope-") for r in roots)
    # a label focuses the control of its own widget
    host.page.locator("#slot-c .hs-prompt > label").click()
    assert host.page.evaluate("document.activeElement.closest('.host-slot').id") == "slot-c"
    assert host.page.evaluate("document.activeElement.value") == "c prompt"


def test_layer_and_head_set_together_from_python_fetch_one_head(host: Host) -> None:
    w = headscope.show_attention(TOKENS, random_attention(3, 4, len(TOKENS)))
    host.mount("a", w)
    before = len(head_replies(host, "a"))
    w.layer, w.head = 2, 3  # the README's idiom: two updates reach the page, one after the other
    host.page.evaluate(
        """async () => {
            const m = window.hsModels.a;
            m.applyState({layer: 2});
            await new Promise((r) => setTimeout(r, 0));
            m.applyState({head: 3});
        }"""
    )
    expect(host.page.locator("#slot-a .hs-head-label")).to_have_text("layer 2 · head 3")
    host.wait_loaded("a")
    asked = head_replies(host, "a")[before:]
    assert [(m["layer"], m["head"]) for m in asked][-1] == (2, 3)
    # the kernel sent one head's data: the request made after the first update was answered
    # "superseded", without data
    kinds = host.kernel.replies["a"][-len(asked):]
    assert kinds.count("head") == 1 and kinds.count("head_superseded") == len(asked) - 1, kinds


def test_an_invalid_update_from_the_page_is_rolled_back_and_shown(host: Host) -> None:
    w = headscope.show_attention(TOKENS, random_attention(2, 3, len(TOKENS)))
    root = host.mount("a", w)
    host.page.evaluate("() => { const m = window.hsModels.a; m.set('layer', -1); m.set('head', 1000000000); m.save_changes(); }")
    expect(root.locator(".hs-status-text")).to_contain_text("rejected update")
    expect(root.locator(".hs-status-text")).to_contain_text("out of range")
    assert (w.layer, w.head) == (0, 0)
    expect(root.locator(".hs-head-label")).to_have_text("layer 0 · head 0")
    assert host.page.evaluate("[window.hsModels.a.get('layer'), window.hsModels.a.get('head')]") == [0, 0]


def test_a_reply_the_view_did_not_ask_for_is_ignored(host: Host) -> None:
    w = headscope.show_attention(TOKENS, random_attention(2, 3, len(TOKENS)))
    root = host.mount("a", w)
    label = root.locator(".hs-pattern-label, .hs-head-label").first.inner_text()
    pixel = host.pixel("a", ".hs-pattern-base", 2, 6)
    # a head reply for another window's request, for another head, with the right run
    host.page.evaluate(
        """() => {
            const m = window.hsModels.a;
            const n = 5;
            const scales = new Float32Array(n).fill(1);
            const values = new Uint8Array(n * (n + 1) / 2).fill(255);
            for (const id of ["other-window-1", 1, null, "not a number"]) {
              m.emit("msg:custom", {type: "head", request_id: id, run_id: m.get("run_id"), layer: 1, head: 2,
                                    seq_len: n, packing: "tril"},
                     [new DataView(scales.buffer), new DataView(values.buffer)]);
            }
        }"""
    )
    assert root.locator(".hs-pattern-label, .hs-head-label").first.inner_text() == label
    assert host.pixel("a", ".hs-pattern-base", 2, 6) == pixel


def test_a_dead_kernel_is_said_and_the_widget_keeps_working_on_what_it_holds(host: Host) -> None:
    w = headscope.show(None, "The cat sat on the mat.")
    root = host.mount("a", w)
    host.page.evaluate("window.hsKill('a')")
    status = root.locator(".hs-status-text")
    expect(status).to_contain_text("Kernel restarted or disconnected: run the cell again")
    assert root.locator(".hs-status").get_attribute("data-kind") == "error"
    for selector in (".hs-prompt-input", ".hs-run", ".hs-probe"):
        assert root.locator(selector).first.is_disabled(), selector
    # a click in the atlas changes nothing (the header and pattern stay together)
    canvas = root.locator(".hs-atlas-canvas")
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] - 4, "y": box["height"] - 4})
    expect(root.locator(".hs-head-label")).to_have_text("layer 0 · head 0")
    # hover still works on the head it holds
    host.page.hover("#slot-a .hs-tok[data-index='3']")
    assert "weight" in host.tooltip("a")
    # and nothing threw (the host fixture asserts no page errors)


def test_prompts_submitted_during_runs_are_never_lost(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    """60 prompts, submitted 0, 20, 50 and 200 ms apart while runs are in flight (each run takes
    at least 60 ms here): every one of them runs, or is replaced and goes into the history."""
    real_run_model = widget_module.run_model

    def slow_run_model(model: Any, prompt: str, **kwargs: Any) -> Any:
        time.sleep(0.06)  # a model that takes a moment, so prompts arrive during runs
        return real_run_model(model, prompt, **kwargs)

    monkeypatch.setattr(widget_module, "run_model", slow_run_model)
    w = headscope.show(None, "start")
    root = host.mount("a", w)
    prompts = [f"p{gap}-{i}" for gap in (0, 20, 50, 200) for i in range(15)]
    host.page.evaluate(
        """async (prompts) => {
            const box = document.querySelector('#slot-a .hs-prompt-input');
            for (const p of prompts) {
              const gap = Number(p.slice(1, p.indexOf('-')));
              box.value = p;
              box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
              if (gap) await new Promise((r) => setTimeout(r, gap));
            }
        }""",
        prompts,
    )
    last = prompts[-1]
    host.page.wait_for_function(
        "(p) => window.hsModels.a.get('prompt') === p && window.hsModels.a.get('status') === 'ready'",
        arg=last,
        timeout=60_000,
    )
    runs = [m for m in host.kernel.received["a"] if m.get("type") == "run"]
    seen = {p for m in runs for p in [m["prompt"], *m["superseded"]]}
    lost = [p for p in prompts if p not in seen]
    assert lost == [], f"{len(lost)} of {len(prompts)} prompts lost: {lost}"
    assert w.prompt == last and w.status == "ready" and w.error == ""
    assert root.locator(".hs-prompt-input").input_value() == last


def test_enter_on_an_empty_prompt_says_why_nothing_ran(host: Host) -> None:
    w = headscope.show(None, "ab ab")
    root = host.mount("a", w)
    box = root.locator(".hs-prompt-input")
    box.fill("   ")
    box.press("Enter")
    note = root.locator(".hs-prompt .hs-note")
    expect(note).to_have_text("Type a prompt first: the box is empty.")
    assert note.get_attribute("role") == "alert"
    assert box.get_attribute("aria-describedby") == note.get_attribute("id")
    assert not [m for m in host.kernel.received["a"] if m.get("type") == "run"]
    box.fill("ab")  # typing clears the warning
    expect(note).to_have_text("Enter runs, Shift+Enter adds a line.")


def test_the_clean_prompt_follows_new_prompts_until_the_user_types_one(host: Host) -> None:
    w = headscope.show(None, "ab ab")
    root = host.mount("a", w)
    root.locator(".hs-patch > summary").click()
    clean = root.locator(".hs-patch-clean")
    expect(clean).to_have_value("ab ab")
    w.prompt = "cd cd"  # from Python
    host.page.evaluate("(s) => window.hsModels.a.applyState(s)", {"prompt": "cd cd", "run_id": w.run_id})
    expect(clean).to_have_value("cd cd")
    clean.fill("my own clean prompt")
    w.prompt = "ef ef"
    host.page.evaluate("(s) => window.hsModels.a.applyState(s)", {"prompt": "ef ef", "run_id": w.run_id})
    expect(root.locator(".hs-head-label")).to_be_visible()
    assert clean.input_value() == "my own clean prompt"
    assert w.prompt == "ef ef"  # and patching never replaces the widget's prompt (see test_intervene)


def test_the_probe_and_the_top_heads_list_name_their_measures(host: Host) -> None:
    w = headscope.show(None, "ab ab")
    root = host.mount("a", w)
    root.locator(".hs-probe").click()
    expect(root.locator(".hs-score-note")).to_have_text("Top heads by induction on the tokens shown:", timeout=30_000)
    assert "induction score" in w.note and "over the 4 probe sequences" in w.note

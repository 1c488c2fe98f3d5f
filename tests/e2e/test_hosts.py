"""Tier A stand-ins for hosts beyond JupyterLab: a widget manager that drops binary buffers (in
the state, in messages, or both), and views rendered late, twice, or detached and attached again."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import headscope
from test_host_page import TOKENS, Host, host, parse_pair, random_attention, wire_state  # noqa: F401

pytestmark = pytest.mark.browser

HINT = "text transport: this host drops binary data"


def mount_with(host: Host, widget_id: str, widget: Any, **options: Any) -> Any:
    host.kernel.add(widget_id, widget)
    host.page.evaluate("([id, state, options]) => window.hsMount(id, state, options)", [widget_id, wire_state(widget), options])
    host.wait_loaded(widget_id)
    return host.page.locator(f"#slot-{widget_id} .headscope")


def check_hover(host: Host, slot: str, attn: np.ndarray, layer: int, head: int, query: int = 5) -> None:
    host.page.hover(f"#slot-{slot} .hs-tok[data-index='{query}']")
    tip = host.page.locator(f"#slot-{slot} .hs-tooltip")
    tip.wait_for(state="visible")
    q, key, shown = parse_pair(str(tip.inner_text()))
    assert q == query and key == int(np.argmax(attn[layer, head, query]))
    assert abs(shown - attn[layer, head, query, key]) <= 1 / 255


@pytest.mark.parametrize("drop", [True, "state", "messages"])
def test_a_host_that_drops_buffers_switches_to_the_text_transport(host: Host, drop: Any) -> None:
    attn = random_attention(2, 3, len(TOKENS), seed=4)
    w = headscope.show_attention(TOKENS, attn)
    root = mount_with(host, "a", w, dropBuffers=drop)
    assert w.transport == "text"
    asked = [m for m in host.kernel.received["a"] if m["type"] == "transport"]
    assert len(asked) == 1 and asked[0]["mode"] == "text"
    # nothing else changes for the user: the head is drawn, hover gives its exact weights
    check_hover(host, "a", attn, 0, 0)
    status = root.locator(".hs-status")
    assert status.get_attribute("title") == HINT and status.get_attribute("data-transport") == "text"
    # the atlas arrived as text too: it is drawn (not the empty background)
    atlas = host.pixel("a", ".hs-atlas-canvas", 30, 22)
    assert atlas[3] == 255 and atlas[:3] != [0, 0, 0]
    # another head, from the keyboard, comes as text
    root.locator(".hs-atlas-canvas").focus()
    host.page.keyboard.press("ArrowDown")
    host.page.keyboard.press("ArrowRight")
    host.page.wait_for_function("() => window.hsModels.a.get('layer') === 1 && window.hsModels.a.get('head') === 1")
    host.wait_loaded("a")
    check_hover(host, "a", attn, 1, 1, query=6)
    heads = [r for r in host.kernel.replies["a"] if r == "head"]
    assert len(heads) >= 2
    assert root.locator(".hs-status").get_attribute("data-kind") != "error"


def test_a_host_that_keeps_buffers_stays_binary(host: Host) -> None:
    attn = random_attention(1, 2, len(TOKENS), seed=2)
    w = headscope.show_attention(TOKENS, attn)
    root = mount_with(host, "a", w)
    check_hover(host, "a", attn, 0, 0)
    assert w.transport == "binary" and w.text_data == {}
    assert not [m for m in host.kernel.received["a"] if m["type"] == "transport"]
    assert root.locator(".hs-status").get_attribute("title") in (None, "")


def test_views_rendered_late_twice_and_attached_again(host: Host) -> None:
    attn = random_attention(2, 3, len(TOKENS), seed=6)
    w = headscope.show_attention(TOKENS, attn)
    host.kernel.add("a", w)
    host.page.evaluate("([id, state]) => window.hsCreate(id, state)", ["a", wire_state(w)])
    # the kernel moves on before any view exists (w.layer, w.head = 1, 2 from Python)
    w.layer, w.head = 1, 2
    host.page.evaluate("(s) => window.hsModels.a.applyState(s)", {"layer": 1, "head": 2})
    host.page.evaluate("() => window.hsRender('a', 'slot-a')")
    host.wait_loaded("a")
    assert host.page.locator("#slot-a .hs-head-label").text_content() == "layer 1 · head 2"
    check_hover(host, "a", attn, 1, 2)

    # a second view of the same model: drawn from the head the first one fetched
    n_requests = len(host.kernel.received["a"])
    host.page.evaluate("() => window.hsRender('a', 'slot-b')")
    host.wait_loaded("b")
    check_hover(host, "b", attn, 1, 2, query=6)
    assert len(host.kernel.received["a"]) - n_requests <= 2  # its view-open message, at most a head

    # the first view's output is detached and attached again (a re-rendered output area)
    host.page.evaluate(
        """() => {
            const slot = document.getElementById('slot-a');
            const parent = slot.parentElement;
            slot.remove();
            parent.appendChild(slot);
        }"""
    )
    host.wait_loaded("a")
    check_hover(host, "a", attn, 1, 2, query=7)
    # both views follow a switch made in one of them
    host.page.locator("#slot-b .hs-atlas-canvas").focus()
    host.page.keyboard.press("ArrowLeft")
    host.page.wait_for_function("() => window.hsModels.a.get('head') === 1")
    host.wait_loaded("a")
    host.wait_loaded("b")
    assert host.page.locator("#slot-a .hs-head-label").text_content() == "layer 1 · head 1"
    check_hover(host, "a", attn, 1, 1)


def test_a_narrow_side_panel_keeps_the_score_picker_readable(host: Host) -> None:
    """A narrow host (JupyterLab's side bar at its default width) puts the probe button under
    the score picker rather than squeezing the picker's text."""
    w = headscope.show(None, "The cat sat on the mat. The cat sat on the mat.")
    host.page.evaluate("() => { const s = document.createElement('style'); s.textContent = '#slot-a { width: 260px; }'; document.head.append(s); }")
    root = mount_with(host, "a", w)
    select, probe = root.locator(".hs-score-select"), root.locator(".hs-probe")
    s, p = select.bounding_box(), probe.bounding_box()
    assert s is not None and p is not None
    font = float(select.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    assert s["width"] >= 11 * font - 1, s
    overlap_x = p["x"] < s["x"] + s["width"] and s["x"] < p["x"] + p["width"]
    overlap_y = p["y"] < s["y"] + s["height"] and s["y"] < p["y"] + p["height"]
    assert not (overlap_x and overlap_y), (s, p)
    assert select.evaluate("e => e.scrollWidth <= e.clientWidth + 1")

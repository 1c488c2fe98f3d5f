"""Tier A: the "What the head writes" panel (OV lists and direct logit attribution) on the host
page, answered by the real Python widget of the built-in model."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from test_host_page import TOKENS, Host, host, random_attention  # noqa: F401  (host: the fixture)

pytestmark = pytest.mark.browser

PROMPT = "The cat sat on the mat. The cat sat on the mat."


def signed(value: float) -> str:
    return f"{'+' if value >= 0 else '−'}{abs(value):.3f}"


def rows(root: Any, selector: str) -> list[tuple[str, str]]:
    items = root.locator(selector)
    return [
        (str(items.nth(i).get_attribute("data-token")), items.nth(i).locator(".hs-ov-value").inner_text())
        for i in range(items.count())
    ]


def test_locking_a_token_shows_its_ov_lists_and_the_dla(host: Host) -> None:  # noqa: F811
    import headscope

    w = headscope.show(None, PROMPT, layer=1, head=0)
    root = host.mount("a", w, ov_unavailable=w.ov_unavailable)
    panel = root.locator(".hs-ov")
    # opened from the keyboard: the summary is focusable, Enter opens it
    panel.locator("summary").focus()
    host.page.keyboard.press("Enter")
    expect(panel.locator(".hs-ov-note")).to_contain_text("Click a token")
    assert not any(m["type"] in ("request_ov", "request_dla") for m in host.kernel.received["a"])

    host.page.hover("#slot-a .hs-tok[data-index='9']")  # a hover alone asks nothing
    host.page.wait_for_timeout(100)
    assert not any(m["type"] == "request_ov" for m in host.kernel.received["a"])
    host.page.click("#slot-a .hs-tok[data-index='9']")  # lock " " … token 9
    expect(panel.locator(".hs-ov-raised li")).to_have_count(10)
    position = 9
    expected = headscope.ov_top_tokens(None, 1, 0, int(w.run_result.token_ids[position]), k=10)
    assert rows(panel, ".hs-ov-raised li") == [(s, signed(v)) for s, v in expected.raised]
    assert rows(panel, ".hs-ov-lowered li") == [(s, signed(v)) for s, v in expected.lowered]
    expect(panel.locator(".hs-ov-title").first).to_contain_text(f"token {position}")

    dla = headscope.direct_logit_attribution(None, PROMPT, position)
    expect(panel.locator(".hs-dla-entry")).to_have_count(1)
    assert rows(panel, ".hs-dla-entry") == [(dla.predicted, signed(float(dla.values[0, 1, 0])))]
    rank = 1 + int((dla.values[0] > dla.values[0, 1, 0]).sum())
    expect(panel.locator(".hs-dla-rank")).to_have_text(f"rank {rank} of 16 heads · logit {dla.logits[0]:.3f}")

    # a typed string of two tokens: the kernel's error next to the input; the DLA shown stays
    box = panel.locator(".hs-dla-input")
    box.fill("xy")
    box.press("Enter")
    error = panel.locator(".hs-dla-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("ValueError: the token 'xy' is 2 tokens ('x', 'y'), not one token; name a single token (mind the leading space) or pass its id")
    expect(panel.locator(".hs-dla-entry")).to_have_count(1)
    # one token: it is attributed too, and the error goes
    box.fill("x")
    panel.locator(".hs-dla-submit").click()
    expect(panel.locator(".hs-dla-entry")).to_have_count(2)
    expect(error).to_be_hidden()
    with_x = headscope.direct_logit_attribution(None, PROMPT, position, ["x"])
    assert rows(panel, ".hs-dla-entry")[1] == ("x", signed(float(with_x.values[1, 1, 0])))

    # dark theme (as JupyterLab's): the lists follow the stylesheet's colours, light on dark
    def brightness(selector: str, prop: str) -> float:
        css = panel.locator(selector).first.evaluate(f"e => getComputedStyle(e).{prop}")
        return sum(int(v) for v in re.findall(r"\d+", css)[:3]) / 3

    assert brightness(".hs-ov-value", "color") < 80  # dark text on the light theme
    host.page.evaluate("() => document.body.setAttribute('data-jp-theme-light', 'false')")
    host.page.wait_for_function(
        """() => {
            const c = getComputedStyle(document.querySelector('#slot-a .hs-ov-value')).color;
            return c.match(/\\d+/g).slice(0, 3).reduce((a, v) => a + Number(v), 0) / 3 > 180;
        }"""
    )
    assert brightness(".hs-dla-input", "backgroundColor") < 80
    host.page.evaluate("() => document.body.setAttribute('data-jp-theme-light', 'true')")

    # another head: both parts follow, for the same locked token and typed token
    w.head = 3
    host.page.evaluate("() => { const m = window.hsModels.a; m.set('head', 3); }")
    other = headscope.ov_top_tokens(None, 1, 3, int(w.run_result.token_ids[position]), k=10)
    expect(panel.locator(".hs-ov-raised li").first).to_have_attribute("data-token", other.raised[0][0])
    expect(panel.locator(".hs-ov-raised li").first.locator(".hs-ov-value")).to_have_text(signed(other.raised[0][1]))
    expect(panel.locator(".hs-dla-entry").nth(1).locator(".hs-ov-value")).to_have_text(signed(float(with_x.values[1, 1, 3])))


def test_without_weights_the_panel_and_the_picker_say_why(host: Host) -> None:  # noqa: F811
    import headscope

    w = headscope.show_attention(TOKENS, random_attention(1, 2, len(TOKENS)))
    root = host.mount("p", w, ov_unavailable=w.ov_unavailable)
    expect(root.locator(".hs-copying-note")).to_have_text(f"Copying score unavailable: {w.ov_unavailable}")
    options = root.locator(".hs-score-select option").all_text_contents()
    assert "copying" not in options
    root.locator(".hs-ov summary").click()
    expect(root.locator(".hs-ov-note")).to_have_text(f"Unavailable: {w.ov_unavailable}")
    host.page.click("#slot-p .hs-tok[data-index='3']")
    host.page.wait_for_timeout(100)
    assert not any(m["type"] in ("request_ov", "request_dla") for m in host.kernel.received["p"])
    expect(root.locator(".hs-dla-input")).to_be_disabled()


def test_copying_is_in_the_score_picker_of_a_model(host: Host) -> None:  # noqa: F811
    import headscope

    w = headscope.show(None, "ab ab")
    root = host.mount("a", w, ov_unavailable=w.ov_unavailable)
    assert "copying" in root.locator(".hs-score-select option").all_text_contents()
    expect(root.locator(".hs-copying-note")).to_have_count(0)
    root.locator(".hs-score-select").select_option("copying")
    expect(root.locator(".hs-scores .hs-top-head-btn").first).to_have_text(
        f"L1 H0 · {float(headscope.copying_scores(None)[1, 0]):.2f}"
    )
    assert np.argmax(headscope.copying_scores(None)) == 8  # layer 1, head 0

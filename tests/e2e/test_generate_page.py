"""Tier A: generation from the side panel, and the "hide BOS" display option, on the host page
(``test_host_page``: the built bundle, a fake anywidget model, the real Python widget behind it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from test_host_page import Host, host, parse_pair, random_attention  # noqa: F401  (host: the fixture)

pytestmark = pytest.mark.browser


def hover_cell(root: Any, n: int, q: int, k: int) -> None:
    overlay = root.locator(".hs-pattern-overlay")
    box = overlay.bounding_box()
    overlay.hover(position={"x": (k + 0.5) * box["width"] / n, "y": (q + 0.5) * box["height"] / n})


def test_generate_appends_marked_tokens_and_the_views_cover_them(host: Host) -> None:
    import headscope

    w = headscope.show(None, "ab ab")
    root = host.mount("a", w)
    n = len(w.tokens)
    assert root.locator(".hs-tok.hs-tok-generated").count() == 0
    count = root.locator(".hs-generate-count")
    assert count.input_value() == "20" and count.get_attribute("type") == "number"
    assert root.locator(f"label[for='{count.get_attribute('id')}']").inner_text() == "New tokens"
    count.fill("5")
    root.locator(".hs-generate-run").click()
    host.page.wait_for_function(f"() => document.querySelectorAll('#slot-a .hs-tok').length === {n + 5}")
    assert {"type": "generate", "max_new_tokens": 5} in host.kernel.received["a"]
    assert len(w.tokens) == n + 5 and w.generated_from == n
    assert root.locator(".hs-tok").all_text_contents() == w.tokens
    generated = root.locator(".hs-tok.hs-tok-generated")
    assert generated.evaluate_all("els => els.map(e => Number(e.dataset.index))") == list(range(n, n + 5))
    assert generated.evaluate_all("els => els.map(e => e.getAttribute('aria-description'))") == ["generated"] * 5
    assert generated.first.evaluate("e => getComputedStyle(e).fontStyle") == "italic"
    plain = root.locator(f".hs-tok[data-index='{n - 1}']")
    assert plain.evaluate("e => getComputedStyle(e).fontStyle") == "normal" and plain.get_attribute("aria-description") is None
    # the prompt box keeps the prompt; the header and the pattern cover the whole sequence
    assert root.locator(".hs-prompt-input").input_value() == "ab ab"
    expect(root.locator(".hs-seq")).to_have_text(f"{n + 5} tokens")
    host.wait_loaded("a")
    size = host.page.eval_on_selector("#slot-a .hs-pattern-base", "c => [c.width, c.height]")
    assert size == [n + 5, n + 5]
    expect(root.locator(".hs-status-text")).to_have_text("5 generated tokens after the prompt (greedy)")
    head = w.run_result.head(w.layer, w.head)
    q, k = n + 4, n + 1
    hover_cell(root, n + 5, q, k)
    tip = host.tooltip("a")
    assert (parse_pair(tip)[:2]) == (q, k)
    assert f"query {q} " in tip and tip.count("(generated)") == 2, tip
    assert f"weight {head[q, k]:.3f}" in tip
    hover_cell(root, n + 5, q, 1)
    tip = host.tooltip("a")
    assert tip.count("(generated)") == 1 and f"weight {head[q, 1]:.3f}" in tip
    # a new prompt clears the generated part
    root.locator(".hs-prompt-input").fill("abc")
    root.locator(".hs-run").click()
    host.page.wait_for_function("() => document.querySelectorAll('#slot-a .hs-tok').length === 4")
    assert root.locator(".hs-tok.hs-tok-generated").count() == 0 and w.generated_from == -1


def test_a_bad_count_shows_an_error_next_to_the_button(host: Host) -> None:
    import headscope

    w = headscope.show(None, "ab ab")
    root = host.mount("a", w)
    n = len(w.tokens)
    count = root.locator(".hs-generate-count")
    error = root.locator(".hs-generate .hs-action-error")
    assert error.is_hidden()
    count.fill("0")
    root.locator(".hs-generate-run").click()
    expect(error).to_have_text("ValueError: max_new_tokens must be at least 1, got 0")
    assert error.get_attribute("role") == "alert"
    assert root.locator(".hs-prompt .hs-action-error").first.is_hidden()  # not under the Run button
    assert root.locator(".hs-tok").count() == n
    # past the model's context (256 tokens): the message says how many fit
    count.fill("300")
    count.press("Enter")
    expect(error).to_contain_text(f"at most {256 - n} more fit")
    assert root.locator(".hs-tok").count() == n
    # a good count works, and the error goes
    count.fill("2")
    root.locator(".hs-generate-run").click()
    host.page.wait_for_function(f"() => document.querySelectorAll('#slot-a .hs-tok').length === {n + 2}")
    expect(error).to_be_hidden()


def test_hide_bos_renormalizes_the_pattern_and_the_tooltips(host: Host) -> None:
    import headscope

    precomputed = host.mount("p", headscope.show_attention(["<bos>", "a", "b"], random_attention(1, 1, 3)))
    assert precomputed.locator(".hs-hide-bos").is_disabled()

    w = headscope.show(None, "The cat sat. The cat sat.")
    run = w.run_result
    # the head that puts most weight on BOS (without putting all of it there)
    mass = np.array([[run.head(l, h)[1:, 0].mean() for h in range(run.n_heads)] for l in range(run.n_layers)])
    mass[mass > 0.97] = 0
    layer, head = (int(i) for i in np.unravel_index(np.argmax(mass), mass.shape))
    w.layer, w.head = layer, head
    root = host.mount("a", w)
    n = len(w.tokens)
    raw = run.head(layer, head).astype(np.float64)
    hidden = raw.copy()
    hidden[:, 0] = 0
    sums = hidden.sum(1, keepdims=True)
    hidden = np.divide(hidden, sums, out=np.zeros_like(hidden), where=sums > 0)

    # cells whose value changes and is not on a rounding boundary of the 3 shown decimals
    def clear(x: float) -> bool:
        return abs((x * 1000) % 1 - 0.5) < 0.45

    cells = [(q, k) for q in range(2, n) for k in range(1, q + 1) if hidden[q, k] - raw[q, k] > 0.01 and clear(hidden[q, k]) and clear(raw[q, k])]
    assert len(cells) >= 3, cells
    cells.sort(key=lambda c: -raw[c[0], 0])  # the first: a row with much weight on BOS
    cells = cells[:: max(1, len(cells) // 4)][:4]
    assert raw[cells[0][0], 0] > 0.3
    box = root.locator(".hs-hide-bos")
    assert box.is_enabled() and not box.is_checked()
    assert root.locator(f"label[for='{box.get_attribute('id')}']").inner_text().strip() == "Hide BOS (renormalize rows)"
    q0, k0 = cells[0]
    hover_cell(root, n, q0, k0)
    assert f"weight {raw[q0, k0]:.3f}\n" in host.tooltip("a") + "\n"
    bos_before = host.pixel("a", ".hs-pattern-base", 0, q0)
    assert not np.allclose(bos_before[:3], host.legend_color("a", 0.0)[:3], atol=6)

    # keyboard: focus the checkbox, Space switches it
    box.focus()
    host.page.keyboard.press("Space")
    assert box.is_checked()
    hint = root.locator(".hs-display-hint")
    expect(hint).to_contain_text("atlas still shows raw attention")
    for q, k in cells:
        hover_cell(root, n, q, k)
        tip = host.tooltip("a")
        assert parse_pair(tip)[:2] == (q, k)
        assert f"weight {hidden[q, k]:.3f} (BOS hidden, row renormalized)" in tip, (q, k, tip, hidden[q, k])
    hover_cell(root, n, q0, 0)
    assert "weight 0.000 (BOS hidden" in host.tooltip("a")
    # key 0 is painted with weight 0's colour; the row sums to 1 over the other keys
    bos_after = host.pixel("a", ".hs-pattern-base", 0, q0)
    assert np.allclose(bos_after[:3], host.legend_color("a", 0.0)[:3], atol=6), bos_after
    # the token view follows: lock query q0, hover key k0
    host.page.mouse.move(0, 0)
    host.page.click(f"#slot-a .hs-tok[data-index='{q0}']")
    host.page.hover(f"#slot-a .hs-tok[data-index='{k0}']")
    assert f"weight {hidden[q0, k0]:.3f} (BOS hidden, row renormalized)" in host.tooltip("a")

    # off again: the raw values
    box.click()
    assert not box.is_checked() and hint.is_hidden()
    hover_cell(root, n, q0, k0)
    tip = host.tooltip("a")
    assert f"weight {raw[q0, k0]:.3f}" in tip and "BOS hidden" not in tip

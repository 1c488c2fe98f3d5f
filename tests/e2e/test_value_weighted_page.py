"""Tier A: the "Value-weighted" display option on the host page (``test_host_page``: the built
bundle, a fake anywidget model, the real Python widget behind it). The expected numbers are
computed in Python from the run (``run.head(..., value_weighted=True)``)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from test_host_page import Host, host, random_attention  # noqa: F401  (host: the fixture)

pytestmark = pytest.mark.browser


def hover_cell(root: Any, n: int, q: int, k: int) -> None:
    overlay = root.locator(".hs-pattern-overlay")
    box = overlay.bounding_box()
    overlay.hover(position={"x": (k + 0.5) * box["width"] / n, "y": (q + 0.5) * box["height"] / n})


def atlas_pixels(host: Host, widget_id: str) -> np.ndarray:
    data = host.page.evaluate(
        """(id) => {
            const c = document.querySelector(`#slot-${id} .hs-atlas-canvas`);
            return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
        }""",
        widget_id,
    )
    return np.asarray(data, dtype=np.int16)


def clear(x: float) -> bool:
    """Not on a rounding boundary of the 3 decimals a tooltip shows."""
    return abs((x * 1000) % 1 - 0.5) < 0.45


@pytest.mark.parametrize("transport", ["binary", "text"])
def test_value_weighted_changes_the_tooltips_and_the_atlas_and_back(host: Host, transport: str) -> None:
    import headscope

    w = headscope.show(None, "The cat sat on the mat. The cat sat on the")
    if transport == "text":
        w.use_text_transport()
    run = w.run_result
    norms = run.value_norms()
    # the head whose weighting moves its weights most
    moved = np.array([[np.abs(run.head(l, h, value_weighted=True) - run.head(l, h)).max() for h in range(run.n_heads)]
                      for l in range(run.n_layers)])
    layer, head = (int(i) for i in np.unravel_index(np.argmax(moved), moved.shape))
    w.layer, w.head = layer, head
    root = host.mount("a", w)
    n = len(w.tokens)
    raw = run.head(layer, head).astype(np.float64)
    weighted = raw * norms[layer, head][None, :].astype(np.float64)
    weighted /= weighted.sum(1, keepdims=True)
    np.testing.assert_allclose(weighted, run.head(layer, head, value_weighted=True), atol=1e-6)
    cells = [(q, k) for q in range(1, n) for k in range(q + 1)
             if abs(weighted[q, k] - raw[q, k]) > 0.02 and clear(weighted[q, k]) and clear(raw[q, k])]
    assert len(cells) >= 3, cells
    cells = cells[:: max(1, len(cells) // 4)][:4]

    box = root.locator(".hs-value-weighted-input")
    assert box.get_attribute("type") == "checkbox" and box.is_enabled() and not box.is_checked()
    assert root.locator(f"label[for='{box.get_attribute('id')}']").inner_text().strip() == "Value-weighted"
    q0, k0 = cells[0]
    hover_cell(root, n, q0, k0)
    tip = host.tooltip("a")
    assert f"\nweight {raw[q0, k0]:.3f}" in tip and "value-weighted" not in tip, tip
    before = atlas_pixels(host, "a")
    assert w.value_weighted is False and w.value_norms == b""

    # keyboard: focus the checkbox, Space switches it on; the kernel computes, the views follow
    box.focus()
    host.page.keyboard.press("Space")
    host.page.wait_for_function("() => document.querySelector('#slot-a .hs-value-weighted').getAttribute('aria-busy') === 'false'")
    assert box.is_checked() and w.value_weighted is True
    assert w.atlas_value_weighted_run_id == w.run_id and w.value_norms_layer == layer
    host.wait_loaded("a")
    for q, k in cells:
        hover_cell(root, n, q, k)
        tip = host.tooltip("a")
        m = re.search(r"query (\d+) .* key (\d+) .*\nvalue-weighted (\d\.\d{3}) · weight (\d\.\d{3})", tip, re.S)
        assert m, tip
        assert (int(m.group(1)), int(m.group(2))) == (q, k)
        assert m.group(3) == f"{weighted[q, k]:.3f}" and m.group(4) == f"{raw[q, k]:.3f}", (q, k, tip)
    after = atlas_pixels(host, "a")
    assert np.abs(after - before).max() > 20  # the value-weighted thumbnails are drawn
    canvas = root.locator(".hs-atlas-canvas")
    canvas.hover(position={"x": 30, "y": 22})
    assert "thumbnail value-weighted" in host.tooltip("a")

    # off again (a click this time): raw weights and the raw atlas come back
    box.click()
    expect(box).not_to_be_checked()
    host.page.wait_for_function("() => window.hsModels.a.get('value_weighted') === false")
    assert w.value_weighted is False
    hover_cell(root, n, q0, k0)
    tip = host.tooltip("a")
    assert f"\nweight {raw[q0, k0]:.3f}" in tip and "value-weighted" not in tip, tip
    assert np.array_equal(atlas_pixels(host, "a"), before)


def test_precomputed_attention_disables_the_option_and_says_why(host: Host) -> None:
    import headscope

    root = host.mount("p", headscope.show_attention(["a", "b", "c"], random_attention(1, 2, 3)))
    box = root.locator(".hs-value-weighted-input")
    assert box.is_disabled() and not box.is_checked()
    hint = root.locator(".hs-value-weighted-hint")
    expect(hint).to_contain_text("Unavailable: precomputed attention has no model")

"""Tier A, at scale: an atlas of 32 x 32 heads, hover that restyles only the chips that change,
and a switch back to a head painted from the kept pixels.

Every check here is functional: the tests wait for state (the model's traits, the tooltip's text,
the view's attributes), never for time, and measure nothing (timings are in docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from test_host_page import TOLERANCE, Host, close_color, host, parse_pair, random_attention  # noqa: F401

pytestmark = pytest.mark.browser

#: the atlas's smallest cell and its gap at that size, CSS px (js/renderers/grid.ts)
MIN_CELL, GAP = 12, 1
LEFT, TOP = 26, 18


def atlas_geometry(host: Host, widget_id: str) -> dict[str, Any]:
    return dict(
        host.page.evaluate(
            """(id) => {
                const box = document.querySelector(`#slot-${id} .hs-atlas`);
                const canvas = box.querySelector('.hs-atlas-canvas');
                const rect = (el) => { const r = el.getBoundingClientRect(); return {left: r.left, top: r.top, width: r.width, height: r.height}; };
                const shown = (sel) => getComputedStyle(box.querySelector(sel)).display !== 'none';
                return {
                    box: rect(box), canvas: rect(canvas), heads: rect(box.querySelector('.hs-atlas-heads')),
                    layers: rect(box.querySelector('.hs-atlas-layers')),
                    clientWidth: box.clientWidth, clientHeight: box.clientHeight,
                    scrollWidth: box.scrollWidth, scrollHeight: box.scrollHeight,
                    strips: shown('.hs-atlas-heads') && shown('.hs-atlas-layers') && shown('.hs-atlas-corner'),
                };
            }""",
            widget_id,
        )
    )


def wait_selected(host: Host, widget_id: str, layer: int, head: int) -> None:
    host.page.wait_for_function(
        "([id, l, h]) => window.hsModels[id].get('layer') === l && window.hsModels[id].get('head') === h",
        arg=[widget_id, layer, head],
    )


def selected_in_view(host: Host, widget_id: str, layer: int, head: int, pitch: float) -> None:
    """Wait until cell (layer, head) lies inside the atlas's box, clear of the label strips."""
    host.page.wait_for_function(
        """([id, l, h, pitch, left, top]) => {
            const box = document.querySelector(`#slot-${id} .hs-atlas`);
            const canvas = box.querySelector('.hs-atlas-canvas').getBoundingClientRect();
            const port = box.getBoundingClientRect();
            const x = canvas.left + left + h * pitch, y = canvas.top + top + l * pitch;
            return x >= port.left + left && x + pitch <= port.left + box.clientWidth
                && y >= port.top + top && y + pitch <= port.top + box.clientHeight;
        }""",
        arg=[widget_id, layer, head, pitch, LEFT, TOP],
    )


def test_atlas_of_32_by_32_heads_scrolls_keeps_its_labels_and_follows_clicks_and_keys(host: Host) -> None:
    import headscope

    n = 48
    tokens = [f"t{i}" for i in range(n)]
    attn = random_attention(32, 32, n, seed=4)
    attn[30, 29] = np.eye(n, dtype=np.float32)  # one head that is a thin diagonal
    w = headscope.show_attention(tokens, attn)
    assert w.thumb_size <= 38 and len(w.atlas) <= 1_500_000  # the kernel sizes the atlas down
    root = host.mount("a", w)

    g = atlas_geometry(host, "a")
    pitch = (g["canvas"]["width"] - LEFT) / 32
    assert pitch == MIN_CELL + GAP, g  # cells at their smallest, not squeezed into the panel
    assert g["scrollWidth"] > g["clientWidth"] and g["scrollHeight"] > g["clientHeight"], g
    assert g["strips"], "the label strips show while the atlas scrolls"

    # legible: the 38-px diagonal drawn at 12 px is still the colour of weight 1 along the cell's
    # diagonal (thumbnails are max-pooled to the cell, not averaged by the canvas)
    dark = host.legend_color("a", 1.0)
    x0, y0 = LEFT + 29 * pitch, TOP + 30 * pitch
    for i in range(1, MIN_CELL - 1):
        got = host.pixel("a", ".hs-atlas-canvas", int(x0 + i), int(y0 + i))
        assert close_color(got, dark, tol=12), (i, got, dark)

    # a click on a head in view selects it, in the page and in the kernel
    canvas = root.locator(".hs-atlas-canvas")
    canvas.click(position={"x": LEFT + 3.5 * pitch, "y": TOP + 2.5 * pitch})
    wait_selected(host, "a", 2, 3)
    assert (w.layer, w.head) == (2, 3)
    host.wait_loaded("a")

    # arrow keys walk to layer 30, head 29, far outside the first view; it scrolls into view
    canvas.focus()
    layer, head = 2, 3
    for key, target in [("ArrowDown", (30, 3)), ("ArrowRight", (30, 29))]:
        while (layer, head) != target:
            host.page.keyboard.press(key)
            layer, head = (layer + 1, head) if key == "ArrowDown" else (layer, head + 1)
            wait_selected(host, "a", layer, head)
    assert (w.layer, w.head) == (30, 29)
    expected_label = "layer 30 · head 29"
    host.page.wait_for_function(
        "(label) => document.querySelector('#slot-a .hs-head-label').textContent === label", arg=expected_label
    )
    selected_in_view(host, "a", 30, 29, pitch)
    assert "Selected: layer 30, head 29." in (canvas.get_attribute("aria-label") or "")
    g = atlas_geometry(host, "a")
    # scrolled on both axes, the head numbers stay at the top of the box and the layer numbers at its left
    assert g["canvas"]["left"] < g["box"]["left"] and g["canvas"]["top"] < g["box"]["top"], g
    assert abs(g["heads"]["top"] - g["box"]["top"]) <= 1 and abs(g["layers"]["left"] - g["box"]["left"]) <= 1, g

    # back up and left: the selection scrolls back into view, and the kernel follows
    for _ in range(3):
        host.page.keyboard.press("ArrowLeft")
        head -= 1
        wait_selected(host, "a", layer, head)
    for _ in range(28):
        host.page.keyboard.press("ArrowUp")
        layer -= 1
        wait_selected(host, "a", layer, head)
    assert (w.layer, w.head) == (2, 26)
    selected_in_view(host, "a", 2, 26, pitch)
    host.wait_loaded("a")
    # the diagonal head shown in full: its pattern is the identity
    assert close_color(host.pixel("a", ".hs-pattern-base", 5, 5), host.legend_color("a", float(attn[2, 26, 5, 5])))


def chip_styles(host: Host, widget_id: str) -> list[str]:
    return list(
        host.page.eval_on_selector_all(
            f"#slot-{widget_id} .hs-tok", "els => els.map(e => e.style.backgroundColor + '|' + e.style.color)"
        )
    )


def hover_cell(host: Host, widget_id: str, n: int, query: int, key: int) -> None:
    overlay = host.page.locator(f"#slot-{widget_id} .hs-pattern-overlay")
    box = overlay.bounding_box()
    overlay.hover(position={"x": (key + 0.5) * box["width"] / n, "y": (query + 0.5) * box["height"] / n})
    host.page.wait_for_function(
        "([id, q]) => { const t = document.querySelector(`#slot-${id} .hs-tooltip`); return !t.hidden && t.textContent.startsWith(`query ${q} `); }",
        arg=[widget_id, query],
    )


def test_a_hover_restyles_only_the_chips_whose_colour_changes(host: Host) -> None:
    import headscope

    n = 96
    tokens = [f"t{i}" for i in range(n)]
    attn = random_attention(1, 1, n, seed=9)
    host.mount("a", headscope.show_attention(tokens, attn))
    hover_cell(host, "a", n, 60, 5)  # query 60: chips 0…60 coloured by its row
    before = chip_styles(host, "a")
    assert sum(1 for s in before if s != "|") == 61
    # watch the chips: style mutations (what the page sees change), and every chip whose style the
    # widget touches at all (writing a colour a chip has already changes nothing the page sees, but
    # is work all the same)
    host.page.evaluate(
        """() => {
            const chips = [...document.querySelectorAll('#slot-a .hs-tok')];
            window.__restyled = new Set();
            window.__written = new Set();
            window.__chipObserver = new MutationObserver((records) => {
                for (const r of records) window.__restyled.add(chips.indexOf(r.target));
            });
            window.__chipObserver.observe(document.querySelector('#slot-a .hs-tokens'),
                { subtree: true, attributes: true, attributeFilter: ['style'] });
            chips.forEach((chip, i) => {
                const style = chip.style;
                Object.defineProperty(chip, 'style', { configurable: true, get() { window.__written.add(i); return style; } });
            });
            window.__restoreStyle = () => chips.forEach((chip) => delete chip.style);
        }"""
    )
    hover_cell(host, "a", n, 70, 5)  # query 70: chips 0…70
    restyled, written = host.page.evaluate(
        """() => {
            const chips = [...document.querySelectorAll('#slot-a .hs-tok')];
            for (const r of window.__chipObserver.takeRecords()) window.__restyled.add(chips.indexOf(r.target));
            window.__chipObserver.disconnect();
            window.__restoreStyle();
            return [[...window.__restyled], [...window.__written]];
        }"""
    )
    after = chip_styles(host, "a")
    changed = {i for i in range(n) if before[i] != after[i]}
    assert set(range(61, 71)) <= changed  # the ten chips the new row reaches
    assert set(restyled) == changed, (sorted(set(restyled) - changed), sorted(changed - set(restyled)))
    assert set(written) == changed, f"chips touched whose colour stayed: {sorted(set(written) - changed)}"
    assert len(changed) < 71, "most chips keep their colour from one row to the next"
    # and the colours are right: each chip is the LUT colour of its weight in row 70
    rows = host.page.eval_on_selector_all("#slot-a .hs-tok", "els => els.map(e => getComputedStyle(e).backgroundColor)")
    for k in (0, 35, 70):
        rgb = [int(v) for v in rows[k].replace("rgb(", "").replace(")", "").split(",")[:3]]
        assert close_color(rgb, host.legend_color("a", float(attn[0, 0, 70, k])), tol=8), (k, rgb)


def test_a_switch_back_to_a_head_is_painted_from_the_kept_pixels(host: Host) -> None:
    import headscope

    n = 32
    tokens = [f"t{i}" for i in range(n)]
    attn = random_attention(2, 2, n, seed=6)
    w = headscope.show_attention(tokens, attn)
    root = host.mount("a", w)
    pattern = root.locator(".hs-pattern")
    assert pattern.get_attribute("data-painted") == "lut"  # the first head: painted through the table
    first = host.pixel("a", ".hs-pattern-base", 3, 20)
    assert close_color(first, host.legend_color("a", float(attn[0, 0, 20, 3])))

    def switch(layer: int, head: int) -> None:
        host.page.evaluate(
            "([l, h]) => { const m = window.hsModels.a; m.set('layer', l); m.set('head', h); m.save_changes(); }",
            [layer, head],
        )
        host.page.wait_for_function(
            "(label) => document.querySelector('#slot-a .hs-head-label').textContent === label",
            arg=f"layer {layer} · head {head}",
        )
        host.wait_loaded("a")

    switch(1, 1)
    assert pattern.get_attribute("data-painted") == "lut"
    requests = len([m for m in host.kernel.received["a"] if m["type"] == "request_head"])
    switch(0, 0)
    assert pattern.get_attribute("data-painted") == "kept"  # the pixels kept from the first paint
    assert len([m for m in host.kernel.received["a"] if m["type"] == "request_head"]) == requests
    assert host.pixel("a", ".hs-pattern-base", 3, 20) == first

    # zoomed in, a kept head fills the window from the same pixels
    root.locator(".hs-zoom-in").click()
    assert host.page.eval_on_selector("#slot-a .hs-pattern-base", "c => c.width") == n // 2
    switch(1, 1)
    assert pattern.get_attribute("data-painted") == "kept"
    x0 = y0 = n // 4  # the zoomed window starts at (8, 8)
    got = host.pixel("a", ".hs-pattern-base", 2, 9)
    assert close_color(got, host.legend_color("a", float(attn[1, 1, y0 + 9, x0 + 2])))
    overlay = root.locator(".hs-pattern-overlay")
    box = overlay.bounding_box()
    overlay.hover(position={"x": 2.5 * box["width"] / (n // 2), "y": 9.5 * box["height"] / (n // 2)})
    query, key, shown = parse_pair(host.tooltip("a"))
    assert (query, key) == (y0 + 9, x0 + 2) and abs(shown - attn[1, 1, query, key]) <= TOLERANCE
    root.locator(".hs-zoom-reset").click()

    # a theme switch paints through the new table, and keeps those pixels from then on
    host.page.evaluate("() => document.body.setAttribute('data-jp-theme-light', 'false')")
    host.page.wait_for_function(
        """() => {
            const c = document.querySelector('#slot-a .hs-pattern-base');
            const [r] = c.getContext('2d').getImageData(n - 1, 0, 1, 1).data;
            return r < 100;
        }""".replace("n - 1", str(n - 1))
    )
    assert pattern.get_attribute("data-painted") == "lut"
    switch(0, 0)
    assert pattern.get_attribute("data-painted") == "lut"
    switch(1, 1)
    assert pattern.get_attribute("data-painted") == "kept"
    assert close_color(host.pixel("a", ".hs-pattern-base", 3, 20), host.legend_color("a", float(attn[1, 1, 20, 3])))

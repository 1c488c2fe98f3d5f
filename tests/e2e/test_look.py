"""The widget's look in a real Chromium: theme palettes, contrast, layout, pattern labels, token
text, tooltip placement and errors next to the control that caused them.

Tier A tests use the host page of ``test_host_page`` (the built bundle with a fake anywidget
model backed by the real Python widget); the JupyterLab test at the end is tier B.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from display import display_token, quote_token
from jupyter_app import JupyterServer, serve, write_notebook
from test_host_page import TOKENS, Host, Kernel, host, random_attention, small_model, structured_attention  # noqa: F401

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"

# --- palettes (js/renderers/lut.ts) ----------------------------------------------------------

STOPS = {
    "light": [(0, "#f8fafc"), (0.2, "#c7d7fe"), (0.45, "#7c8cf6"), (0.7, "#4338ca"), (1, "#1e1457")],
    "dark": [(0, "#161b26"), (0.25, "#33337a"), (0.5, "#7c3aed"), (0.75, "#e879f9"), (1, "#fdf2ff")],
}
DIVERGING = {
    "light": [(0, "#1d4ed8"), (0.25, "#93b4f5"), (0.5, "#f8fafc"), (0.75, "#f4a3a3"), (1, "#b91c1c")],
    "dark": [(0, "#60a5fa"), (0.25, "#2b4a80"), (0.5, "#161b26"), (0.75, "#8a3340"), (1, "#fca5a5")],
}


def build_lut(stops: list[tuple[float, str]]) -> list[tuple[int, int, int]]:
    rgb = [tuple(int(h[i : i + 2], 16) for i in (1, 3, 5)) for _, h in stops]
    out = []
    seg = 0
    for i in range(256):
        t = i / 255
        while seg < len(stops) - 2 and t > stops[seg + 1][0]:
            seg += 1
        f = (t - stops[seg][0]) / (stops[seg + 1][0] - stops[seg][0])
        out.append(tuple(math.floor(rgb[seg][c] + (rgb[seg + 1][c] - rgb[seg][c]) * f + 0.5) for c in range(3)))
    return out


def near(a: list[int], b: tuple[int, int, int], tol: int = 3) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a[:3], b))


def set_theme(host: Host, theme: str) -> None:
    """What JupyterLab does to <body> when the user picks a light or a dark theme."""
    host.page.evaluate(
        "(light) => document.body.setAttribute('data-jp-theme-light', light)", "true" if theme == "light" else "false"
    )


def canvas_pixel(page: Any, selector: str, x: float, y: float) -> list[int]:
    """The pixel at CSS point (x, y) of a canvas (device pixels are scaled in)."""
    return list(
        page.evaluate(
            """([sel, x, y]) => {
                const c = document.querySelector(sel);
                const k = c.width / c.getBoundingClientRect().width;
                return Array.from(c.getContext('2d').getImageData(Math.floor(x * k), Math.floor(y * k), 1, 1).data);
            }""",
            [selector, x, y],
        )
    )


def mean_brightness(page: Any, selector: str) -> float:
    return float(
        page.evaluate(
            """(sel) => {
                const c = document.querySelector(sel);
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let sum = 0, n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) { sum += (d[i] + d[i + 1] + d[i + 2]) / 3; n++; }
                return sum / n;
            }""",
            selector,
        )
    )


def chip_rgb(page: Any, slot: str, index: int) -> list[int]:
    text = page.eval_on_selector(f"#slot-{slot} .hs-tok[data-index='{index}']", "e => getComputedStyle(e).backgroundColor")
    return [int(float(v)) for v in text[text.index("(") + 1 : text.index(")")].split(",")[:3]]


# --- 1. dark theme -----------------------------------------------------------------------------


def check_palette(host: Host, w: Any, theme: str) -> None:
    """Atlas, pattern, loss colours and the patching heatmap are all in `theme`'s palette."""
    page = host.page
    lut, div = build_lut(STOPS[theme]), build_lut(DIVERGING[theme])
    other = "dark" if theme == "light" else "light"
    # the pattern: above the diagonal the weight is 0
    page.wait_for_function(
        """([sel, rgb]) => {
            const c = document.querySelector(sel);
            const d = c.getContext('2d').getImageData(c.width - 1, 0, 1, 1).data;
            return Math.abs(d[0] - rgb[0]) <= 3 && Math.abs(d[1] - rgb[1]) <= 3 && Math.abs(d[2] - rgb[2]) <= 3;
        }""",
        arg=["#slot-a .hs-pattern-base", list(lut[0])],
    )
    legend = host.pixel("a", ".hs-pattern .hs-legend", 255, 0)
    assert near(legend, lut[255]), (theme, legend)
    # the atlas: thumbnails are mostly weight 0, so the whole sheet is light or dark
    atlas = mean_brightness(page, "#slot-a .hs-atlas-canvas")
    assert (atlas > 170) if theme == "light" else (atlas < 90), (theme, atlas)
    # loss colours: each token's loss change on the diverging scale of the largest change
    change = w.ablation_result.loss_change
    scale = float(np.abs(change).max())
    for i in (int(np.argmax(change)), int(np.argmin(change)), 3):
        level = math.floor(127.5 + 127.5 * float(change[i]) / scale + 0.5)
        assert near(chip_rgb(page, "a", i + 1), div[level]), (theme, i, chip_rgb(page, "a", i + 1), div[level])
        assert not near(chip_rgb(page, "a", i + 1), build_lut(DIVERGING[other])[level], tol=20)
    # the patching heatmap: the strongest head's cell is the top of the diverging scale
    effect = w.patch_result.effect
    layer, head = (int(i) for i in np.unravel_index(np.nanargmax(effect), effect.shape))
    heat = host.page.locator("#slot-a .hs-heatmap-canvas")
    heat.scroll_into_view_if_needed()
    box = heat.bounding_box()
    pitch = (box["width"] - 26) / w.n_heads
    cell = canvas_pixel(page, "#slot-a .hs-heatmap-canvas", 26 + (head + 0.5) * pitch, 18 + (layer + 0.5) * pitch)
    level = max(0, min(255, math.floor(127.5 + 127.5 * max(-1.0, min(1.0, float(effect[layer, head]))) + 0.5)))
    assert near(cell, div[level], tol=4), (theme, cell, div[level])


@pytest.mark.parametrize("first", ["dark", "light"])
def test_palettes_match_the_page_at_creation_and_after_each_switch(host: Host, small_model: Any, first: str) -> None:
    import headscope

    w = headscope.show(small_model, "The cat sat on the mat. The cat sat on the mat.")
    w.ablate([(1, 2)])
    w.patch(w.prompt, w.prompt.replace("cat", "dog", 1), metric="loss")
    set_theme(host, first)  # the page is already in this theme when the widget is created
    root = host.mount("a", w)
    root.locator(".hs-patch > summary").click()
    check_palette(host, w, first)
    second = "light" if first == "dark" else "dark"
    set_theme(host, second)
    check_palette(host, w, second)
    set_theme(host, first)
    check_palette(host, w, first)


def test_a_view_shown_again_repaints_in_the_page_theme(host: Host) -> None:
    """A view detached while the page switched theme (a notebook windowing its cells out of the
    DOM, a reload) repaints when it is attached again."""
    import headscope

    attn = random_attention(2, 2, len(TOKENS), seed=3)
    host.mount("a", headscope.show_attention(TOKENS, attn))
    light = mean_brightness(host.page, "#slot-a .hs-atlas-canvas")
    host.page.evaluate(
        """() => {
            const slot = document.querySelector('#slot-a');
            window.__parked = slot;
            slot.remove();
            document.body.setAttribute('data-jp-theme-light', 'false');
        }"""
    )
    # (the theme watch's MutationObserver has already run: it fires at the end of that task)
    host.page.evaluate("() => document.getElementById('slots').appendChild(window.__parked)")
    host.page.wait_for_function(
        """() => {
            const c = document.querySelector('#slot-a .hs-atlas-canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let sum = 0, n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) { sum += d[i]; n++; }
            return sum / n < 90;
        }"""
    )
    assert mean_brightness(host.page, "#slot-a .hs-atlas-canvas") < light - 60


# --- 2. contrast ---------------------------------------------------------------------------------

CONTRAST = """(el) => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]*)\\)/.exec(c);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3] + bottom[3] * (1 - top[3]);
    if (a === 0) return [0, 0, 0, 0];
    return [0, 1, 2].map((i) => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a).concat([a]);
  };
  const mix = (a, b, t) => [0, 1, 2].map((i) => a[i] * t + b[i] * (1 - t)).concat([1]);
  const chain = [];
  for (let e = el.parentElement; e; e = e.parentElement) chain.unshift(e);
  let under = [255, 255, 255, 1];
  for (const a of chain) under = over(parse(getComputedStyle(a).backgroundColor), under);
  let opacity = 1;
  for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
  const s = getComputedStyle(el);
  const bg = over(parse(s.backgroundColor), under);
  const fg = over(parse(s.color), bg);
  const text = mix(fg, under, opacity);
  const back = mix(bg, under, opacity);
  const lum = (c) => {
    const l = c.slice(0, 3).map((v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
  };
  const [a, b] = [lum(text), lum(back)];
  return { ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), disabled: el.disabled === true,
           label: (el.className || el.tagName) + ' ' + (el.textContent || '').slice(0, 24), fg: s.color, bg: s.backgroundColor };
}"""


def contrast_failures(page: Any, root: Any) -> tuple[list[str], str]:
    """Every visible button and section toggle, at rest and hovered: (failures, the lowest)."""
    failures: list[str] = []
    lowest = math.inf
    weakest = ""
    controls = root.locator("button, summary")
    for i in range(controls.count()):
        el = controls.nth(i)
        if not el.is_visible():
            continue
        for state in ("rest", "hover"):
            if state == "hover":
                el.scroll_into_view_if_needed()
                el.hover(force=True)
            c = el.evaluate(CONTRAST)
            need = 3.0 if c["disabled"] else 4.5
            if not c["disabled"] and c["ratio"] < lowest:
                lowest, weakest = c["ratio"], f"{c['ratio']:.2f} ({state}: {c['label']!r})"
            if c["ratio"] < need:
                failures.append(f"{state}: {c['label']!r} {c['ratio']:.2f} ({c['fg']} on {c['bg']})")
        page.mouse.move(0, 0)
    return failures, weakest


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_button_reads_at_4_5_to_1_hovered_or_not(host: Host, small_model: Any, theme: str) -> None:
    import headscope

    set_theme(host, theme)
    w = headscope.show(small_model, "ab cd ab cd")
    w.run("ab cd ab c")  # a history entry
    w.ablate([(0, 1)])
    w.patch(w.prompt, "ab xd ab c", metric="loss")
    root = host.mount("a", w)
    for name in ("history", "ablate", "patch"):
        root.locator(f".hs-{name} > summary").click()
    root.locator(".hs-ablate-toggle").click()  # a head in the set: its remove button shows
    failures, lowest = contrast_failures(host.page, root)
    assert not failures, failures
    print(f"{theme}: lowest contrast of an enabled control {lowest}")


# --- 3. layout -----------------------------------------------------------------------------------

WORDS = (
    "When Mary and John went to the store , John gave a drink to Mary because she was thirsty and tired after "
    "the long walk through the park on a hot summer day in the middle of July , and then they both sat down "
    "on a bench near the old fountain to rest for a while before going home , tired but happy ."
).split()

LAYOUT = """(root) => {
  const body = root.querySelector('.hs-body').getBoundingClientRect();
  const main = root.querySelector('.hs-main');
  const side = root.querySelector('.hs-side');
  const visible = (e) => e.getBoundingClientRect().height > 0;
  const last = (e) => Math.max(...Array.from(e.children).filter(visible).map((c) => c.getBoundingClientRect().bottom));
  const scrolls = side.scrollHeight > side.clientHeight + 1;
  return {
    height: root.getBoundingClientRect().height,
    mainGap: body.bottom - last(main),
    sideGap: scrolls ? 0 : side.getBoundingClientRect().bottom - last(side),
  };
}"""


def test_the_widget_fits_a_1200_by_900_viewport(host: Host) -> None:
    import headscope

    cases = {
        "builtin": headscope.show(None, "The cat sat on the mat. The cat sat on the mat."),
        "builtin-64": headscope.show(None, "The quick brown fox jumps over the lazy dog. A stitch in time!!"),
        "words-64": headscope.show_attention(
            ["<|endoftext|>"] + [" " + t for t in WORDS[:63]],
            structured_attention(["<|endoftext|>"] + [" " + t for t in WORDS[:63]], 12, 12),
        ),
    }
    assert len(cases["builtin-64"].tokens) == 64 and len(cases["words-64"].tokens) == 64
    heights = {}
    for i, (name, w) in enumerate(cases.items()):
        root = host.mount(f"w{i}", w)
        m = root.evaluate(LAYOUT)
        heights[name] = round(m["height"])
        assert m["height"] <= 900, (name, m)
        # neither column leaves a large blank stretch under its content
        assert m["mainGap"] < 150 and m["sideGap"] < 250, (name, m)
    print("heights:", heights)


def test_closed_sections_open_from_the_keyboard(host: Host, small_model: Any) -> None:
    import headscope

    root = host.mount("a", headscope.show(small_model, "ab cd ab cd"))
    ablate = root.locator(".hs-ablate")
    assert ablate.get_attribute("open") is None and root.locator(".hs-ablate-run").is_hidden()
    assert root.locator(".hs-patch").get_attribute("open") is None
    # Tab from the Run button passes the Generate count and button, then reaches the ablation
    # section's title; Enter opens it, Space closes it
    root.locator(".hs-run").focus()
    host.page.keyboard.press("Tab")
    assert host.page.evaluate("document.activeElement.classList.contains('hs-generate-count')")
    host.page.keyboard.press("Tab")
    assert host.page.evaluate("document.activeElement.classList.contains('hs-generate-run')")
    host.page.keyboard.press("Tab")
    assert host.page.evaluate("document.activeElement.parentElement.classList.contains('hs-ablate')")
    host.page.keyboard.press("Enter")
    assert ablate.get_attribute("open") is not None and root.locator(".hs-ablate-run").is_visible()
    host.page.keyboard.press("Space")
    assert ablate.get_attribute("open") is None
    host.page.keyboard.press("Tab")
    host.page.keyboard.press("Enter")
    assert root.locator(".hs-patch-run").is_visible()


# --- 4. axis labels ------------------------------------------------------------------------------

LABELS = """(root) => {
  const stage = root.querySelector('.hs-pattern-stage').getBoundingClientRect();
  const read = (axis) => Array.from(root.querySelectorAll(`.hs-axis-${axis} .hs-axis-label:not(.hs-axis-extra)`)).map((e) => {
    const r = e.getBoundingClientRect();
    return { index: Number(e.dataset.index), text: e.textContent, x: (r.left + r.right) / 2, y: (r.top + r.bottom) / 2,
             html: e.children.length };
  });
  return { stage: { left: stage.left, top: stage.top, width: stage.width }, query: read('query'), key: read('key') };
}"""


def test_pattern_axes_are_labelled_with_the_tokens(host: Host) -> None:
    import headscope

    tokens = [*TOKENS[:-1], "<img src=x onerror=window.__pwned=1>"]
    root = host.mount("a", headscope.show_attention(tokens, random_attention(1, 1, len(tokens))))
    labels = root.evaluate(LABELS)
    shown = [display_token(t) for t in tokens]
    assert [q["text"] for q in labels["query"]] == shown
    assert [k["text"] for k in labels["key"]] == shown
    assert all(q["html"] == 0 for q in labels["query"]) and root.locator("img").count() == 0
    # each label sits on its row (queries) or column (keys)
    pitch = labels["stage"]["width"] / len(tokens)
    for q in labels["query"]:
        assert abs(q["y"] - (labels["stage"]["top"] + (q["index"] + 0.5) * pitch)) < 2, q
    for k in labels["key"]:
        assert abs(k["x"] - (labels["stage"]["left"] + (k["index"] + 0.5) * pitch)) < 2, k
    # the hovered cell's labels stand out
    overlay = root.locator(".hs-pattern-overlay")
    overlay.hover(position={"x": 2.5 * pitch, "y": 5.5 * pitch})
    assert root.locator(".hs-axis-query .hs-axis-on:not(.hs-axis-extra)").text_content() == shown[5]
    assert root.locator(".hs-axis-key .hs-axis-on:not(.hs-axis-extra)").text_content() == shown[2]


def test_long_prompts_thin_the_labels_and_zoom_brings_them_back(host: Host) -> None:
    import headscope

    n = 1024
    tokens = [f"t{i}" for i in range(n)]
    root = host.mount("a", headscope.show_attention(tokens, random_attention(1, 1, n, seed=2)))
    labels = root.evaluate(LABELS)
    width = labels["stage"]["width"]
    indices = [q["index"] for q in labels["query"]]
    step = indices[1] - indices[0]
    assert 2 <= len(indices) <= width / 11, len(indices)
    assert all(b - a == step for a, b in zip(indices, indices[1:])) and all(i % step == 0 for i in indices)
    assert [q["text"] for q in labels["query"]] == [tokens[i] for i in indices]
    # the hovered row and column get a label of their own where thinning left them out
    overlay = root.locator(".hs-pattern-overlay")
    side = overlay.bounding_box()["width"]
    row, col = indices[3] + 1, indices[1] + 2
    overlay.hover(position={"x": (col + 0.5) * side / n, "y": (row + 0.5) * side / n})
    assert root.locator(".hs-axis-query .hs-axis-extra").inner_text() == tokens[row]
    assert root.locator(".hs-axis-key .hs-axis-extra").inner_text() == tokens[col]
    host.page.mouse.move(0, 0)
    assert root.locator(".hs-axis-extra").first.is_hidden()
    # zoom in until every row has room: the labels are the window's tokens, one per row
    for _ in range(7):
        root.locator(".hs-zoom-in").click()
    window = host.page.eval_on_selector("#slot-a .hs-pattern-base", "c => c.width")
    labels = root.evaluate(LABELS)
    assert window == 8 and len(labels["query"]) == 8 and len(labels["key"]) == 8
    first = labels["query"][0]["index"]
    assert [q["text"] for q in labels["query"]] == tokens[first : first + 8]


# --- 5. token text -------------------------------------------------------------------------------

CHIPS = """(root) => Array.from(root.querySelectorAll('.hs-tok')).map((e) => ({
  index: Number(e.dataset.index), rects: e.getClientRects().length, top: Math.round(e.getBoundingClientRect().top),
  text: e.textContent, clipped: e.scrollWidth > e.clientWidth + 1,
  glyphs: Array.from(e.querySelectorAll('.hs-ws')).map((g) => getComputedStyle(g, '::before').content),
  // control characters drawn at text size (a font has no glyph for them: tofu)
  tofu: Array.from(e.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE)
    .map((n) => n.data).join('').split('').filter((c) => /[\x00-\x1f\x7f-\x9f]/.test(c)).length,
}))"""


def test_words_never_break_across_lines(host: Host) -> None:
    import headscope

    w = headscope.show(None, "internationalization " * 6 + "ok")  # byte tokens: one chip per letter
    root = host.mount("a", w)
    chips = root.evaluate(CHIPS)
    assert all(c["rects"] == 1 for c in chips)
    tops = {c["top"] for c in chips}
    assert len(tops) > 1, "the prompt wraps"
    # the letters of each word share a line
    word: list[dict[str, Any]] = []
    for c in chips[1:] + [{"text": " ", "top": None}]:
        if c["text"].isspace():
            assert len({x["top"] for x in word}) <= 1, "".join(x["text"] for x in word)
            word = []
        else:
            word.append(c)


def test_control_characters_show_as_names_and_long_tokens_are_clipped(host: Host) -> None:
    import headscope

    long = "supercalifragilisticexpialidocious" * 2
    tokens = ["<bos>", "a\x00b", "\x07", "\x1b[0m", "\n", "\tx", long, "\x7f"]
    root = host.mount("a", headscope.show_attention(tokens, random_attention(1, 1, len(tokens))))
    chips = root.evaluate(CHIPS)
    assert [c["text"] for c in chips] == tokens  # the DOM keeps the exact text
    assert chips[1]["glyphs"] == ['"NUL"'] and chips[2]["glyphs"] == ['"BEL"'] and chips[3]["glyphs"] == ['"ESC"']
    assert chips[4]["glyphs"] == ['"⏎"'] and chips[5]["glyphs"] == ['"→"'] and chips[7]["glyphs"] == ['"DEL"']
    # the stand-ins are drawn with glyphs the page's fonts have: no tofu in place of a control
    assert all(c["tofu"] == 0 for c in chips), chips
    assert all(c["rects"] == 1 for c in chips)
    # a long token: clipped with an ellipsis in its chip, whole in the tooltip
    assert chips[6]["clipped"] and not any(c["clipped"] for i, c in enumerate(chips) if i != 6)
    assert root.locator(".hs-tok[data-index='6']").evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
    host.page.hover("#slot-a .hs-tok[data-index='6']")
    assert quote_token(long) in host.tooltip("a")
    # tooltips and axis labels show the symbols too
    host.page.hover("#slot-a .hs-tok[data-index='1']")
    assert '"a‹NUL›b"' in host.tooltip("a")
    labels = root.locator(".hs-axis-query .hs-axis-label:not(.hs-axis-extra)").all_text_contents()
    assert labels[1:4] == ["a‹NUL›b", "‹BEL›", "‹ESC›[0m"]


BIDI_ORDER = """(root) => {
  const line = root.querySelector('.hs-tooltip').firstElementChild;
  const node = line.firstChild;
  const text = node.data;
  const from = text.indexOf('→ key');
  const xs = [];
  for (let i = from; i < text.length; i++) {
    if (/[\\s\\u2068\\u2069]/.test(text[i])) continue;
    const r = document.createRange();
    r.setStart(node, i);
    r.setEnd(node, i + 1);
    xs.push(r.getBoundingClientRect().left);
  }
  return { text, xs };
}"""


def test_a_right_to_left_override_stays_inside_its_token(host: Host) -> None:
    import headscope

    tokens = ["<bos>", "ab\u202ecd", "xy", "zz"]
    root = host.mount("a", headscope.show_attention(tokens, random_attention(1, 1, len(tokens))))
    # the pattern cell (query 1, key 0): `query 1 "ab‮cd" → key 0 "<bos>"` on one line
    overlay = root.locator(".hs-pattern-overlay")
    box = overlay.bounding_box()
    overlay.hover(position={"x": 0.5 * box["width"] / 4, "y": 1.5 * box["height"] / 4})
    host.tooltip("a")
    order = root.evaluate(BIDI_ORDER)
    # the line after the token reads left to right
    xs = order["xs"]
    assert len(xs) > 5 and all(b > a for a, b in zip(xs, xs[1:])), order
    assert "\u2068" in order["text"] and "\u2069" in order["text"], order["text"]
    # the other places tokens show are isolates too
    for selector in (".hs-tok", ".hs-axis-label"):
        assert root.locator(selector).first.evaluate("e => getComputedStyle(e).unicodeBidi") == "isolate"


# (6. the ablation's wording: tests/js/interventions.test.ts and test_host_page.py)


# --- 7. tooltips ---------------------------------------------------------------------------------

BOXES = """([root, hovered]) => {
  const box = (e) => { const r = e.getBoundingClientRect(); return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, w: r.width, h: r.height }; };
  const keep = Array.from(root.querySelectorAll('.hs-header, .hs-section-title, .hs-ablation-total, .hs-loss-line, .hs-next-title'))
    .filter((e) => e.getBoundingClientRect().height > 0).map((e) => ({ name: e.className + ' ' + e.textContent.slice(0, 20), ...box(e) }));
  return { tip: box(root.querySelector('.hs-tooltip')), root: box(root), keep, hovered: hovered ? box(hovered) : null };
}"""


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["left"] < b["right"] - 1 and b["left"] < a["right"] - 1 and a["top"] < b["bottom"] - 1 and b["top"] < a["bottom"] - 1


def check_tooltip_clear(host: Host, root: Any, hovered: Any | None, target: dict[str, float] | None = None) -> None:
    host.tooltip("a")
    b = host.page.evaluate(BOXES, [root.element_handle(), hovered.element_handle() if hovered else None])
    tip = b["tip"]
    what = b["hovered"] or target
    assert what is not None and not overlap(tip, what), (tip, what)
    for k in b["keep"]:
        assert not overlap(tip, k), (tip, k)
    r = b["root"]
    assert r["left"] <= tip["left"] and tip["right"] <= r["right"] and r["top"] <= tip["top"] and tip["bottom"] <= r["bottom"]


def test_tooltips_keep_clear_of_the_hovered_thing_and_the_headings(host: Host, small_model: Any) -> None:
    import headscope

    w = headscope.show(small_model, "The cat sat on the mat. The cat sat on the mat. The cat sat.")
    w.ablate([(1, 2)])
    root = host.mount("a", w)
    # token chips, first and last rows: the ablation's headline lies right under the tokens
    for i in (1, 8, len(w.tokens) - 3, len(w.tokens) - 1):
        chip = root.locator(f".hs-tok[data-index='{i}']")
        chip.hover()
        check_tooltip_clear(host, root, chip)
    root.locator(".hs-mode-query").click()  # attention colours: longer tooltips
    chip = root.locator(f".hs-tok[data-index='{len(w.tokens) - 2}']")
    chip.hover()
    check_tooltip_clear(host, root, chip)
    # atlas cells in the side panel: the tooltip opens away from the panel's headings
    atlas = root.locator(".hs-atlas-canvas")
    box = atlas.bounding_box()
    pitch = (box["width"] - 26) / w.n_heads
    for layer, head in ((0, 0), (1, 3)):
        x, y = 26 + (head + 0.5) * pitch - 1, 18 + (layer + 0.5) * pitch - 1
        atlas.hover(position={"x": x, "y": y})
        cell = {"left": box["x"] + 26 + head * pitch, "top": box["y"] + 18 + layer * pitch}
        cell.update(right=cell["left"] + pitch - 3, bottom=cell["top"] + pitch - 3)
        check_tooltip_clear(host, root, None, cell)
    # pattern cells near the edges
    overlay = root.locator(".hs-pattern-overlay")
    ob = overlay.bounding_box()
    for fx, fy in ((0.05, 0.05), (0.95, 0.97), (0.5, 0.5)):
        overlay.hover(position={"x": fx * ob["width"], "y": fy * ob["height"]})
        px, py = ob["x"] + fx * ob["width"], ob["y"] + fy * ob["height"]
        check_tooltip_clear(host, root, None, {"left": px - 4, "top": py - 4, "right": px + 4, "bottom": py + 4})


# --- 8. errors next to the action ----------------------------------------------------------------


def in_viewport(page: Any, box: dict[str, float]) -> bool:
    size = page.viewport_size
    return box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and box["x"] >= 0 and box["x"] + box["width"] <= size["width"]


def test_a_failed_patch_says_why_next_to_its_button(host: Host, small_model: Any) -> None:
    import headscope

    w = headscope.show(small_model, "ab cd ab c")
    root = host.mount("a", w)
    root.locator(".hs-patch > summary").click()
    root.locator(".hs-patch-corrupted").fill("ab xd ab cc")  # one token more: the kernel refuses
    root.locator(".hs-patch-correct").fill("d")
    root.locator(".hs-patch-wrong").fill("x")
    button = root.locator(".hs-patch-run")
    button.click()
    error = root.locator(".hs-patch .hs-action-error")
    error.filter(has_text="same number of tokens").wait_for()
    assert error.get_attribute("role") == "alert" and w.status == "error"
    assert error.inner_text() == w.error
    eb, bb = error.bounding_box(), button.bounding_box()
    assert in_viewport(host.page, eb) and in_viewport(host.page, bb), (eb, bb)
    assert 0 <= eb["y"] - (bb["y"] + bb["height"]) < 40, (eb, bb)  # right under the button
    # only there: the other sections show no error
    assert root.locator(".hs-action-error:visible").count() == 1
    # fixed and run again: the error goes
    root.locator(".hs-patch-corrupted").fill("ab xd ab c")
    button.click()
    root.locator(".hs-patch-result").wait_for(state="visible")
    error.wait_for(state="hidden")
    assert w.status == "ready"


def test_run_ablate_and_score_errors_show_in_their_sections(host: Host, small_model: Any) -> None:
    import headscope

    w = headscope.show(small_model, "abc abc")
    root = host.mount("a", w)
    # ablation: an empty reference text
    root.locator(".hs-ablate > summary").click()
    root.locator(".hs-ablate-toggle").click()
    root.locator(".hs-ablate-method").select_option("reference")
    root.locator(".hs-ablate-run").click()
    ablate_error = root.locator(".hs-ablate .hs-action-error")
    ablate_error.filter(has_text="reference prompt 0 is empty").wait_for()
    assert root.locator(".hs-action-error:visible").count() == 1
    # a run error (a prompt longer than the context) moves to the prompt section
    root.locator(".hs-prompt-input").fill("z" * 80)
    root.locator(".hs-run").click()
    run_error = root.locator(".hs-prompt .hs-action-error")
    run_error.wait_for(state="visible")
    assert run_error.inner_text() == w.error and ablate_error.is_hidden()
    assert root.locator(".hs-action-error:visible").count() == 1
    # and goes when a run succeeds
    root.locator(".hs-prompt-input").fill("abc")
    root.locator(".hs-run").click()
    run_error.wait_for(state="hidden")


# --- pictures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_pictures_of_both_themes(host: Host, theme: str) -> None:
    """The built-in model's induction head, query locked, in each theme (README material:
    tests/e2e/artifacts/widget-light.png and widget-dark.png)."""
    import headscope
    from headscope._builtin import builtin_card

    layer, head = builtin_card()["roles"]["induction"][0]
    set_theme(host, theme)
    host.page.evaluate("(dark) => { document.body.style.background = dark ? '#111111' : '#ffffff'; }", theme == "dark")
    w = headscope.show(None, "The cat sat on the mat. The cat sat on the mat.", layer=layer, head=head)
    root = host.mount("a", w)
    host.page.click("#slot-a .hs-tok[data-index='29']")  # lock the second "c"
    host.page.hover("#slot-a .hs-tok[data-index='6']")  # the byte after the first "c"
    host.tooltip("a")
    assert root.bounding_box()["height"] <= 900
    # the README's dark picture: refreshed with HEADSCOPE_UPDATE_SCREENSHOT=1, else kept as an
    # artifact (its light picture, docs/img/widget.png, comes from test_screenshot_for_readme)
    update = os.environ.get("HEADSCOPE_UPDATE_SCREENSHOT") == "1" and theme == "dark"
    folder = ROOT / "docs" / "img" if update else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"widget-{theme}.png"
    root.screenshot(path=str(target))
    assert target.stat().st_size > 10_000


# --- tier B: JupyterLab's own theme switch -------------------------------------------------------

KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""

DARK_ENOUGH = """([light]) => {
  const root = document.querySelector('.jp-OutputArea-output .headscope');
  if (!root) return false;
  const pattern = root.querySelector('.hs-pattern');
  if (!pattern || pattern.getAttribute('aria-busy') !== 'false') return false;
  const mean = (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let sum = 0, n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) { sum += (d[i] + d[i + 1] + d[i + 2]) / 3; n++; }
    return n ? sum / n : -1;
  };
  // docked in the side bar (the default with headscope's extension), or in the output
  const atlas = mean(document.querySelector('.jp-headscope-panel .hs-atlas-canvas') || root.querySelector('.hs-atlas-canvas'));
  const base = root.querySelector('.hs-pattern-base');
  const corner = Array.from(base.getContext('2d').getImageData(base.width - 1, 0, 1, 1).data);
  const ok = light ? atlas > 170 && corner[0] > 200 : atlas >= 0 && atlas < 90 && corner[0] < 60;
  window.__hsSeen = { atlas, corner };
  return ok;
}"""


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    yield from serve(tmp_path_factory.mktemp("jupyter-look"))


def change_theme(page: Any, name: str, light: bool) -> None:
    page.evaluate("(theme) => window.jupyterapp.commands.execute('apputils:change-theme', { theme })", name)
    page.wait_for_function("(light) => document.body.dataset.jpThemeLight === String(light)", arg=light, timeout=30_000)


def wait_palette(page: Any, light: bool) -> None:
    try:
        page.wait_for_function(DARK_ENOUGH, arg=[light], polling=200, timeout=30_000)
    except Exception:
        raise AssertionError(f"palette not {'light' if light else 'dark'}: {page.evaluate('window.__hsSeen')}") from None


@pytest.mark.jupyter
def test_jupyterlab_dark_theme_at_creation_after_reload_and_on_switch(
    jupyter: JupyterServer, browser_page: Any, tmp_path: Path
) -> None:
    page, errors = browser_page
    write_notebook(jupyter.root / "hs_theme.ipynb", "import headscope\nw = headscope.show(None, 'ab ab ab')\nw")
    page.goto(f"{jupyter.url}/lab/tree/hs_theme.ipynb")
    page.wait_for_function(KERNEL_IDLE, polling=250, timeout=90_000)
    change_theme(page, "JupyterLab Dark", light=False)
    page.wait_for_function(KERNEL_IDLE, polling=250, timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.locator(".jp-OutputArea-output .headscope .hs-tok").first.wait_for(timeout=90_000)
    wait_palette(page, light=False)  # created while the page is dark
    widget = page.locator(".jp-OutputArea-output .headscope")
    widget.screenshot(path=str(ARTIFACTS / "lab-dark.png"))
    failures, lowest = contrast_failures(page, widget)  # JupyterLab's own dark colours
    assert not failures, failures
    failures, lowest_side = contrast_failures(page, page.locator(".jp-headscope-panel .hs-dock"))
    assert not failures, failures
    lowest = f"{lowest}; docked panel: {lowest_side}"
    print(f"JupyterLab Dark: lowest contrast of an enabled control {lowest}")
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
    page.reload()
    page.locator(".jp-OutputArea-output .headscope .hs-tok").first.wait_for(timeout=90_000)
    wait_palette(page, light=False)  # shown again after a reload in dark
    change_theme(page, "JupyterLab Light", light=True)
    wait_palette(page, light=True)  # and back
    widget.screenshot(path=str(ARTIFACTS / "lab-light.png"))
    failures, lowest = contrast_failures(page, widget)
    assert not failures, failures
    failures, lowest_side = contrast_failures(page, page.locator(".jp-headscope-panel .hs-dock"))
    assert not failures, failures
    lowest = f"{lowest}; docked panel: {lowest_side}"
    print(f"JupyterLab Light: lowest contrast of an enabled control {lowest}")
    change_theme(page, "JupyterLab Dark", light=False)
    wait_palette(page, light=False)
    change_theme(page, "JupyterLab Light", light=True)
    noise = ("reading 'schema'", "favicon", "Failed to load resource")
    bad = [e for e in errors if not any(n in e for n in noise)]
    assert not bad, bad

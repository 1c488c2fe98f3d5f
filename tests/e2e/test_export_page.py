"""The offline HTML export (``w.save_html``) opened from a file:// URL with every request blocked.

The page must make no request beyond the document itself, paint the first head, hover, switch
heads from the atlas's keyboard, follow the dark theme, keep hostile tokens as text, and say that
there is no kernel while the controls that need one are disabled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import headscope
from test_host_page import TOLERANCE, close_color, parse_pair, random_attention

pytestmark = pytest.mark.browser

TOKENS = [
    "<bos>", "The", " cat", "</script><script>window.pwned=1</script>", " sat",
    "<img src=x onerror=window.pwned=2>", " the", " cat", "<!--", "\u202eevil", " mat", ".",
]  # fmt: skip
ROLE = "<img src=x onerror=window.pwned=3>"
PATTERN = ".hs-pattern"


class ExportPage:
    """An export opened in a fresh page, every request but the document's refused and kept."""

    def __init__(self, page: Any, path: Path) -> None:
        self.page = page
        self.url = path.as_uri()
        #: requests that reached the route (all of them), and those the page reported
        self.routed: list[str] = []
        self.seen: list[str] = []

        def route(r: Any) -> None:
            self.routed.append(r.request.url)
            if r.request.url == self.url:
                r.continue_()
            else:
                r.abort()

        page.context.route("**/*", route)
        page.on("request", lambda request: self.seen.append(request.url))
        page.goto(self.url)
        self.wait_loaded()

    def wait_loaded(self) -> None:
        self.page.wait_for_function(
            """() => {
                const p = document.querySelector('.hs-pattern');
                return p && p.getAttribute('aria-busy') === 'false';
            }"""
        )

    def tooltip(self) -> str:
        tip = self.page.locator(".headscope .hs-tooltip")
        tip.wait_for(state="visible")
        return str(tip.inner_text())

    def pixel(self, selector: str, x: int, y: int) -> list[int]:
        return list(
            self.page.evaluate(
                """([sel, x, y]) => Array.from(
                    document.querySelector(`.headscope ${sel}`).getContext('2d').getImageData(x, y, 1, 1).data)""",
                [selector, x, y],
            )
        )

    def legend_color(self, weight: float) -> list[int]:
        return self.pixel(".hs-pattern .hs-legend", int(round(weight * 255)), 0)

    def head_label(self, text: str) -> None:
        self.page.wait_for_function("(t) => document.querySelector('.hs-head-label').textContent === t", arg=text)


@pytest.fixture
def attention() -> np.ndarray:
    return random_attention(2, 3, len(TOKENS), seed=11)


def test_the_export_works_offline_without_a_kernel(browser_page: tuple[Any, list[str]], tmp_path: Path, attention: np.ndarray) -> None:
    page, errors = browser_page
    w = headscope.show_attention(TOKENS, attention)
    w.known_heads = [{"role": ROLE, "layer": 1, "head": 2}]
    out = ExportPage(page, w.save_html(tmp_path / "attention.html"))
    # nothing but the document itself was asked for
    assert out.routed == [out.url] and out.seen == [out.url], (out.routed, out.seen)
    assert page.evaluate("document.documentElement.dataset.hsExport") == "ready"

    # hostile text is text: chips hold it exactly, nothing ran, no element was made of it
    root = page.locator(".headscope")
    assert root.locator(".hs-tok").all_text_contents() == TOKENS
    assert page.evaluate("window.pwned") is None
    assert page.locator("img").count() == 0
    assert root.locator(".hs-known").get_by_text(ROLE, exact=True).is_visible()

    # no kernel: said on the page and in the status line; what needs one is disabled
    assert page.locator(".hs-export-note").get_by_text("static export: no kernel", exact=True).is_visible()
    assert "static export: no kernel" in root.locator(".hs-status").inner_text()
    assert root.locator(".hs-prompt-input").is_disabled() and root.locator(".hs-run").is_disabled()
    assert root.locator(".hs-probe").is_disabled()
    # the notes say why: no kernel (not "precomputed attention", which this is not)
    assert root.locator(".hs-prompt .hs-note").inner_text().startswith("Static export: no kernel")
    assert root.locator(".hs-ablate-note").text_content() == "Static export: no kernel to ablate heads in."
    enabled = page.evaluate(
        """() => Array.from(document.querySelectorAll(
                '.hs-ablate button, .hs-ablate select, .hs-ablate textarea, .hs-patch button, .hs-patch select, ' +
                '.hs-patch textarea, .hs-patch input, .hs-history button'))
            .filter((el) => !el.disabled && !el.closest('summary') && el.tagName !== 'SUMMARY')
            .map((el) => el.className)"""
    )
    assert enabled == [], enabled

    # hover: the tooltip names the pair and its weight
    page.hover(".headscope .hs-tok[data-index='6']")
    query, key, shown = parse_pair(out.tooltip())
    assert (query, key) == (6, int(np.argmax(attention[0, 0, 6])))
    assert abs(shown - attention[0, 0, 6, key]) <= TOLERANCE

    # the score picker works from the exported scores, without asking anyone
    root.locator(".hs-score-select").select_option("induction")
    assert root.locator(".hs-top-heads li").count() == 5
    assert "Top heads by" in root.locator(".hs-score-note").inner_text()

    # the atlas's keyboard switches heads; each is decoded when first shown
    assert close_color(out.pixel(".hs-pattern-base", 2, 6), out.legend_color(float(attention[0, 0, 6, 2])))
    root.locator(".hs-atlas-canvas").focus()
    page.keyboard.press("ArrowRight")
    out.head_label("layer 0 · head 1")
    out.wait_loaded()
    assert close_color(out.pixel(".hs-pattern-base", 2, 6), out.legend_color(float(attention[0, 1, 6, 2])))
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    out.head_label("layer 1 · head 2")
    out.wait_loaded()
    assert close_color(out.pixel(".hs-pattern-base", 4, 9), out.legend_color(float(attention[1, 2, 9, 4])))
    page.hover(".headscope .hs-tok[data-index='9']")
    query, key, shown = parse_pair(out.tooltip())
    assert query == 9 and abs(shown - attention[1, 2, 9, key]) <= TOLERANCE

    # the dark theme, from the OS preference: canvases repaint in the dark palette
    empty_light = out.pixel(".hs-pattern-base", 10, 2)  # above the diagonal: weight 0
    page.emulate_media(color_scheme="dark")
    page.wait_for_function(
        """() => {
            const c = document.querySelector('.headscope .hs-pattern-base');
            const [r] = c.getContext('2d').getImageData(10, 2, 1, 1).data;
            return r < 100;
        }"""
    )
    assert not close_color(out.pixel(".hs-pattern-base", 10, 2), empty_light, tol=40)
    assert page.evaluate("getComputedStyle(document.querySelector('.headscope')).getPropertyValue('--hs-scheme').trim()") == "dark"
    assert close_color(out.pixel(".hs-pattern-base", 4, 9), out.legend_color(float(attention[1, 2, 9, 4])))
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 20, 26)", background

    assert out.routed == [out.url] and out.seen == [out.url], (out.routed, out.seen)  # none since
    assert errors == [], errors


def test_a_head_left_out_of_the_export_says_so(browser_page: tuple[Any, list[str]], tmp_path: Path, attention: np.ndarray) -> None:
    page, errors = browser_page
    w = headscope.show_attention(TOKENS, attention, layer=1, head=1)
    out = ExportPage(page, w.save_html(tmp_path / "two.html", heads=[(0, 0), (1, 1)]))
    out.head_label("layer 1 · head 1")
    assert close_color(out.pixel(".hs-pattern-base", 2, 6), out.legend_color(float(attention[1, 1, 6, 2])))
    page.locator(".hs-atlas-canvas").focus()
    page.keyboard.press("ArrowLeft")
    out.head_label("layer 1 · head 0")
    status = page.locator(".headscope .hs-status")
    page.wait_for_function("() => document.querySelector('.headscope .hs-status').textContent.includes('not in this export')")
    assert 'it holds 2 of the 6 heads; export with heads="all"' in status.inner_text()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowLeft")
    out.head_label("layer 0 · head 0")
    out.wait_loaded()
    assert close_color(out.pixel(".hs-pattern-base", 2, 6), out.legend_color(float(attention[0, 0, 6, 2])))
    assert "not in this export" not in status.inner_text()
    assert errors == [], errors

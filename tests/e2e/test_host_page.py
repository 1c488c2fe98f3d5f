"""Tier A: the built widget bundle on a static host page with a fake anywidget model.

The fake model's state comes from the real Python widget (``headscope.show_attention``), and its
``send`` reaches the real widget's message handler through an exposed function, so the kernel side
answers every ``request_head`` and ``run`` exactly as it would in Jupyter.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect


pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "python" / "headscope" / "static" / "widget.js"
SCREENSHOT = ROOT / "docs" / "img" / "widget.png"
ARTIFACT_SHOT = ROOT / "tests" / "e2e" / "artifacts" / "widget.png"
WIRE_TRAITS = (
    "tokens", "n_layers", "n_heads", "layer", "head", "thumb_size", "atlas", "run_id",
    "prompt", "history", "status", "error", "can_run", "model_name", "score_names", "scores",
    "scores_run_id", "note", "known_heads", "ablation_heads", "ablation_method", "ablation_label", "ablation_run_id",
    "ablation_loss", "ablation_top_k", "ablation_top_tokens", "ablation_top_ids", "ablation_top_probs",
    "patch_clean", "patch_corrupted", "patch_metric", "patch_effect", "patch_id", "patch_progress",
    "patch_summary", "binary_probe", "transport", "text_data", "generated_from", "bos_first",
    "value_weighted", "value_weighted_reason", "value_norms", "value_norms_layer", "value_norms_run_id",
    "atlas_value_weighted", "atlas_value_weighted_run_id",
)  # fmt: skip
#: Largest error of a decoded weight (docs/wire.md: scales[q] / 510 <= 1/510) plus display rounding.
TOLERANCE = 1 / 255


# --- attention fixtures --------------------------------------------------------------------


def causal_softmax(logits: np.ndarray) -> np.ndarray:
    n = logits.shape[-1]
    masked = np.where(np.tri(n, dtype=bool), logits, -np.inf)
    e = np.exp(masked - masked.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def random_attention(n_layers: int, n_heads: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return causal_softmax(rng.normal(scale=2.0, size=(n_layers, n_heads, n, n)))


def structured_attention(tokens: list[str], n_layers: int, n_heads: int) -> np.ndarray:
    """Heads that look like real ones: previous-token, induction, BOS sink, local, diffuse."""
    n = len(tokens)
    q = np.arange(n)[:, None]
    k = np.arange(n)[None, :]
    rng = np.random.default_rng(7)
    induction = np.full((n, n), -4.0)
    for i in range(n):
        for j in range(1, i):
            if tokens[j - 1] == tokens[i]:
                induction[i, j] = 4.0
    kinds = [
        -6.0 * np.abs(q - 1 - k),  # previous token
        induction,
        np.where(k == 0, 3.0, 0.0) + rng.normal(scale=0.6, size=(n, n)),  # BOS sink
        -1.2 * np.abs(q - k),  # local
        rng.normal(scale=0.4, size=(n, n)),  # diffuse
        np.where(np.array([t.strip() in {".", "the", "The"} for t in tokens])[None, :], 2.5, 0.0),
    ]
    logits = np.empty((n_layers, n_heads, n, n))
    for layer in range(n_layers):
        for head in range(n_heads):
            base = kinds[(layer * n_heads + head) % len(kinds)]
            logits[layer, head] = base + rng.normal(scale=0.8, size=(n, n))
    return causal_softmax(logits)


# --- the kernel behind the fake model ------------------------------------------------------


def _wire(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def wire_state(widget: Any) -> dict[str, Any]:
    state = widget.get_state()
    return {name: _wire(state[name]) for name in WIRE_TRAITS}


class Kernel:
    """The real Python widgets behind the page, reached through exposed functions."""

    def __init__(self) -> None:
        self.widgets: dict[str, Any] = {}
        self.received: dict[str, list[dict[str, Any]]] = {}
        #: the type of every message the kernel sent back, per widget
        self.replies: dict[str, list[str]] = {}

    def add(self, widget_id: str, widget: Any) -> None:
        self.widgets[widget_id] = widget
        self.received[widget_id] = []
        self.replies[widget_id] = []

    def _diff(self, widget: Any, before: dict[str, Any]) -> dict[str, Any]:
        after = wire_state(widget)
        return {k: v for k, v in after.items() if before.get(k) != v}

    def message(self, widget_id: str, content: dict[str, Any]) -> dict[str, Any]:
        widget = self.widgets[widget_id]
        self.received[widget_id].append(content)
        replies: list[dict[str, Any]] = []

        def capture(content: Any, buffers: Any = None) -> None:
            encoded = [base64.b64encode(bytes(b)).decode("ascii") for b in buffers or []]
            replies.append({"content": content, "buffers": encoded})

        before = wire_state(widget)
        widget.send = capture
        widget._handle_custom_msg(content, [])
        self.replies[widget_id] += [str(r["content"].get("type")) for r in replies]
        return {"messages": replies, "state": self._diff(widget, before)}

    def save(self, widget_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """An update from the page. What the kernel sends back, as a comm would: the traits
        that changed, and those it re-sends (``send_state``: a rejected update rolled back)."""
        widget = self.widgets[widget_id]
        before = wire_state(widget)
        resent: list[str] = []
        widget.send_state = lambda key=None: resent.extend([key] if isinstance(key, str) else key or [])
        widget.set_state(changes)
        after = wire_state(widget)
        return {"state": {**self._diff(widget, before), **{k: after[k] for k in resent if k in after}}}


@pytest.fixture
def host(browser_page: tuple[Any, list[str]], http_server: str) -> Any:
    if not BUNDLE.is_file():
        pytest.fail(f"{BUNDLE} is missing: run `npm install && npm run build` first")
    page, errors = browser_page
    kernel = Kernel()
    page.expose_function("hsKernelMessage", kernel.message)
    page.expose_function("hsKernelSave", kernel.save)
    page.goto(f"{http_server}/tests/e2e/host/index.html")
    page.wait_for_function("() => window.hsReady === true")
    yield Host(page, kernel)
    assert errors == [], errors


class Host:
    def __init__(self, page: Any, kernel: Kernel) -> None:
        self.page = page
        self.kernel = kernel

    def mount(self, widget_id: str, widget: Any, **overrides: Any) -> Any:
        """Show `widget` in a new slot (state overrides apply to the page copy only)."""
        self.kernel.add(widget_id, widget)
        state = {**wire_state(widget), **overrides}
        self.page.evaluate("([id, state]) => window.hsMount(id, state)", [widget_id, state])
        root = self.page.locator(f"#slot-{widget_id} .headscope")
        self.wait_loaded(widget_id)
        return root

    def wait_loaded(self, widget_id: str) -> None:
        self.page.wait_for_function(
            """(id) => {
                const p = document.querySelector(`#slot-${id} .hs-pattern`);
                return p && p.getAttribute('aria-busy') === 'false';
            }""",
            arg=widget_id,
        )

    def tooltip(self, widget_id: str) -> str:
        tip = self.page.locator(f"#slot-{widget_id} .hs-tooltip")
        tip.wait_for(state="visible")
        return str(tip.inner_text())

    def pixel(self, widget_id: str, selector: str, x: int, y: int) -> list[int]:
        return list(
            self.page.evaluate(
                """([id, sel, x, y]) => {
                    const c = document.querySelector(`#slot-${id} ${sel}`);
                    return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
                }""",
                [widget_id, selector, x, y],
            )
        )

    def legend_color(self, widget_id: str, weight: float) -> list[int]:
        return self.pixel(widget_id, ".hs-pattern .hs-legend", int(round(weight * 255)), 0)

    def backgrounds(self, widget_id: str) -> list[str]:
        return list(
            self.page.eval_on_selector_all(
                f"#slot-{widget_id} .hs-tok", "els => els.map(e => e.style.backgroundColor)"
            )
        )


def parse_pair(text: str) -> tuple[int, int, float]:
    m = re.search(r"query (\d+) .* key (\d+) .*\nweight (\d\.\d{3})", text, re.S)
    assert m, f"tooltip does not name a query, a key and a weight: {text!r}"
    return int(m.group(1)), int(m.group(2)), float(m.group(3))


def close_color(a: list[int], b: list[int], tol: int = 6) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a[:3], b[:3]))


# --- tests ---------------------------------------------------------------------------------

TOKENS = ["<bos>", "The", " cat", " sat", " on", " the", " mat", "."]


def test_token_hover_tooltip_lock_and_escape(host: Host) -> None:
    import headscope

    attn = random_attention(2, 3, len(TOKENS))
    root = host.mount("a", headscope.show_attention(TOKENS, attn))
    assert root.locator(".hs-tok").all_text_contents() == TOKENS

    host.page.hover("#slot-a .hs-tok[data-index='5']")
    query, key, shown = parse_pair(host.tooltip("a"))
    assert (query, key) == (5, int(np.argmax(attn[0, 0, 5])))
    assert abs(shown - attn[0, 0, 5, key]) <= TOLERANCE
    assert '" the"' in host.tooltip("a")

    # lock on token 5, then hover token 2: the tooltip describes the pair (5, 2)
    host.page.click("#slot-a .hs-tok[data-index='5']")
    assert root.locator(".hs-tok[aria-pressed='true']").all_text_contents() == [" the"]
    host.page.hover("#slot-a .hs-tok[data-index='2']")
    query, key, shown = parse_pair(host.tooltip("a"))
    assert (query, key) == (5, 2)
    assert abs(shown - attn[0, 0, 5, 2]) <= TOLERANCE
    coloured = host.backgrounds("a")
    assert all(coloured[: 6]) and not any(coloured[6:]), coloured  # row 5 of a causal head

    host.page.keyboard.press("Escape")
    assert root.locator(".hs-tok[aria-pressed='true']").count() == 0
    # a second click on the locked token also unlocks
    host.page.click("#slot-a .hs-tok[data-index='3']")
    assert root.locator(".hs-tok[aria-pressed='true']").count() == 1
    host.page.click("#slot-a .hs-tok[data-index='3']")
    assert root.locator(".hs-tok[aria-pressed='true']").count() == 0


def test_query_key_toggle_colours_row_or_column(host: Host) -> None:
    import headscope

    attn = random_attention(1, 2, len(TOKENS), seed=3)
    root = host.mount("a", headscope.show_attention(TOKENS, attn))
    host.page.click("#slot-a .hs-tok[data-index='1']")  # lock token 1
    coloured = host.backgrounds("a")
    assert [bool(c) for c in coloured] == [True, True] + [False] * 6  # its row: keys 0 and 1

    root.locator(".hs-mode-key").click()
    assert root.locator(".hs-mode-key").get_attribute("aria-pressed") == "true"
    coloured = host.backgrounds("a")
    assert [bool(c) for c in coloured] == [False] + [True] * 7  # its column: queries 1…7
    # the colour of query 4's chip is the LUT colour of weight attn[0, 0, 4, 1]
    chip = host.page.eval_on_selector(
        "#slot-a .hs-tok[data-index='4']", "e => getComputedStyle(e).backgroundColor"
    )
    rgb = [int(v) for v in re.findall(r"\d+", chip)[:3]]
    assert close_color(rgb, host.legend_color("a", float(attn[0, 0, 4, 1])), tol=8), chip


def test_atlas_click_and_arrow_keys_switch_head(host: Host) -> None:
    import headscope

    attn = random_attention(3, 4, len(TOKENS), seed=5)
    w = headscope.show_attention(TOKENS, attn)
    root = host.mount("a", w)
    # the cell of (query 6, key 2) at native resolution: one pixel per cell
    before = host.pixel("a", ".hs-pattern-base", 2, 6)
    assert close_color(before, host.legend_color("a", float(attn[0, 0, 6, 2])))
    assert host.pixel("a", ".hs-pattern-base", 7, 2)[:3] == [248, 250, 252]  # above the diagonal: 0
    assert host.pixel("a", ".hs-pattern .hs-legend", 255, 0)[:3] == [30, 20, 87]  # weight 1

    canvas = root.locator(".hs-atlas-canvas")
    box = canvas.bounding_box()
    pitch = (box["width"] - 26) / 4
    canvas.click(position={"x": 26 + 2.5 * pitch - 1, "y": 18 + 1.5 * pitch - 1})  # layer 1, head 2
    host.page.wait_for_function("() => window.hsModels.a.get('head') === 2")
    assert host.page.evaluate("window.hsModels.a.saved.at(-1)") == {"layer": 1, "head": 2}
    host.page.wait_for_function("() => document.querySelector('#slot-a .hs-head-label').textContent === 'layer 1 · head 2'")
    assert (w.layer, w.head) == (1, 2)
    host.wait_loaded("a")
    after = host.pixel("a", ".hs-pattern-base", 2, 6)
    assert close_color(after, host.legend_color("a", float(attn[1, 2, 6, 2])))
    assert not close_color(before, after, tol=2), (before, after)
    heads = [m for m in host.kernel.received["a"] if m["type"] == "request_head"]
    assert len(heads) == 2 and heads[-1]["request_id"] != heads[0]["request_id"]
    assert {k: heads[-1][k] for k in ("layer", "head", "selected")} == {"layer": 1, "head": 2, "selected": True}

    canvas.focus()
    host.page.keyboard.press("ArrowUp")
    host.page.keyboard.press("ArrowLeft")
    host.page.wait_for_function("() => window.hsModels.a.get('head') === 1")
    assert (w.layer, w.head) == (0, 1)
    host.wait_loaded("a")
    assert close_color(host.pixel("a", ".hs-pattern-base", 2, 6), host.legend_color("a", float(attn[0, 1, 6, 2])))
    # going back to a head seen before is served from the cache: no new request
    n_requests = len(host.kernel.received["a"])
    host.page.keyboard.press("ArrowRight")
    host.page.keyboard.press("ArrowDown")
    host.page.wait_for_function("() => window.hsModels.a.get('head') === 2 && window.hsModels.a.get('layer') === 1")
    host.wait_loaded("a")
    assert len(host.kernel.received["a"]) == n_requests
    assert close_color(host.pixel("a", ".hs-pattern-base", 2, 6), after, tol=0)


def test_known_heads_list_opens_the_card_heads(host: Host) -> None:
    import headscope
    from headscope._builtin import builtin_card

    precomputed = host.mount("p", headscope.show_attention(TOKENS, random_attention(1, 2, len(TOKENS))))
    assert precomputed.locator(".hs-known").is_hidden()  # nothing known about precomputed attention

    w = headscope.show(None, "ab ab")
    root = host.mount("a", w)
    roles: dict[str, list[tuple[int, int]]] = {}
    for known in w.known_heads:  # strongest first within a role (the card's scores decide)
        roles.setdefault(known["role"], []).append((known["layer"], known["head"]))
    assert set(roles) == set(builtin_card()["roles"]) and len(roles["previous_token"]) > 1
    assert root.locator(".hs-known").is_visible()
    # one row per role, the role as given (underscores kept), its heads strongest first, and the
    # first of several marked as the strongest
    rows = root.locator(".hs-known-role")
    assert rows.count() == len(roles)
    for i, (role, heads) in enumerate(roles.items()):
        assert rows.nth(i).locator(".hs-known-label").inner_text() == role
        texts = [f"L{lh[0]} H{lh[1]}" for lh in heads]
        if len(heads) > 1:
            texts[0] += " (strongest)"
        assert rows.nth(i).locator(".hs-known-head").all_inner_texts() == texts
        assert rows.nth(i).locator(".hs-known-head[data-strongest]").count() == (len(heads) > 1)
    layer, head = roles["induction"][0]
    induction = root.get_by_role("button", name=f"Open layer {layer}, head {head} (induction)", exact=True)
    induction.click()
    host.page.wait_for_function(
        "([l, h]) => window.hsModels.a.get('layer') === l && window.hsModels.a.get('head') === h", arg=[layer, head]
    )
    assert (w.layer, w.head) == (layer, head)
    assert induction.get_attribute("aria-pressed") == "true"
    assert root.locator(".hs-known-head[aria-pressed='true']").count() == 1
    host.wait_loaded("a")
    # keyboard: focus the strongest previous-token head's button and press Enter
    (layer, head), n = roles["previous_token"][0], len(roles["previous_token"])
    previous = root.get_by_role(
        "button", name=f"Open layer {layer}, head {head} (previous_token, the strongest of {n})", exact=True
    )
    previous.focus()
    host.page.keyboard.press("Enter")
    host.page.wait_for_function(
        "([l, h]) => window.hsModels.a.get('layer') === l && window.hsModels.a.get('head') === h", arg=[layer, head]
    )
    assert (w.layer, w.head) == (layer, head)
    assert previous.get_attribute("aria-pressed") == "true" and induction.get_attribute("aria-pressed") == "false"
    # a user's roles are shown as given too, underscores and all
    w.known_heads = [{"role": "name_mover", "layer": 1, "head": 3}, {"role": "name_mover", "layer": 0, "head": 1}]
    host.page.evaluate("(state) => window.hsModels.a.applyState(state)", {"known_heads": w.known_heads})
    host.page.wait_for_function(
        "() => document.querySelector('#slot-a .hs-known-label').textContent === 'name_mover'"
    )
    assert rows.count() == 1
    assert rows.first.locator(".hs-known-head").all_inner_texts() == ["L1 H3 (strongest)", "L0 H1"]
    assert root.get_by_role("button", name="Open layer 0, head 1 (name_mover)", exact=True).is_visible()

def test_canvases_follow_a_switch_to_the_dark_theme(host: Host) -> None:
    import headscope

    w = headscope.show_attention(TOKENS, random_attention(2, 2, len(TOKENS), seed=3))
    host.mount("a", w)
    atlas_light = mean_brightness(host, "a", ".hs-atlas-canvas")
    empty_light = host.pixel("a", ".hs-pattern-base", 7, 2)  # above the diagonal: weight 0
    zero_light = host.legend_color("a", 0.0)
    assert close_color(empty_light, zero_light)
    # what JupyterLab does when the user picks a dark theme
    host.page.evaluate("() => document.body.setAttribute('data-jp-theme-light', 'false')")
    host.page.wait_for_function(
        """() => {
            const c = document.querySelector('#slot-a .hs-pattern-base');
            const [r] = c.getContext('2d').getImageData(7, 2, 1, 1).data;
            return r < 100;
        }"""
    )
    empty_dark = host.pixel("a", ".hs-pattern-base", 7, 2)
    assert not close_color(empty_dark, empty_light, tol=40), (empty_dark, empty_light)
    atlas_dark = mean_brightness(host, "a", ".hs-atlas-canvas")
    assert atlas_dark < atlas_light - 60, (atlas_dark, atlas_light)  # thumbnails repainted too


def mean_brightness(host: Host, widget_id: str, selector: str) -> float:
    return float(
        host.page.evaluate(
            """([id, sel]) => {
                const c = document.querySelector(`#slot-${id} ${sel}`);
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let sum = 0, n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) { sum += (d[i] + d[i + 1] + d[i + 2]) / 3; n++; }
                return sum / n;
            }""",
            [widget_id, selector],
        )
    )


def test_atlas_coloured_by_a_score_lists_and_opens_the_top_heads(host: Host) -> None:
    import headscope

    tokens = ["<bos>", "The", " cat", " sat", ".", " The", " cat", " sat", "."]
    w = headscope.show_attention(tokens, structured_attention(tokens, 2, 3))
    root = host.mount("a", w)
    assert root.locator(".hs-scores .hs-top-head-btn").count() == 0
    legend = root.locator(".hs-scores .hs-legend-row")
    assert legend.is_hidden()
    root.locator(".hs-score-select").select_option("induction")
    buttons = root.locator(".hs-scores .hs-top-head-btn")
    buttons.first.wait_for()
    assert host.kernel.received["a"][-1] == {"type": "request_scores"}
    scores = headscope.head_scores(w)["induction"]
    order = np.argsort(scores, axis=None)[::-1]
    best = tuple(int(i) for i in np.unravel_index(order[0], scores.shape))
    first = buttons.first.inner_text()
    assert first == f"L{best[0]} H{best[1]} · {scores[best]:.2f}", first
    assert buttons.count() == min(5, int(np.isfinite(scores).sum()))
    assert legend.is_visible()
    # the tinted atlas: the best head's cell is darker than the worst head's (light theme)
    canvas = root.locator(".hs-atlas-canvas")
    worst = tuple(int(i) for i in np.unravel_index(order[-1], scores.shape))
    def cell_pixel(layer: int, head: int) -> list[int]:
        return host.page.evaluate(
            """([id, l, h]) => {
                const c = document.querySelector(`#slot-${id} .hs-atlas-canvas`);
                const dpr = c.width / c.getBoundingClientRect().width;
                const cell = (c.getBoundingClientRect().width - 26) / 3;
                const x = Math.round((26 + h * cell + 2) * dpr), y = Math.round((18 + l * cell + 2) * dpr);
                return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
            }""",
            ["a", layer, head],
        )
    assert sum(cell_pixel(*best)[:3]) < sum(cell_pixel(*worst)[:3]) - 60
    # a top head is one click away, and hovering a thumbnail shows its scores
    buttons.first.click()
    host.page.wait_for_function(f"() => window.hsModels.a.get('layer') === {best[0]} && window.hsModels.a.get('head') === {best[1]}")
    assert (w.layer, w.head) == (int(best[0]), int(best[1]))
    canvas.hover(position={"x": 26 + 4, "y": 18 + 4})
    assert f"induction {scores[0, 0]:.2f}" in host.tooltip("a")
    # back to plain thumbnails: no list, no further request
    n = len(host.kernel.received["a"])
    root.locator(".hs-score-select").select_option("")
    assert buttons.count() == 0 and len(host.kernel.received["a"]) == n
    assert legend.is_hidden()


def test_induction_probe_button_runs_the_probe_in_the_kernel(host: Host) -> None:
    import headscope

    precomputed = host.mount("p", headscope.show_attention(TOKENS, random_attention(1, 2, len(TOKENS))))
    assert precomputed.locator(".hs-probe").is_disabled()  # no model, no probe

    w = headscope.show(None, "ab ab")
    root = host.mount("a", w)
    root.locator(".hs-probe").click()
    host.page.wait_for_function(
        "() => document.querySelectorAll('#slot-a .hs-tok').length === 101", timeout=30_000
    )
    assert {"type": "probe"} in host.kernel.received["a"]
    assert w.note.startswith("Induction probe")
    # the view moves to the probe's best head and loads it; then the status gives the note
    # (wait for that state: while the head loads, the status line says "Loading head…")
    layer, head, value = headscope.induction_probe(None, length=50, seed=0).top_heads("induction", 1)[0]
    assert (w.layer, w.head) == (layer, head)
    expect(root.locator(".hs-head-label")).to_have_text(f"layer {layer} · head {head}")
    expect(root.locator(".hs-status-text")).to_have_text(w.note)
    assert root.locator(".hs-prompt-input").input_value() == "ab ab"  # the box keeps the prompt
    # the atlas is now coloured by induction on the probe, and its best heads are listed
    assert root.locator(".hs-score-select").input_value() == "induction"
    root.locator(".hs-scores .hs-top-head-btn").first.wait_for()
    scores = headscope.head_scores(w)["induction"]
    best = np.unravel_index(np.nanargmax(scores), scores.shape)
    assert root.locator(".hs-scores .hs-top-head-btn").first.inner_text().startswith(f"L{best[0]} H{best[1]} ")
    assert f"L{layer} H{head}" in w.note  # the note ranks by the whole probe batch


def test_untrusted_token_text_renders_as_text(host: Host) -> None:
    import headscope

    evil = ["<bos>", "</script><img src=x onerror=window.__pwned=1>", "<b>bold</b>", " a\n", "\tb"]
    w = headscope.show_attention(evil, random_attention(1, 1, len(evil)))
    w.known_heads = [{"role": "</script><img src=x onerror=window.pwned=1>", "layer": 0, "head": 0}]
    root = host.mount("a", w)
    assert root.locator(".hs-tok").all_text_contents() == evil
    assert root.locator(".hs-known-label").text_content() == "</script><img src=x onerror=window.pwned=1>"
    assert root.locator("img, b").count() == 0
    host.page.hover("#slot-a .hs-tok[data-index='2']")
    assert "<b>bold</b>" in host.tooltip("a")
    host.page.wait_for_timeout(100)
    assert host.page.evaluate("typeof window.__pwned") == "undefined"
    assert host.page.evaluate("typeof window.pwned") == "undefined"
    # whitespace is made visible by decoration only
    glyphs = root.locator(".hs-tok[data-index='3'] .hs-ws").evaluate_all(
        "els => els.map(e => getComputedStyle(e, '::before').content)"
    )
    assert glyphs == ['"·"', '"⏎"']


def test_run_sends_message_and_error_keeps_tokens(host: Host) -> None:
    import headscope

    w = headscope.show_attention(TOKENS, random_attention(1, 2, len(TOKENS)))
    # the page copy may run (the Python widget has no model, so the kernel answers with an error)
    root = host.mount("a", w, can_run=True)
    box = root.locator(".hs-prompt-input")
    box.fill("The dog barked")
    root.locator(".hs-run").click()
    host.page.wait_for_function("() => window.hsModels.a.sent.some(m => m.type === 'run')")
    (sent,) = host.page.evaluate("window.hsModels.a.sent.filter(m => m.type === 'run')")
    assert (sent["prompt"], sent["superseded"]) == ("The dog barked", [])
    assert host.kernel.received["a"][-1] == sent
    status = root.locator(".hs-status")
    status.filter(has_text="precomputed attention").wait_for()
    assert status.get_attribute("data-kind") == "error"
    assert status.get_attribute("role") == "status" and status.get_attribute("aria-live") == "polite"
    assert status.is_visible() and w.status == "error"
    colour = status.evaluate("e => getComputedStyle(e).color")
    assert colour == "rgb(198, 40, 40)", colour  # the error colour, not the muted one
    assert box.input_value() == "The dog barked"
    assert root.locator(".hs-tok").all_text_contents() == TOKENS

    # Enter (without Shift) runs as well; Shift+Enter adds a line
    box.press("Shift+Enter")
    assert box.input_value() == "The dog barked\n"
    box.press("Enter")
    host.page.wait_for_function("() => window.hsModels.a.sent.filter(m => m.type === 'run').length === 2")
    assert host.page.evaluate("window.hsModels.a.sent.at(-1).prompt") == "The dog barked\n"


def test_precomputed_widget_disables_the_prompt(host: Host) -> None:
    import headscope

    root = host.mount("a", headscope.show_attention(TOKENS, random_attention(1, 1, len(TOKENS))))
    assert root.locator(".hs-prompt-input").is_disabled()
    assert root.locator(".hs-run").is_disabled()
    assert "no model to re-run" in root.locator(".hs-note").inner_text()
    assert root.locator(".hs-status").get_attribute("data-kind") == "ready"


def test_two_widgets_on_one_page_are_independent(host: Host) -> None:
    import headscope

    other = ["<bos>", "x", "y", "z"]
    wa = headscope.show_attention(TOKENS, random_attention(2, 2, len(TOKENS), seed=1))
    wb = headscope.show_attention(other, random_attention(2, 2, len(other), seed=2))
    a = host.mount("a", wa)
    b = host.mount("b", wb)
    assert b.locator(".hs-tok").all_text_contents() == other

    a.locator(".hs-atlas-canvas").focus()
    host.page.keyboard.press("ArrowDown")
    host.page.wait_for_function("() => window.hsModels.a.get('layer') === 1")
    host.wait_loaded("a")
    assert (wa.layer, wb.layer) == (1, 0)
    assert b.locator(".hs-head-label").inner_text() == "layer 0 · head 0"

    host.page.click("#slot-a .hs-tok[data-index='4']")
    assert any(host.backgrounds("a")) and not any(host.backgrounds("b"))
    assert b.locator(".hs-tok[aria-pressed='true']").count() == 0
    assert a.locator(".hs-prompt-input").get_attribute("id") != b.locator(".hs-prompt-input").get_attribute("id")
    # removing one view leaves the other working
    host.page.evaluate("window.hsCleanups.a()")
    assert host.page.locator("#slot-a .headscope").count() == 0
    host.page.hover("#slot-b .hs-tok[data-index='3']")
    assert parse_pair(host.tooltip("b"))[0] == 3


def test_1024_tokens_render_and_zoom(host: Host) -> None:
    import headscope

    n = 1024
    tokens = [f"t{i}" for i in range(n)]
    attn = random_attention(1, 2, n, seed=11)
    root = host.mount("a", headscope.show_attention(tokens, attn))
    size = host.page.eval_on_selector("#slot-a .hs-pattern-base", "c => [c.width, c.height]")
    assert size == [n, n]
    assert root.locator(".hs-tok").count() == n

    overlay = root.locator(".hs-pattern-overlay")
    box = overlay.bounding_box()
    q, k = 900, 300
    overlay.hover(position={"x": (k + 0.5) * box["width"] / n, "y": (q + 0.5) * box["height"] / n})
    query, key, shown = parse_pair(host.tooltip("a"))
    assert (query, key) == (q, k)
    assert abs(shown - attn[0, 0, q, k]) <= TOLERANCE
    # hovering a query row focuses that token in the token view
    assert root.locator(".hs-tok.hs-tok-focus").get_attribute("data-index") == str(q)

    root.locator(".hs-zoom-in").click()
    assert host.page.eval_on_selector("#slot-a .hs-pattern-base", "c => c.width") == n // 2
    assert "query 256–767 × key 256–767" in root.locator(".hs-range").inner_text()
    overlay.hover(position={"x": 1.5 * box["width"] / 512, "y": 3.5 * box["height"] / 512})
    assert parse_pair(host.tooltip("a"))[:2] == (259, 257)
    root.locator(".hs-zoom-reset").click()
    assert host.page.eval_on_selector("#slot-a .hs-pattern-base", "c => c.width") == n


def test_screenshot_for_readme(host: Host) -> None:
    """The README's picture: the built-in model's induction head on a repeated sentence."""
    import headscope
    from headscope._adapters import capture_patterns
    from headscope._builtin import builtin_card

    layer, head = builtin_card()["roles"]["induction"][0]
    text = "The cat sat on the mat. The cat sat on the mat."
    w = headscope.show(None, text, layer=layer, head=head)
    root = host.mount("a", w)
    second_c, after_first_c = 29, 6  # byte tokens after <|bos|>: "c" of the second "cat", "a" of the first
    assert [w.tokens[i] for i in (5, 6, second_c)] == ["c", "a", "c"]
    host.page.click(f"#slot-a .hs-tok[data-index='{second_c}']")  # lock the query
    host.page.hover(f"#slot-a .hs-tok[data-index='{after_first_c}']")
    query, key, shown = parse_pair(host.tooltip("a"))
    model = headscope.load_model("builtin")
    _, patterns = capture_patterns(model, model.to_tokens(text))
    expected = float(patterns[layer][0, head, second_c, after_first_c])
    assert (query, key) == (second_c, after_first_c) and abs(shown - expected) <= TOLERANCE
    # the induction head attends from the second "c" to the byte after the first "c"
    assert shown > 0.5
    # the README's picture: refreshed with HEADSCOPE_UPDATE_SCREENSHOT=1, else kept as an artifact
    # (a PNG's bytes differ between runs, so writing docs/ every run would dirty the tree)
    target = SCREENSHOT if os.environ.get("HEADSCOPE_UPDATE_SCREENSHOT") == "1" else ARTIFACT_SHOT
    target.parent.mkdir(parents=True, exist_ok=True)
    root.screenshot(path=str(target))
    assert target.stat().st_size > 10_000


# --- interventions: ablation and patching from the UI ---------------------------------------


@pytest.fixture(scope="module")
def small_model() -> Any:
    """A random-weight 2 x 4-head TransformerBridge with the byte tokenizer (fast to run)."""
    from headscope._builtin.model import ModelSpec, build_model

    model = build_model(ModelSpec(n_layers=2, n_heads=4, d_model=32, d_head=8, n_ctx=64), seed=0)
    model.eval()
    return model


def signed(value: float) -> str:
    """The widget's signed format: a real minus sign for negatives."""
    return f"{'+' if value >= 0 else '−'}{abs(value):.3f}"


def css_rgb(text: str) -> list[int]:
    return [int(v) for v in re.findall(r"\d+", text)[:3]]


def diverging_level(value: float, scale: float) -> int:
    return int(np.floor(127.5 + 127.5 * max(-1.0, min(1.0, value / scale)) + 0.5))


def test_ablate_a_head_from_the_panel(host: Host, small_model: Any) -> None:
    import headscope

    w = headscope.show(small_model, "The cat sat on the mat. The cat sat on the mat.")
    root = host.mount("a", w)
    loss_button = root.locator(".hs-mode-loss")
    assert loss_button.is_disabled() and root.locator(".hs-ablation-effect").is_hidden()
    # select layer 1, head 2 in the atlas, put it in the set, ablate
    canvas = root.locator(".hs-atlas-canvas")
    box = canvas.bounding_box()
    pitch = (box["width"] - 26) / 4
    canvas.click(position={"x": 26 + 2.5 * pitch - 1, "y": 18 + 1.5 * pitch - 1})
    host.page.wait_for_function("() => window.hsModels.a.get('head') === 2 && window.hsModels.a.get('layer') === 1")
    root.locator(".hs-ablate > summary").click()  # the section opens on demand
    toggle = root.locator(".hs-ablate-toggle")
    toggle.filter(has_text="Add L1 H2").wait_for()
    toggle.click()
    assert root.locator(".hs-ablate-remove").all_text_contents() == ["L1 H2 ×"]
    root.locator(".hs-ablate-run").click()
    effect = root.locator(".hs-ablation-effect")
    effect.wait_for(state="visible")
    assert host.kernel.received["a"][-1] == {"type": "ablate", "heads": [[1, 2]], "method": "zero", "reference": None}

    result = w.ablation_result
    expected = headscope.ablate(small_model, w.prompt, [(1, 2)])
    np.testing.assert_allclose(result.ablated_loss, expected.ablated_loss, atol=1e-5)
    total = root.locator(".hs-ablation-total").inner_text()
    assert f"mean loss {expected.clean_total:.3f} → {expected.ablated_total:.3f} ({signed(expected.total_change)})" in total, total
    assert loss_button.get_attribute("aria-pressed") == "true"

    # every token's colour is the diverging colour of its loss change; the first token has none
    change = expected.loss_change
    scale = float(np.abs(change).max())
    colours = host.backgrounds("a")
    assert colours[0] == ""
    legend = ".hs-ablation-effect .hs-legend"
    assert root.locator(".hs-ablation-effect .hs-legend-label").all_text_contents() == [
        f"−{scale:.2f}", f"+{scale:.2f}"
    ]
    for i in (int(np.argmax(change)) + 1, int(np.argmin(change)) + 1, 3):
        want = host.pixel("a", legend, diverging_level(float(change[i - 1]), scale), 0)
        assert close_color(css_rgb(colours[i]), want, tol=4), (i, colours[i], want)
    # the tooltip gives the exact values, and the top next tokens change at the hovered position
    i = int(np.argmax(np.abs(change))) + 1
    host.page.hover(f"#slot-a .hs-tok[data-index='{i}']")
    tip = host.tooltip("a")
    from display import quote_token  # the widget's display of token text

    token = f"\u2068{quote_token(w.tokens[i])}\u2069"
    line = (
        f"loss of predicting {token} (token {i}): {expected.clean_loss[i - 1]:.3f} → {expected.ablated_loss[i - 1]:.3f}"
        f" (clean → ablated, {signed(float(change[i - 1]))})"
    )
    assert line in tip, tip
    top = expected.top_next(i)
    quoted = lambda pairs: [quote_token(t) for t, _ in pairs]  # noqa: E731
    assert root.locator(".hs-next-clean .hs-next-token").all_text_contents() == quoted(top["clean"])
    assert root.locator(".hs-next-ablated .hs-next-token").all_text_contents() == quoted(top["ablated"])
    assert root.locator(".hs-next-ablated .hs-next-prob").first.inner_text() == f"{top['ablated'][0][1] * 100:.1f} %"

    # back to attention colours, then clear
    root.locator(".hs-mode-query").click()
    assert loss_button.get_attribute("aria-pressed") == "false"
    root.locator(".hs-ablate-clear").click()
    effect.wait_for(state="hidden")
    assert host.kernel.received["a"][-1] == {"type": "clear_ablation"}
    assert loss_button.is_disabled() and w.ablation_result is None


def test_an_ablation_error_shows_and_the_view_stays(host: Host, small_model: Any) -> None:
    import headscope

    w = headscope.show(small_model, "abc abc")
    root = host.mount("a", w)
    root.locator(".hs-ablate > summary").click()  # the section opens on demand
    root.locator(".hs-ablate-toggle").click()  # layer 0, head 0
    root.locator(".hs-ablate-method").select_option("reference")
    reference = root.locator(".hs-ablate-reference")
    assert reference.is_visible()
    reference.press("Enter")  # an empty reference: a clear error
    status = root.locator(".hs-status")
    status.filter(has_text="reference prompt 0 is empty").wait_for()
    assert status.get_attribute("data-kind") == "error" and w.status == "error"
    assert root.locator(".hs-tok").count() == len(w.tokens)
    # a real reference works, and Enter in the box runs it
    reference.fill("the quick brown fox")
    reference.press("Enter")
    root.locator(".hs-ablation-effect").wait_for(state="visible")
    assert status.get_attribute("data-kind") == "ready"
    assert "mean over a reference (20 tokens)" in root.locator(".hs-ablate-note").inner_text()


def test_patching_from_the_panel_and_a_heatmap_click_selects_the_head(host: Host, small_model: Any) -> None:
    import headscope

    w = headscope.show(small_model, "ab cd ab c")
    root = host.mount("a", w)
    assert root.locator(".hs-patch-result").is_hidden()
    assert root.locator(".hs-patch-clean").input_value() == "ab cd ab c"  # the current prompt
    root.locator(".hs-patch > summary").click()  # the section opens on demand
    root.locator(".hs-patch-corrupted").fill("ab xd ab c")
    root.locator(".hs-patch-correct").fill("d")
    root.locator(".hs-patch-wrong").fill("x")
    root.locator(".hs-patch-wrong").press("Enter")
    result = root.locator(".hs-patch-result")
    result.wait_for(state="visible")
    assert host.kernel.received["a"][-1] == {
        "type": "patch", "clean": "ab cd ab c", "corrupted": "ab xd ab c", "metric": "logit_diff", "answer": ["d", "x"],
    }  # fmt: skip
    expected = headscope.patch_heads(small_model, "ab cd ab c", "ab xd ab c", answer=("d", "x"))
    np.testing.assert_allclose(w.patch_result.effect, expected.effect, atol=1e-4)
    layer, head, value = expected.top_heads(1)[0]
    assert root.locator(".hs-patch-head").first.inner_text() == f"L{layer} H{head} · {value:.2f}"
    assert "largest effect" in root.locator(".hs-patch-summary").inner_text()

    # a cell's colour is the diverging colour of its effect, and a click opens that head
    heatmap = root.locator(".hs-heatmap-canvas")
    box = heatmap.bounding_box()
    pitch = (box["width"] - 26) / 4
    target = (1, 3)
    heatmap.hover(position={"x": 26 + (target[1] + 0.5) * pitch - 1, "y": 18 + (target[0] + 0.5) * pitch - 1})
    assert f"patching effect {expected.effect[target]:.3f}" in host.tooltip("a")
    heatmap.click(position={"x": 26 + (target[1] + 0.5) * pitch - 1, "y": 18 + (target[0] + 0.5) * pitch - 1})
    host.page.wait_for_function("() => window.hsModels.a.get('layer') === 1 && window.hsModels.a.get('head') === 3")
    assert (w.layer, w.head) == target
    host.page.wait_for_function("() => document.querySelector('#slot-a .hs-head-label').textContent === 'layer 1 · head 3'")
    # keyboard: arrow keys on the heatmap move the selection
    heatmap.focus()
    host.page.keyboard.press("ArrowLeft")
    host.page.wait_for_function("() => window.hsModels.a.get('head') === 2")
    assert (w.layer, w.head) == (1, 2)

    # mismatched lengths: a visible error, the heatmap stays
    root.locator(".hs-patch-corrupted").fill("ab xd ab cc")
    root.locator(".hs-patch-run").click()
    status = root.locator(".hs-status")
    status.filter(has_text="same number of tokens").wait_for()
    assert status.get_attribute("data-kind") == "error"
    assert result.is_visible() and w.patch_id == 1
    # an answer that is not one token
    root.locator(".hs-patch-corrupted").fill("ab xd ab c")
    root.locator(".hs-patch-correct").fill(" dd")
    root.locator(".hs-patch-run").click()
    status.filter(has_text="not one token").wait_for()

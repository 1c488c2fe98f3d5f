"""Tier B: the JupyterLab extension (src/) in a real JupyterLab, driven in Chromium.

The side-bar panel docks the current widget's side panel; every action taken there must reach
that widget's model in the kernel and repaint the cell output. One server for the module.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from jupyter_app import LABEXTENSION, JupyterServer, serve, write_notebook
from test_jupyter import KERNEL_IDLE, KNOWN_NOISE, _kernel, _open_and_run, _run_prompt, _wait_kernel

pytestmark = [pytest.mark.browser, pytest.mark.jupyter]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "img" / "jupyterlab.png"
ARTIFACT_SHOT = ROOT / "tests" / "e2e" / "artifacts" / "jupyterlab.png"
WIDGET_CELL = "import headscope\nw = headscope.show(None, 'ab ab ab')\nw"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    assert (LABEXTENSION / "package.json").exists(), "the Lab extension is not built: run `npm run build:lab`"
    yield from serve(tmp_path_factory.mktemp("lab-extension"))


def _open_panel(page: Any) -> Any:
    """Open the headscope panel with its command (idempotent: a click on the side-bar tab of a
    panel the first widget has already opened would close it again)."""
    page.locator(".jp-SideBar.jp-mod-right [data-id='headscope-panel']").wait_for()  # its tab
    page.evaluate("() => window.jupyterapp.commands.execute('headscope:open-panel')")
    panel = page.locator("#headscope-panel")
    panel.wait_for(state="visible")
    return panel


def _bad(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(n in e for n in KNOWN_NOISE)]


def _click_atlas_head(page: Any, atlas: Any, layer: int, head: int, n_heads: int) -> None:
    """Click the thumbnail of (layer, head): the atlas grid starts 26 px in and 18 px down."""
    box = atlas.bounding_box()
    assert box is not None
    pitch = (box["width"] - 26) / n_heads
    page.mouse.click(box["x"] + 26 + pitch * (head + 0.5), box["y"] + 18 + pitch * (layer + 0.5))


def test_the_panel_docks_the_widget_and_acts_on_its_model(lab: JupyterServer, browser_page: Any) -> None:
    page, errors = browser_page
    name = "hs_docked.ipynb"
    write_notebook(lab.root / name, WIDGET_CELL)
    widget = _open_and_run(page, f"{lab.url}/lab/tree/{name}")
    # docked is the default: the first widget opens the side bar on headscope's panel
    panel = page.locator("#headscope-panel")
    panel.wait_for(state="visible")
    items = panel.locator(".jp-headscope-pick")
    items.first.wait_for()
    assert items.count() == 1
    assert "9 tokens" in items.first.inner_text() and "ab ab ab" in items.first.inner_text()
    side = panel.locator(".hs-dock .hs-side")
    side.wait_for()
    # docked: the output keeps the header, the tokens and the pattern
    assert widget.locator(".hs-side").count() == 0 and widget.locator(".hs-status").count() == 0
    assert panel.locator(".hs-dock .hs-status").count() == 1  # the status line and errors too
    assert "hs-docked" in (widget.get_attribute("class") or "")
    assert widget.locator(".hs-tok").count() == 9 and widget.locator(".hs-pattern").count() == 1

    # a head clicked in the panel: the kernel's w.layer / w.head and the output's pattern follow
    atlas = side.locator(".hs-atlas-canvas")
    n_heads = int(_kernel(page, "print(w.n_heads)"))
    _click_atlas_head(page, atlas, 1, 2, n_heads)
    _wait_kernel(page, "print(w.layer, w.head)", "1 2")
    widget.locator(".hs-head-label", has_text="layer 1 · head 2").wait_for()
    widget.locator("[aria-label^='Attention pattern of layer 1, head 2:']").wait_for()

    # the commands act on the current widget (from the palette's registry, and by key in the panel)
    page.evaluate("() => window.jupyterapp.commands.execute('headscope:next-head')")
    _wait_kernel(page, "print(w.layer, w.head)", "1 3")
    atlas.focus()
    page.keyboard.press("Alt+ArrowLeft")
    _wait_kernel(page, "print(w.layer, w.head)", "1 2")
    widget.locator("[aria-label^='Attention pattern of layer 1, head 2:']").wait_for()

    # a prompt typed in the panel re-runs the model; the output's tokens change
    _run_prompt(page, side, "xyz!")
    texts = [t.strip() for t in widget.locator(".hs-tok").all_text_contents()]
    assert texts[1:] == ["x", "y", "z", "!"]
    assert _kernel(page, "print(w.prompt, w.run_id)") == "xyz! 2"
    items.first.filter(has_text="5 tokens").wait_for()

    # the README's picture (file browser folded, no tooltip): refreshed with
    # HEADSCOPE_UPDATE_SCREENSHOT=1, else an artifact
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    page.mouse.move(0, 0)
    target = SCREENSHOT if os.environ.get("HEADSCOPE_UPDATE_SCREENSHOT") == "1" else ARTIFACT_SHOT
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))
    assert target.stat().st_size > 10_000

    # undock: the side panel goes back into the output; dock: into the side bar again
    widget.locator(".hs-dock-toggle").click()
    widget.locator(".hs-side").wait_for()
    assert side.count() == 0 and widget.locator(".hs-status").count() == 1
    assert "hs-docked" not in (widget.get_attribute("class") or "")
    panel.locator(".jp-headscope-note").wait_for()
    widget.locator(".hs-dock-toggle").click()
    side.wait_for()
    assert widget.locator(".hs-side").count() == 0
    assert not _bad(errors), _bad(errors)


def test_empty_state_follows_the_active_notebook(lab: JupyterServer, browser_page: Any) -> None:
    page, errors = browser_page
    write_notebook(lab.root / "plain.ipynb", "1 + 1")
    write_notebook(lab.root / "hs_follow.ipynb", WIDGET_CELL)
    # no notebook and no kernel at all: the empty state, nothing thrown
    page.goto(f"{lab.url}/lab?reset")
    panel = _open_panel(page)
    panel.locator(".jp-headscope-empty").wait_for()
    page.evaluate("() => window.jupyterapp.commands.execute('headscope:next-head')")
    page.goto(f"{lab.url}/lab/tree/plain.ipynb?reset")
    page.wait_for_function(KERNEL_IDLE, polling=250, timeout=90_000)
    panel = _open_panel(page)
    empty = panel.locator(".jp-headscope-empty")
    empty.wait_for()
    assert "one line of code" in empty.inner_text() and "headscope.show(" in empty.inner_text()
    plain_id = page.evaluate("() => window.jupyterapp.shell.currentWidget.id")

    # a second notebook with a widget: the panel follows it and lists its widget
    opened = time.monotonic()
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', {path: 'hs_follow.ipynb'})")
    page.wait_for_function(
        "(id) => window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.id !== id",
        arg=plain_id,
    )
    page.wait_for_function(KERNEL_IDLE, polling=250, timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    panel.locator(".jp-headscope-pick").first.wait_for(timeout=90_000)
    panel.locator(".hs-dock .hs-side").wait_for()
    # reported, never asserted: opening the notebook (kernel start and the run included) to the
    # panel showing its widget
    print(f"notebook opened to widget docked in the panel: {time.monotonic() - opened:.1f} s")
    assert not empty.is_visible()

    # back to the plain notebook: the empty state again, and the widget keeps its own panel
    page.evaluate(f"() => window.jupyterapp.shell.activateById({json.dumps(plain_id)})")
    empty.wait_for()
    assert panel.locator(".jp-headscope-pick").count() == 0
    assert panel.locator(".hs-dock").count() == 0
    assert page.locator(".jp-OutputArea-output .headscope .hs-side").count() == 1

    # closing the widget's notebook removes its entry from the page's registry
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', {path: 'hs_follow.ipynb'})")
    panel.locator(".jp-headscope-pick").first.wait_for()
    page.evaluate(
        """async () => {
          await window.jupyterapp.commands.execute('docmanager:save');
          await window.jupyterapp.shell.currentWidget.close();
        }"""
    )
    page.wait_for_function(
        "() => (globalThis.__headscope_registry_v1 || {views: new Map()}).views.size === 0",
        polling=250,
        timeout=30_000,
    )
    empty.wait_for()
    assert not _bad(errors), _bad(errors)


LUMINANCE = """(el) => {
  const [r, g, b] = getComputedStyle(el).backgroundColor.match(/[\\d.]+/g).map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}"""

FOCUS = """() => {
  const a = document.activeElement;
  return a && a.closest('#headscope-panel') ? (a.className || a.tagName) : null;
}"""


def test_two_widgets_the_current_one_keyboard_and_dark_theme(lab: JupyterServer, browser_page: Any) -> None:
    page, errors = browser_page
    name = "hs_two.ipynb"
    write_notebook(lab.root / name, WIDGET_CELL, "v = headscope.show(None, 'hello there')\nv")
    _open_and_run(page, f"{lab.url}/lab/tree/{name}")
    outputs = page.locator(".jp-OutputArea-output .headscope")
    outputs.nth(1).locator(".hs-tok").first.wait_for(timeout=90_000)
    first, second = outputs.nth(0), outputs.nth(1)

    panel = _open_panel(page)
    items = panel.locator(".jp-headscope-pick")
    items.nth(1).wait_for()
    assert items.count() == 2
    # the newest widget is the current one: its panel is docked, the other keeps its own
    assert items.nth(1).get_attribute("aria-current") == "true"
    assert "hello" in items.nth(1).inner_text()
    panel.locator(".hs-dock .hs-side").wait_for()
    assert second.locator(".hs-side").count() == 0 and first.locator(".hs-side").count() == 1

    # using the first widget makes it the current one; the commands then act on w, not v
    first.locator(".hs-header").click()
    items.nth(0).and_(page.locator("[aria-current='true']")).wait_for()
    first.locator(".hs-side").wait_for(state="detached")
    assert second.locator(".hs-side").count() == 1
    page.evaluate("() => window.jupyterapp.commands.execute('headscope:next-layer')")
    _wait_kernel(page, "print(w.layer, w.head, v.layer, v.head)", "1 0 0 0")

    # Tab from the list walks every control of the docked panel, down to the prompt's Run
    items.nth(0).focus()
    seen: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        where = page.evaluate(FOCUS)
        if where is None:
            break
        seen.append(str(where))
    joined = " ".join(seen)
    for control in ("jp-headscope-pick", "hs-atlas-canvas", "hs-prompt-input", "hs-run", "hs-fold-title"):
        assert control in joined, (control, seen)

    # the dark theme: the panel and the docked side panel follow it
    dock = panel.locator(".hs-dock .hs-side")
    assert dock.evaluate(LUMINANCE) > 0.7
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
    page.wait_for_function(
        f"() => ({LUMINANCE})(document.querySelector('#headscope-panel .hs-dock .hs-side')) < 0.3", timeout=30_000
    )
    assert panel.evaluate(LUMINANCE) < 0.3
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'", timeout=30_000)
    assert not _bad(errors), _bad(errors)

"""Tier B: the real widget in real JupyterLab 4 and Notebook 7, driven in Chromium.

Each test opens a notebook, runs it, switches the head from the side panel and edits the prompt,
then asks the kernel what it saw: the browser and the kernel must agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from jupyter_app import JupyterServer, comms_over_subshells, serve, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.jupyter]

#: Messages Jupyter itself logs on a clean load (not ours).
KNOWN_NOISE = (
    "reading 'schema'",
    "favicon",
    "Failed to load resource",
    "Command 'filebrowser:open-path' not registered",  # Notebook 7 after a Lab session
)

KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""

EXECUTE = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code });
  let out = '';
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === 'stream') out += msg.content.text;
    if (msg.header.msg_type === 'error') out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue;
  };
  await future.done;
  return out;
}"""


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    yield from serve(tmp_path_factory.mktemp("jupyter"))


def _open_and_run(page: Any, url: str) -> Any:
    if "/lab/" in url:
        url += "?reset"  # a fresh workspace: no notebooks of earlier tests restored in tabs
    page.goto(url)
    page.wait_for_function(KERNEL_IDLE, polling=250, timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # the notebook just opened (Lab may restore other notebooks from the workspace in tabs)
    panel = page.locator(f"[id='{page.evaluate('() => window.jupyterapp.shell.currentWidget.id')}']")
    widget = panel.locator(".jp-OutputArea-output .headscope")
    failed = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    widget.locator(".hs-tok").first.or_(failed).first.wait_for(timeout=90_000)
    if failed.count():
        pytest.fail(f"the notebook raised: {failed.first.inner_text()}")
    return widget


def _side(page: Any, widget: Any, app: str = "lab") -> Any:
    """Where the widget's side panel is: docked in JupyterLab's side bar (the default with
    headscope's extension), in the cell output in Notebook 7."""
    if app != "lab":
        return widget
    dock = page.locator(".jp-headscope-panel .hs-dock")
    dock.wait_for(timeout=30_000)
    return dock


def _run_prompt(page: Any, side: Any, prompt: str) -> Any:
    """Type ``prompt`` in the side panel's box and press Enter; wait until the output shows its
    tokens (BOS + one per byte). Returns the box."""
    box = side.locator(".hs-prompt-input")
    box.fill(prompt)
    box.press("Enter")
    page.wait_for_function(
        "(n) => document.querySelectorAll('.jp-OutputArea-output .headscope .hs-tok').length === n",
        arg=len(prompt.encode()) + 1,
        polling=250,
        timeout=60_000,
    )
    return box


def _kernel(page: Any, code: str) -> str:
    return str(page.evaluate(EXECUTE, code)).strip()


def _wait_kernel(page: Any, code: str, expected: str, timeout_ms: int = 10_000) -> None:
    """Poll the kernel until ``code`` prints ``expected``: widget updates from the browser are
    throttled while the kernel is busy, so an execute request can overtake the last one."""
    seen = ""
    for _ in range(timeout_ms // 250):
        seen = _kernel(page, code)
        if seen == expected:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"the kernel printed {seen!r}, expected {expected!r}")


@pytest.mark.parametrize("app", ["lab", "notebooks"])
def test_widget_in_jupyter(app: str, jupyter: JupyterServer, browser_page: Any, tmp_path: Path) -> None:
    page, errors = browser_page
    name = f"hs_{app}.ipynb"
    write_notebook(
        jupyter.root / name,
        "import headscope\nw = headscope.show(None, 'ab ab ab')\nw",
    )
    url = f"{jupyter.url}/lab/tree/{name}" if app == "lab" else f"{jupyter.url}/notebooks/{name}"
    widget = _open_and_run(page, url)
    tokens = widget.locator(".hs-tok")
    assert tokens.count() == 9  # BOS + 8 bytes

    # switch the head from the side panel's atlas with the keyboard
    side = _side(page, widget, app)
    atlas = side.locator(".hs-atlas-canvas")
    atlas.focus()
    for key in ("ArrowDown", "ArrowRight", "ArrowRight"):
        page.keyboard.press(key)
    assert "Selected: layer 1, head 2." in (atlas.get_attribute("aria-label") or "")
    _wait_kernel(page, "print(w.layer, w.head)", "1 2")

    # edit the prompt: Enter re-runs the model in the kernel, the view shows the new tokens
    box = _run_prompt(page, side, "xyz!")
    texts = [t.strip() for t in tokens.all_text_contents()]
    assert texts[1:] == ["x", "y", "z", "!"]
    assert _kernel(page, "print(w.prompt, w.run_id, w.history)") == "xyz! 2 ['ab ab ab']"

    # a prompt too long for the context: the error shows, the prompt and tokens stay
    box.fill("z" * 300)
    box.press("Enter")
    status = side.locator(".hs-status-text")
    status.filter(has_text="context holds 256").wait_for(timeout=60_000)
    assert box.input_value() == "z" * 300
    assert tokens.count() == 5
    assert _kernel(page, "print(w.status)") == "error"

    bad = [e for e in errors if not any(n in e for n in KNOWN_NOISE)]
    assert not bad, bad


@pytest.fixture(scope="module", params=["perCommTarget", "disabled"])
def lab_by_subshells(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """JupyterLab with comms over subshells on (the 4.6 default) and off."""
    yield from serve(tmp_path_factory.mktemp(f"lab-{request.param}"), comms_over_subshells(request.param))


def test_prompts_typed_quickly_all_arrive_and_the_last_is_shown(lab_by_subshells: JupyterServer, browser_page: Any) -> None:
    page, errors = browser_page
    name = "hs_burst.ipynb"
    write_notebook(lab_by_subshells.root / name, "import headscope\nw = headscope.show(None, 'ab ab ab')\nw")
    widget = _open_and_run(page, f"{lab_by_subshells.url}/lab/tree/{name}")
    box = _side(page, widget).locator(".hs-prompt-input")
    prompts = [f"burst {i}" for i in range(6)]
    for prompt in prompts:  # as fast as the page takes them: runs are in flight meanwhile
        box.fill(prompt)
        box.press("Enter")
    _wait_kernel(page, "print(w.prompt, w.status)", f"{prompts[-1]} ready", timeout_ms=60_000)
    history = _kernel(page, "print('|'.join(w.history))").split("|")
    assert set(prompts[:-1]) <= set(history), history  # ran, or replaced and remembered
    assert box.input_value() == prompts[-1]
    texts = [t.strip() for t in widget.locator(".hs-tok").all_text_contents()]
    assert "".join(texts[1:]) == prompts[-1].replace(" ", "")
    bad = [e for e in errors if not any(n in e for n in KNOWN_NOISE)]
    assert not bad, bad


def test_a_kernel_restart_is_said_and_nothing_throws(jupyter: JupyterServer, browser_page: Any) -> None:
    page, errors = browser_page
    name = "hs_restart.ipynb"
    write_notebook(jupyter.root / name, "import headscope\nw = headscope.show(None, 'ab ab ab')\nw")
    widget = _open_and_run(page, f"{jupyter.url}/lab/tree/{name}")
    widget.locator(".hs-pattern[aria-busy='false']").wait_for()
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    side = _side(page, widget)
    status = side.locator(".hs-status-text")
    status.filter(has_text="Kernel restarted or disconnected").wait_for(timeout=60_000)
    assert side.locator(".hs-status").get_attribute("data-kind") == "error"
    assert side.locator(".hs-prompt-input").is_disabled()
    assert side.locator(".hs-run").is_disabled()
    # the atlas no longer switches heads (the header and the pattern stay together)
    atlas = side.locator(".hs-atlas-canvas")
    atlas.focus()
    page.keyboard.press("ArrowDown")
    assert widget.locator(".hs-head-label").inner_text() == "layer 0 · head 0"
    # hover still works on the head the view holds
    widget.locator(".hs-tok").nth(3).hover()
    assert "weight" in widget.locator(".hs-tooltip").inner_text()
    bad = [e for e in errors if not any(n in e for n in KNOWN_NOISE)]
    assert not bad, bad

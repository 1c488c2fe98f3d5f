"""JupyterLab with headscope's extension: seconds from opening a notebook to the side-bar panel
showing its widget, in Debian's Chromium.

    python benchmarks/lab.py
    python benchmarks/lab.py --jupyter-python /path/to/venv/bin/python   # another JupyterLab

The server runs with ``--jupyter-python`` (default: this Python), so a virtual environment with
another JupyterLab (``pip install "jupyterlab==4.2.*" ipywidgets``) checks the lowest supported
version; the kernel is always this Python, which has headscope. The checkout's built extension
and anywidget's are put on the server's JUPYTER_PATH.

Each repeat opens a fresh page on a notebook with one cell, ``headscope.show(None, "ab ab ab")``,
and times: navigation to the kernel idle, Run All to the widget's tokens in the output, and Run
All to the panel listing the widget with its docked side panel; then it runs the command
``headscope:next-head`` and waits for the output to follow. Prints one JSON line per repeat, with
the JupyterLab version and the console's errors and warnings that name headscope.

``--switch-tokens 1024`` then opens a second notebook that shows a random-weight model of GPT-2
Small's geometry (``benchmarks/kernel.py``) on a prompt of that many tokens and times
``--switches`` head switches through ``headscope:next-head``, each to a head the front end has
not seen: from the command to the output's pattern view showing the new head drawn
(``aria-busy`` false), and to the next animation frame. This is the uncached switch over
Jupyter's own comm (binary buffers through the server's websocket), timed inside the page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from jupyter_app import LABEXTENSION, free_port, write_notebook  # noqa: E402

KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""


def start(base: Path, python: str) -> tuple[subprocess.Popen[bytes], str]:
    data = base / "data"
    shutil.copytree(LABEXTENSION, data / "labextensions" / "headscope")
    anywidget = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "anywidget"
    shutil.copytree(anywidget, data / "labextensions" / "anywidget")
    kernel = data / "kernels" / "python3"
    kernel.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python 3", "language": "python"}
    (kernel / "kernel.json").write_text(json.dumps(spec))
    (base / "notebooks").mkdir()
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = free_port()
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", JUPYTER_PATH=str(data), JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
    )
    proc = subprocess.Popen(
        [python, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={base / 'notebooks'}", "--LabApp.expose_app_in_browser=True"],
        env=env, stdout=(base / "server.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError((base / "server.log").read_text()[-3000:])


SWITCHES = """async (n) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
  const out = document.querySelector('.jp-OutputArea-output .headscope');
  const shown = (label) => {
    const done = () => {
      const p = out.querySelector('.hs-pattern');
      const l = out.querySelector('.hs-head-label');
      return p && l && l.textContent === label && p.getAttribute('aria-busy') === 'false';
    };
    return new Promise((resolve) => {
      if (done()) return resolve(performance.now());
      const o = new MutationObserver(() => { if (done()) { o.disconnect(); resolve(performance.now()); } });
      o.observe(out, { subtree: true, childList: true, attributes: true, characterData: true });
    });
  };
  const rows = [];
  for (let i = 0; i < n; i++) {
    await frame();
    const m = /layer (\\d+) · head (\\d+)/.exec(out.querySelector('.hs-head-label').textContent);
    const want = `layer ${m[1]} · head ${Number(m[2]) + 1}`;
    const t0 = performance.now();
    const ready = shown(want);
    await window.jupyterapp.commands.execute('headscope:next-head');
    const drawn = await ready;
    const painted = await frame();
    rows.push({ drawn_ms: drawn - t0, painted_ms: painted - t0 });
  }
  return rows;
}"""


def switch_cell(n_tokens: int) -> str:
    return "\n".join([
        "import sys, torch",
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})",
        "from kernel import bench_prompt, build_geometry",
        "import headscope",
        "torch.set_num_threads(2)",
        f"model = build_geometry(12, 12, 64, 768, 3072, {n_tokens})",
        f"w = headscope.show(model, bench_prompt({n_tokens}))",
        "w",
    ])


def time_switches(browser: Any, url: str, folder: Path, n_tokens: int, switches: int) -> dict[str, Any]:
    """Uncached head switches in a notebook showing GPT-2 Small's geometry at ``n_tokens``."""
    write_notebook(folder / "switch.ipynb", switch_cell(n_tokens))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{url}/lab/tree/switch.ipynb?reset")
    page.wait_for_function(KERNEL_IDLE, polling=100, timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.locator(".jp-OutputArea-output .hs-pattern[aria-busy='false']").first.wait_for(timeout=600_000)
    page.locator("#headscope-panel .hs-dock .hs-side").wait_for(timeout=120_000)
    rows = page.evaluate(SWITCHES, switches)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    page.close()
    drawn = sorted(r["drawn_ms"] for r in rows)
    painted = sorted(r["painted_ms"] for r in rows)
    return {
        "switch_tokens": n_tokens, "switches": len(rows),
        "uncached_switch_drawn_ms": {"median": statistics.median(drawn), "min": drawn[0], "max": drawn[-1]},
        "uncached_switch_painted_ms": {"median": statistics.median(painted), "min": painted[0], "max": painted[-1]},
        "load_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="notebooks opened one after another on one server")
    parser.add_argument("--jupyter-python", default=sys.executable)
    parser.add_argument("--switch-tokens", type=int, default=0, help="time uncached head switches at this many tokens")
    parser.add_argument("--switches", type=int, default=10, help="at most 11: heads 1-11 of layer 0")
    args = parser.parse_args()
    if not 1 <= args.switches <= 11:
        parser.error("--switches must be 1-11 (the heads after head 0 of layer 0)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(Path(tmp), args.jupyter_python)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
                )
                for i in range(args.repeats):
                    name = f"bench{i}.ipynb"
                    write_notebook(Path(tmp) / "notebooks" / name, "import headscope\nw = headscope.show(None, 'ab ab ab')\nw")
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    console: list[str] = []
                    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                    begin = time.perf_counter()
                    page.goto(f"{url}/lab/tree/{name}?reset")
                    page.wait_for_function(KERNEL_IDLE, polling=100, timeout=120_000)
                    idle = time.perf_counter()
                    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                    page.locator(".jp-OutputArea-output .headscope .hs-tok").first.wait_for(timeout=120_000)
                    output = time.perf_counter()
                    page.locator("#headscope-panel .jp-headscope-pick").first.wait_for(timeout=120_000)
                    page.locator("#headscope-panel .hs-dock .hs-side").wait_for(timeout=120_000)
                    panel = time.perf_counter()
                    page.evaluate("() => window.jupyterapp.commands.execute('headscope:next-head')")
                    page.locator(".jp-OutputArea-output .hs-head-label", has_text="layer 0 · head 1").wait_for(timeout=60_000)
                    ours = [m for m in console if "headscope" in m.lower() and ("error" in m.lower() or "warn" in m.lower())]
                    print(json.dumps({
                        "jupyterlab": page.evaluate("() => window.jupyterapp.version"),
                        "open_to_kernel_idle_s": round(idle - begin, 2),
                        "run_to_output_s": round(output - idle, 2),
                        "run_to_panel_s": round(panel - idle, 2),
                        "open_to_panel_s": round(panel - begin, 2),
                        "headscope_console_problems": ours,
                        "load_1min": round(os.getloadavg()[0], 2),
                    }), flush=True)
                    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
                    page.close()
                if args.switch_tokens:
                    row = time_switches(browser, url, Path(tmp) / "notebooks", args.switch_tokens, args.switches)
                    print(json.dumps(row), flush=True)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()

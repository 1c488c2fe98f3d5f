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
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="notebooks opened one after another on one server")
    parser.add_argument("--jupyter-python", default=sys.executable)
    args = parser.parse_args()
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
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()

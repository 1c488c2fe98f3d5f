"""A private JupyterLab / Notebook 7 server on 127.0.0.1 for the browser tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import nbformat

#: The checkout's prebuilt JupyterLab extension (``npm run build:lab`` or ``pip install -e .``).
LABEXTENSION = Path(__file__).resolve().parents[2] / "python" / "headscope" / "labextension"

#: JupyterLab settings that keep the UI quiet: no news or update popups.
_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


class JupyterServer:
    def __init__(self, base: Path, settings_overrides: dict[str, dict[str, object]] | None = None) -> None:
        self.root = base / "notebooks"
        self.root.mkdir(parents=True)
        settings = base / "settings"
        for name, value in {**_SETTINGS, **(settings_overrides or {})}.items():
            target = settings / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(value))
        # the checkout's Lab extension, ahead of any installed copy (JUPYTER_PATH comes first)
        data = base / "data"
        if (LABEXTENSION / "package.json").exists():
            shutil.copytree(LABEXTENSION, data / "labextensions" / "headscope")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            HF_HUB_OFFLINE="1",
            JUPYTER_CONFIG_DIR=str(base / "config"),
            JUPYTER_PATH=os.pathsep.join(p for p in (str(data), os.environ.get("JUPYTER_PATH", "")) if p),
            JUPYTER_RUNTIME_DIR=str(base / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
            PYTHONWARNINGS="ignore",
        )
        self.log = (base / "server.log").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
                f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                "--ServerApp.ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=",
                "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={self.root}",
                "--LabApp.expose_app_in_browser=True",
                "--JupyterNotebookApp.expose_app_in_browser=True",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(base / "server.log")

    def _wait_ready(self, log: Path, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter exited early:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter did not start in {timeout}s:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


#: JupyterLab 4.6 sends widget messages to a kernel subshell by default ("perCommTarget");
#: "disabled" sends them to the main shell, as before.
def comms_over_subshells(mode: str) -> dict[str, dict[str, object]]:
    return {"@jupyterlab/apputils-extension/kernels-settings.jupyterlab-settings": {"commsOverSubshells": mode}}


def serve(base: Path, settings_overrides: dict[str, dict[str, object]] | None = None) -> Iterator[JupyterServer]:
    server = JupyterServer(base, settings_overrides)
    try:
        yield server
    finally:
        server.stop()

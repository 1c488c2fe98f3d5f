"""The ``headscope`` command line: ``headscope demo`` runs the example notebook offline."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

DEMO = "demo.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def kernel_config(socket_dir: Path, *, posix: bool = os.name == "posix") -> Any:
    """The traitlets config for the demo's kernel: never plain-text TCP.

    By default jupyter_client starts a kernel on TCP without encryption, and ipykernel (7.4 and
    later) then warns about it on stderr. The demo's kernel is a child of this process, so on
    POSIX it talks over IPC (Unix sockets in ``socket_dir``, which should be private to the user)
    and opens no port at all. Where IPC is missing (Windows), it asks jupyter_client to provision
    CurveZMQ keys (``transport_encryption="auto"``) when jupyter_client and pyzmq support it.
    """
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    config = Config()
    if posix:
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(socket_dir / "kernel")
    else:
        import zmq

        if KernelManager.class_traits().get("transport_encryption") is not None and zmq.has("curve"):
            config.KernelManager.transport_encryption = "auto"
    return config


def _demo(out: Path, lab: bool, timeout: int) -> int:
    import nbformat
    from nbclient import NotebookClient

    source = resources.files("headscope") / "examples" / DEMO
    notebook = nbformat.reads(source.read_text(encoding="utf-8"), as_version=4)
    print("Running the example notebook on headscope's built-in model (no network needed) ...")
    with tempfile.TemporaryDirectory(prefix="headscope-kernel-") as sockets:  # mode 0700
        client = NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": "."}},
            config=kernel_config(Path(sockets)),
            # No widget state in the file: with it, nbconvert and nbviewer would try to draw the
            # widgets from a CDN (and show nothing offline) instead of the static pictures that
            # every widget output carries. A headscope widget cannot draw without its kernel.
            store_widget_state=False,
        )
        client.execute()
    nbformat.write(notebook, str(out))
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                print(output["text"], end="")
    pictures = sum(
        1
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {}) and WIDGET_VIEW in output.get("data", {})
    )
    print(
        f"\nSaved the executed notebook to {out}: its printed results and, for each of its {pictures}"
        " widgets, a static picture of the head it showed (PNG and script-free HTML), which viewers"
        " without a kernel show (jupyter nbconvert, nbviewer). The interactive widgets need a live"
        " kernel: open it in JupyterLab and run all cells to get them back."
    )
    if lab:
        jupyter = shutil.which("jupyter")
        if jupyter is None:
            print("jupyter is not installed: pip install jupyterlab", file=sys.stderr)
            return 1
        return subprocess.call([jupyter, "lab", str(out)])
    print(f"Open it with: jupyter lab {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="headscope", description="headscope attention widget")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the example notebook on the built-in model")
    demo.add_argument("--out", type=Path, default=Path("headscope-demo.ipynb"))
    demo.add_argument("--lab", action="store_true", help="open the result in JupyterLab")
    demo.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args.out, args.lab, args.timeout)
    return 2  # unreachable: argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())

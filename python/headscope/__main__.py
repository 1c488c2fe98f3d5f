"""The ``headscope`` command line: ``headscope demo`` runs the example notebook offline."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

DEMO = "demo.ipynb"


def _demo(out: Path, lab: bool, timeout: int) -> int:
    import nbformat
    from nbclient import NotebookClient

    source = resources.files("headscope") / "examples" / DEMO
    notebook = nbformat.reads(source.read_text(encoding="utf-8"), as_version=4)
    print("Running the example notebook on headscope's built-in model (no network needed) ...")
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": "."}}
    )
    client.execute()
    nbformat.write(notebook, str(out))
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                print(output["text"], end="")
    print(f"\nSaved the executed notebook, widgets included, to {out}")
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

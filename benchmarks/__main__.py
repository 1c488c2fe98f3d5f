"""``python -m benchmarks``: headscope against CircuitsVis, on CPU, in one run.

Writes ``results.json`` (every sample, with median, min and max, and the machine) and
``results.md`` (the tables) to ``--out``. See docs/benchmarks.md.

    python -m benchmarks                                # 128, 512, 1024 tokens, 3 repeats
    python -m benchmarks --sizes 128,512 --repeats 5
    python -m benchmarks --quick                        # tiny sizes, one repeat (a smoke run)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # kernel.py and cvbuild.py also run as plain scripts

from benchmarks import browser, report  # noqa: E402
from benchmarks import kernel as kbench  # noqa: E402

BUILTIN_N_CTX = 256


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.replace(" ", "").split(",") if x]


def _meminfo_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except Exception:
        return None


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _meminfo_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in (
            "headscope", "torch", "transformer-lens", "transformers", "circuitsvis", "playwright",
            "numpy")},
        "git_commit": _git_commit(),
    }


class Loads:
    """Load averages at the start and end of the run and between its phases."""

    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []

    def mark(self, phase: str) -> None:
        one, five, fifteen = os.getloadavg()
        self.samples.append({"phase": phase, "utc": _now(), "load_1m": one, "load_5m": five,
                             "load_15m": fifteen})


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def kernel_rows(args: argparse.Namespace, plan: list[tuple[str, int]], models: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for kind, n in plan:
        _log(f"kernel: {kind}, {n} tokens")
        if args.in_process:
            row: dict[str, Any] = {"model": kind}
            for what in ("forward", "widget"):
                row.update(kbench.measure(n, what, args.repeats, args.layers, args.threads, kind,
                                          model=models[kind]))
            rows.append(kbench.finish_row(row))
        else:
            rows.append(kbench.measure_size(n, args.repeats, args.layers, args.threads, kind))
    return rows


def circuitsvis_builds(args: argparse.Namespace, sizes: list[int], models: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        _log(f"CircuitsVis build: {n} tokens")
        out = args.out / f"circuitsvis-{n}.html"
        if args.in_process:
            import cvbuild

            rows.append(cvbuild.measure(n, args.repeats, out, args.layers, args.threads,
                                        model=models["gpt2"]))
        else:
            cmd = [sys.executable, str(HERE / "cvbuild.py"), "--one", str(n), "--repeats",
                   str(args.repeats), "--layers", str(args.layers), "--threads", str(args.threads),
                   "--out", str(out)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(done.strip().splitlines()[-1]))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="headscope against CircuitsVis, on CPU.")
    parser.add_argument("--sizes", type=_ints, default=[128, 512, 1024],
                        help="prompt lengths in tokens for the GPT-2-geometry model (default 128,512,1024)")
    parser.add_argument("--builtin-sizes", type=_ints, default=None,
                        help=f"prompt lengths for the built-in model (default: the sizes that fit its n_ctx {BUILTIN_N_CTX}, plus {BUILTIN_N_CTX})")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (default 3)")
    parser.add_argument("--layers", type=int, default=12, help="layers of the GPT-2-geometry model (default 12)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="output folder (default benchmarks/results)")
    parser.add_argument("--cv-limit", type=float, default=120.0,
                        help="seconds to wait for CircuitsVis's page to paint before recording '> limit' (default 120)")
    parser.add_argument("--no-circuitsvis", action="store_true", help="skip CircuitsVis")
    parser.add_argument("--no-browser", action="store_true", help="skip the browser measurements")
    parser.add_argument("--keep-html", action="store_true", help="keep CircuitsVis's HTML files (large)")
    parser.add_argument("--in-process", action="store_true",
                        help="measure the kernel in this process (faster; peak memory is then shared)")
    parser.add_argument("--scale", type=lambda t: [c for c in t.split(",") if c], default=[],
                        help=f"also run the scale table for these cases, comma-separated ({', '.join(kbench.SCALE_CASES)}); "
                             "each peak in its own process")
    parser.add_argument("--atlas", type=lambda t: [c for c in t.split(",") if c], default=[],
                        help="also time the atlas of many heads in Chromium for these cases, comma-separated "
                             "LAYERSxHEADS@TOKENS (e.g. 32x32@128), on synthetic attention (headscope.show_attention)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 32 tokens, 1 layer, 1 repeat, in one process")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [32]
        args.builtin_sizes = [32]
        args.repeats = 1
        args.layers = 1
        args.in_process = True
        args.cv_limit = min(args.cv_limit, 60.0)
    if args.builtin_sizes is None:
        fits = [n for n in args.sizes if n <= BUILTIN_N_CTX]
        args.builtin_sizes = sorted(set(fits + [BUILTIN_N_CTX]))
    too_long = [n for n in args.builtin_sizes if n > BUILTIN_N_CTX]
    if too_long:
        parser.error(f"the built-in model's context holds {BUILTIN_N_CTX} tokens; drop {too_long}")
    if not args.no_circuitsvis:
        try:
            import circuitsvis  # noqa: F401
        except ImportError:
            parser.error('CircuitsVis is not installed: pip install -e ".[bench]" (or pass --no-circuitsvis)')
    args.out.mkdir(parents=True, exist_ok=True)

    import torch

    torch.set_num_threads(args.threads)
    started = time.monotonic()
    loads = Loads()
    loads.mark("start")
    info = machine()
    info["started_utc"] = _now()
    _log(f"machine: {info['cpu_count']} CPUs, {info['memory_gib']:.1f} GiB, load {os.getloadavg()[0]:.2f}")

    plan = [("gpt2", n) for n in args.sizes] + [("builtin", n) for n in args.builtin_sizes]
    models: dict[str, Any] = {}
    if args.in_process or not args.no_browser:
        models = {"gpt2": kbench.build_model("gpt2", args.layers), "builtin": kbench.build_model("builtin")}

    kernel = kernel_rows(args, plan, models)
    loads.mark("after kernel")
    scale = []
    for case in args.scale:
        if case not in kbench.SCALE_CASES:
            parser.error(f"unknown scale case {case!r}; expected some of {', '.join(kbench.SCALE_CASES)}")
        _log(f"kernel scale: {case}")
        scale.append(kbench.scale_row(case, args.repeats, args.threads))
    if scale:
        loads.mark("after kernel scale")
    builds = [] if args.no_circuitsvis else circuitsvis_builds(args, args.sizes, models)
    loads.mark("after CircuitsVis build")

    pages: list[dict[str, Any]] = []
    atlas_rows: list[dict[str, Any]] = []
    cv_pages: list[dict[str, Any]] = []
    chromium_version = None
    if not args.no_browser:
        from headscope import AttentionWidget
        from headscope._adapters import run_model

        small = args.quick
        with browser.serve(extra=args.out.resolve()) as base, browser.playwright() as p:
            with browser.chromium(p) as b:
                chromium_version = browser.chromium_version(b)
                for kind, n in plan:
                    _log(f"browser, headscope: {kind}, {n} tokens")
                    model = models[kind]
                    widget = AttentionWidget(run_model(model, kbench.bench_prompt(n)), model=model)
                    row = browser.headscope_page(b, base, widget, args.repeats,
                                                 switches=3 if small else 6, hovers=4 if small else 10)
                    widget.close()
                    del widget
                    pages.append({"model": kind, "tokens": n, **row})
                loads.mark("after headscope browser")
                for case in args.atlas:
                    _log(f"browser, headscope atlas: {case}")
                    widget = browser.synthetic_widget(case)
                    atlas_rows.append({"case": case, **browser.atlas_page(b, base, widget, args.repeats,
                                                                          steps=6 if small else 30)})
                    widget.close()
                if atlas_rows:
                    loads.mark("after headscope atlas")
            for build in builds:
                _log(f"browser, CircuitsVis: {build['tokens']} tokens (limit {args.cv_limit:.0f} s)")
                row = browser.circuitsvis_page(p, base, Path(build["page"]), args.repeats, args.cv_limit,
                                               hovers=2 if small else 6)
                cv_pages.append({"tokens": build["tokens"], **row})
                if not args.keep_html:
                    Path(build["page"]).unlink(missing_ok=True)
        loads.mark("after CircuitsVis browser")

    loads.mark("end")
    info["chromium"] = chromium_version
    info["finished_utc"] = _now()
    info["wall_s"] = time.monotonic() - started
    info["loads"] = loads.samples
    results = {
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {"sizes": args.sizes, "builtin_sizes": args.builtin_sizes, "repeats": args.repeats,
                     "layers": args.layers, "threads": args.threads, "cv_limit_s": args.cv_limit,
                     "quick": args.quick, "in_process": args.in_process},
        "machine": info,
        "kernel": kernel,
        "kernel_scale": scale,
        "circuitsvis_build": builds,
        "browser_headscope": pages,
        "browser_atlas": atlas_rows,
        "browser_circuitsvis": cv_pages,
    }
    results["comparison"] = report.comparison(results)
    results["targets"] = report.targets(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = report.markdown(results)
    if scale:
        table += ("\n## headscope, kernel side at scale (random weights; each peak in its own process)\n\n"
                  + kbench.scale_table(scale) + "\n")
    if atlas_rows:
        table += "\n## headscope, the atlas of many heads in Chromium (ms)\n\n" + report.atlas_table(atlas_rows) + "\n"
    (args.out / "results.md").write_text(table, encoding="utf-8")
    print(table)
    _log(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'} in {info['wall_s']:.0f} s")


if __name__ == "__main__":
    main()

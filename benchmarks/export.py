"""The offline HTML export (``w.save_html``): file size, build time, and the time from opening
the file in Chromium to the first painted pattern. See docs/benchmarks.md, "Offline export".

    python benchmarks/export.py                  # both cases, 5 opens each
    python benchmarks/export.py --repeats 9 --out /tmp/export-bench

Cases:

- ``peaked-12x12@1024``: 12 x 12 heads of 1024 tokens, every head exported; each head is causal
  softmax rows of logits ~ N(0, 3^2), as peaked as real heads (random-weight models give nearly
  uniform rows, which compress far better and would flatter the size);
- ``builtin@256``: headscope's built-in model (2 x 8 heads) on a 256-token prompt, every head.

Each open is a fresh browser context on the ``file://`` URL, timed inside the page from
navigation start: *drawn* when the pattern view stops being busy (the first head is on its
canvas), *painted* at the next animation frame. Every request the page makes is recorded; there
must be none beyond the document. Numbers only: nothing here is an assertion on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.browser import checked_page, chromium, chromium_version, playwright, stats  # noqa: E402

#: Installed before the page's own scripts: marks the first pattern drawn and painted.
PROBE = """
(() => {
  const marks = (window.__hsExportBench = {});
  const check = () => {
    const p = document.querySelector('.hs-pattern');
    if (marks.drawn === undefined && p !== null && p.getAttribute('aria-busy') === 'false') {
      marks.drawn = performance.now();
      requestAnimationFrame(() => { marks.painted = performance.now(); });
    }
  };
  new MutationObserver(check).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['aria-busy'],
  });
  document.addEventListener('DOMContentLoaded', () => { marks.parsed = performance.now(); });
})();
"""
PROMPT = ("The cat sat on the mat and then it ran away. " * 6)[:255]  # 256 tokens with BOS


def peaked_layers(n_layers: int, n_heads: int, n: int, seed: int = 0) -> list[Any]:
    """Causal softmax rows of logits ~ N(0, 3^2), ``[head, query_pos, key_pos]`` float32 per layer:
    as peaked as real heads (random-weight models give nearly uniform rows, which compress much
    better). Also the data of the export's byte budgets in tests/python/test_export.py."""
    import numpy as np

    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(n_layers):
        logits = rng.standard_normal(size=(n_heads, n, n), dtype=np.float32) * np.float32(3.0)
        logits[:, ~np.tri(n, dtype=bool)] = -np.inf
        logits -= logits.max(-1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(-1, keepdims=True)
        layers.append(logits)
    return layers


def peaked_widget(n_layers: int = 12, n_heads: int = 12, n: int = 1024, seed: int = 0) -> Any:
    import headscope

    return headscope.show_attention([f" t{i}" for i in range(n)], peaked_layers(n_layers, n_heads, n, seed))


def builtin_widget() -> Any:
    import headscope

    return headscope.show(None, PROMPT)


def build(widget: Any, path: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    widget.save_html(path)
    seconds = time.perf_counter() - t0
    heads = widget.n_layers * widget.n_heads
    return {"tokens": len(widget.tokens), "heads": heads, "bytes": path.stat().st_size, "build_s": seconds}


def open_times(browser: Any, path: Path, repeats: int) -> dict[str, Any]:
    url = path.as_uri()
    drawn, painted, parsed, requests = [], [], [], []
    for _ in range(repeats):
        with checked_page(browser, "the export") as page:
            page.on("request", lambda r: requests.append(r.url))
            page.add_init_script(PROBE)
            page.goto(url, wait_until="commit")
            page.wait_for_function("() => window.__hsExportBench && window.__hsExportBench.painted !== undefined",
                                   timeout=120_000)
            page.wait_for_function("() => window.__hsExportBench.parsed !== undefined", timeout=120_000)
            marks = page.evaluate("window.__hsExportBench")
            drawn.append(marks["drawn"])
            painted.append(marks["painted"])
            parsed.append(marks["parsed"])
    other = [r for r in requests if r != url]
    return {
        "first_pattern_drawn_ms": stats(drawn),
        "first_pattern_painted_ms": stats(painted),
        "dom_content_loaded_ms": stats(parsed),
        "requests_beyond_the_document": other,
    }


def _fmt(s: dict[str, Any] | None) -> str:
    if s is None:
        return "–"
    return f"{s['median']:.0f} ({s['min']:.0f}–{s['max']:.0f})"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| case | tokens | heads | file B | build s | first pattern painted ms | page parsed ms | requests |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['case']} | {r['tokens']} | {r['heads']} | {r['bytes']:,} | {r['build_s']:.2f} | "
            f"{_fmt(r['first_pattern_painted_ms'])} | {_fmt(r['dom_content_loaded_ms'])} | "
            f"{len(r['requests_beyond_the_document'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="opens per case (fresh context each)")
    parser.add_argument("--out", type=Path, default=None, help="folder for export.json, export.md and the files")
    parser.add_argument("--cases", default="peaked-12x12@1024,builtin@256")
    args = parser.parse_args(argv)
    makers = {"peaked-12x12@1024": peaked_widget, "builtin@256": builtin_widget}
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in makers]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {sorted(makers)}")
    out = args.out or Path(tempfile.mkdtemp(prefix="headscope-export-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with playwright() as p, chromium(p) as browser:
        version = chromium_version(browser)
        for case in cases:
            widget = makers[case]()
            path = out / f"{case.replace('@', '-')}.html"
            row = {"case": case, **build(widget, path)}
            del widget
            row.update(open_times(browser, path, args.repeats))
            results.append(row)
            print(f"{case}: {row['bytes']:,} B, build {row['build_s']:.2f} s, first pattern painted "
                  f"{_fmt(row['first_pattern_painted_ms'])} ms", flush=True)
    meta = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
        "chromium": version,
        "load_average": os.getloadavg(),
        "repeats": args.repeats,
    }
    (out / "export.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    (out / "export.md").write_text(table(results) + "\n")
    print(table(results))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""CircuitsVis's side of the comparison: build ``attention_heads`` HTML for one layer.

CircuitsVis (``pip install -e ".[bench]"``) returns an object holding two renderings: one that
inlines its local JavaScript bundle (``local_src``) and one that imports it from unpkg.com (what
``str()`` gives). A notebook shows the local one only after a 1-second probe of google.com fails;
this machine has no network, so the benchmark times the call itself (which builds both strings,
as every call does) and writes the local rendering, the one that can paint offline.

Run as a worker: ``python benchmarks/cvbuild.py --one 128 --out cv-128.html``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernel import _peak_since, _reset_peak, bench_prompt, build_model  # noqa: E402

CDN_MARKERS = ("unpkg.com", "cdn.jsdelivr", "https://", "http://")


def cdn_references(html: str) -> list[str]:
    """Network URLs the page's own markup imports (the inlined bundle's string constants aside)."""
    found = []
    for line in html.splitlines():
        stripped = line.strip()
        if stripped.startswith("import ") and any(m in stripped for m in CDN_MARKERS):
            found.append(stripped[:200])
    return found


def measure(n_tokens: int, repeats: int, out: Path, n_layers: int = 12, threads: int = 2,
            model: Any = None) -> dict[str, Any]:
    import circuitsvis
    import torch
    from circuitsvis.attention import attention_heads

    from headscope._adapters import capture_patterns

    torch.set_num_threads(threads)
    if model is None:
        model = build_model("gpt2", n_layers)
    ids = model.to_tokens(bench_prompt(n_tokens), truncate=False)
    _, patterns = capture_patterns(model, ids)
    pattern = patterns[0][0].float()  # one layer's float weights: [head, query_pos, key_pos]
    tokens = [str(t) for t in model.to_str_tokens(ids[0])]
    del patterns

    base = _reset_peak()
    times: list[float] = []
    html = ""
    for _ in range(repeats):
        html = ""
        t0 = time.perf_counter()
        rendered = attention_heads(attention=pattern, tokens=tokens)
        html = rendered.local_src
        times.append(time.perf_counter() - t0)
        del rendered
    peak = _peak_since(base)
    page = ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>CircuitsVis</title>"
            f"<script>window.__cvExpect = {int(pattern.shape[0]) + 1};</script>"
            "<script src=\"/benchmarks/host/cv-probe.js\"></script></head><body>\n"
            + html + "\n</body></html>\n")
    out.write_text(page, encoding="utf-8")
    return {
        "tokens": n_tokens,
        "heads": int(pattern.shape[0]),
        "circuitsvis_version": circuitsvis.__version__,
        "html_bytes": len(html.encode("utf-8")),
        "build_s": statistics.median(times),
        "build_min_s": min(times),
        "build_max_s": max(times),
        "build_runs_s": times,
        "peak_build_mib": peak,
        "cdn_imports": cdn_references(html),
        "page": str(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(measure(args.one, args.repeats, args.out, args.layers, args.threads)))


if __name__ == "__main__":
    main()

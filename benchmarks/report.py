"""Ratios, targets and the markdown tables of ``python -m benchmarks``."""

from __future__ import annotations

from typing import Any

#: The issue's targets for headscope at 1024 tokens and 144 heads (and DESIGN.md's first paint).
FRAME_MS = 1000 / 60


def _find(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def _median(stats: dict[str, Any] | None) -> float | None:
    return None if stats is None else float(stats["median"])


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def comparison(results: dict[str, Any]) -> list[dict[str, Any]]:
    """headscope (GPT-2 geometry, every head) against CircuitsVis (one layer), size by size."""
    out = []
    for build in results["circuitsvis_build"]:
        n = build["tokens"]
        k = _find(results["kernel"], model="gpt2", tokens=n)
        hs = _find(results["browser_headscope"], model="gpt2", tokens=n) or {}
        cv = _find(results["browser_circuitsvis"], tokens=n) or {}
        if k is None:
            continue
        cv_first = _median(cv.get("first_paint_ms"))
        cv_all = _median(cv.get("all_painted_ms"))
        over = bool(cv.get("timed_out")) or bool(cv.get("error"))
        limit_ms = 1000 * float(cv.get("limit_s", 0) or 0)
        hs_first = _median(hs.get("first_paint_ms"))
        row = {
            "tokens": n,
            "headscope_heads": k["heads"],
            "circuitsvis_heads": build["heads"],
            "bytes": {"headscope": k["first_paint_bytes"], "circuitsvis": build["html_bytes"],
                      "ratio": _ratio(k["first_paint_bytes"], build["html_bytes"])},
            "beyond_forward_s": {"headscope": k["overhead_s"], "circuitsvis": build["build_s"],
                                 "ratio": _ratio(k["overhead_s"], build["build_s"])},
            "prompt_to_ready_s": {"headscope": k["widget_ready_s"],
                                  "circuitsvis": k["forward_s"] + build["build_s"],
                                  "ratio": _ratio(k["widget_ready_s"], k["forward_s"] + build["build_s"])},
            "first_paint_ms": {"headscope": hs_first, "circuitsvis": cv_first,
                               "circuitsvis_over_limit": over and cv_first is None,
                               "limit_ms": limit_ms,
                               "ratio": _ratio(hs_first, cv_first),
                               "ratio_bound": _ratio(hs_first, limit_ms) if over and cv_first is None else None},
            "all_heatmaps_ms": {"circuitsvis": cv_all, "circuitsvis_over_limit": over and cv_all is None},
            "hover_ms": {"headscope": _median(hs.get("hover_ms")), "circuitsvis": _median(cv.get("hover_ms")),
                         "ratio": _ratio(_median(hs.get("hover_ms")), _median(cv.get("hover_ms")))},
            "js_heap_bytes": {"headscope": _median(hs.get("js_heap_bytes")),
                              "circuitsvis": _median(cv.get("js_heap_bytes")),
                              "ratio": _ratio(_median(hs.get("js_heap_bytes")), _median(cv.get("js_heap_bytes")))},
        }
        out.append(row)
    return out


def _sum(values: Any) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else float(sum(values))


def _target(name: str, measured: float | None, limit: float, unit: str, how: str) -> dict[str, Any]:
    met = None if measured is None else measured <= limit
    missed = None if measured is None or met else measured - limit
    return {"target": name, "limit": limit, "unit": unit, "measured": measured, "met": met,
            "missed_by": missed, "how": how}


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, checked at the largest GPT-2-geometry size of this run."""
    rows = [r for r in results["kernel"] if r["model"] == "gpt2"]
    if not rows:
        return {"tokens": None, "rows": []}
    k = max(rows, key=lambda r: r["tokens"])
    n = k["tokens"]
    hs = _find(results["browser_headscope"], model="gpt2", tokens=n) or {}
    checks = [
        _target("first paint on the wire", k["first_paint_bytes"], 2_000_000, "B",
                "atlas + tokens as JSON + one head's message"),
        _target("kernel time beyond the forward pass", k["overhead_s"], 0.2, "s",
                "median prompt-to-ready minus median forward pass"),
        _target("cached head switch", _median(hs.get("switch_cached_drawn_ms")), 16.0, "ms",
                "median, switch to the new head drawn on the canvas"),
        _target("uncached head switch", _median(hs.get("switch_uncached_ms")), 150.0, "ms",
                "median, switch to the first frame after the kernel's answer is drawn"),
        _target("uncached head switch without the stand-in transport",
                _sum(_median(hs.get("switch_uncached_parts", {}).get(key)) for key in ("kernel_ms", "front_ms")),
                150.0, "ms", "median kernel work + median front end (Jupyter's comm time not included)"),
        _target("hover to tooltip", _median(hs.get("hover_drawn_ms")), 8.0, "ms",
                "median, pointermove on the pattern to the tooltip naming the cell"),
        _target("peak kernel memory", k["peak_ratio"], 1.2, "× forward",
                f"{k['peak_widget_mib']:.0f} MiB against {k['peak_forward_mib']:.0f} MiB for the forward pass"),
        _target("data arrival to first painted pattern (DESIGN.md)", _median(hs.get("first_paint_ms")),
                500.0 if n > 256 else 300.0, "ms", "median, in-page"),
    ]
    return {"tokens": n, "heads": k["heads"], "rows": checks}


# --- markdown ------------------------------------------------------------------------------


def _num(x: float | None, digits: int = 1, unit: str = "") -> str:
    return "–" if x is None else f"{x:,.{digits}f}{unit}"


def _range(stats: dict[str, Any] | None, digits: int = 1, scale: float = 1.0) -> str:
    if stats is None:
        return "–"
    med, lo, hi = (scale * stats[k] for k in ("median", "min", "max"))
    if stats.get("n", 1) == 1:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({lo:,.{digits}f}–{hi:,.{digits}f})"


def _ratio_text(r: float | None) -> str:
    if r is None:
        return "–"
    if r < 0:
        return f"{r:.2f} (none measurable)"
    if r >= 0.1:
        return f"{r:.2f}"
    return f"{r:.2g}" if r >= 1e-4 else f"{r:.1e}"


def _kernel_range(row: dict[str, Any], key: str) -> str:
    return (f"{row[key + '_s']:.3f} ({row[key + '_min_s']:.3f}–{row[key + '_max_s']:.3f})"
            if row.get(key + "_runs_s") and len(row[key + "_runs_s"]) > 1 else f"{row[key + '_s']:.3f}")


def _missed(t: dict[str, Any]) -> str:
    if t["met"] is None:
        return "not measured"
    if t["met"]:
        return "met"
    unit = t["unit"]
    amount = t["missed_by"]
    factor = t["measured"] / t["limit"] if t["limit"] else None
    by = f"{amount:,.0f} {unit}" if unit == "B" else f"{amount:.2f} {unit}" if unit != "ms" else f"{amount:.1f} ms"
    return f"**missed by {by}** ({factor:.{2 if factor < 2 else 1}f}× the target)" if factor else f"**missed by {by}**"


def _measured(t: dict[str, Any]) -> str:
    m = t["measured"]
    if m is None:
        return "–"
    if t["unit"] == "B":
        return f"{m:,.0f} B"
    if t["unit"] == "s":
        return f"{m:.3f} s"
    if t["unit"] == "ms":
        return f"{m:.1f} ms"
    return f"{m:.2f} {t['unit']}"


def _limit(t: dict[str, Any]) -> str:
    lim = t["limit"]
    if t["unit"] == "B":
        return f"≤ {lim / 1e6:g} MB"
    return f"≤ {lim:g} {t['unit']}"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    loads = m.get("loads", [])
    load_text = ", ".join(f"{s['phase']} {s['load_1m']:.2f}" for s in loads)
    lines = [
        "# headscope benchmark results",
        "",
        f"`{results['command'].strip()}`, {m.get('started_utc')} to {m.get('finished_utc')} "
        f"({m.get('wall_s', 0):.0f} s). Machine: {m['cpu_count']} CPUs ({m['cpu_model']}), "
        f"{m['memory_gib']:.1f} GiB, {m['platform']}; torch {m['versions'].get('torch')} on "
        f"{results['settings']['threads']} threads, transformer-lens {m['versions'].get('transformer-lens')}, "
        f"CircuitsVis {m['versions'].get('circuitsvis')}, Chromium {m.get('chromium')}, "
        f"Playwright {m['versions'].get('playwright')}; commit {m.get('git_commit')}.",
        f"1-minute load average: {load_text}.",
        f"Every figure: median of {results['settings']['repeats']} runs (browser rows: of every sample "
        "over those runs), with (min–max).",
        "",
    ]

    comp = results.get("comparison", [])
    if comp:
        c0 = comp[0]
        lines += [
            f"## headscope ({c0['headscope_heads']} heads) against CircuitsVis `attention_heads` "
            f"({c0['circuitsvis_heads']} heads, one layer)",
            "",
            "GPT-2 Small geometry, random weights. headscope shows every head of the model; "
            "CircuitsVis one layer, because it cannot hold all of them at 1024 tokens. "
            "Ratio: headscope / CircuitsVis.",
            "",
            "| tokens | | headscope | CircuitsVis | ratio |",
            "|---|---|---|---|---|",
        ]
        for c in comp:
            n = c["tokens"]
            fp = c["first_paint_ms"]
            cv_first = ("> {:.0f} s (limit)".format(fp["limit_ms"] / 1000) if fp["circuitsvis_over_limit"]
                        else _num(fp["circuitsvis"], 0, " ms"))
            fp_ratio = ("< " + _ratio_text(fp["ratio_bound"])) if fp["ratio_bound"] is not None else _ratio_text(fp["ratio"])
            hover = c["hover_ms"]
            heap = c["js_heap_bytes"]
            lines += [
                f"| {n} | bytes to first paint | {c['bytes']['headscope']:,} | {c['bytes']['circuitsvis']:,} (HTML) | {_ratio_text(c['bytes']['ratio'])} |",
                f"| {n} | kernel s beyond the forward pass | {c['beyond_forward_s']['headscope']:.3f} | {c['beyond_forward_s']['circuitsvis']:.3f} (build) | {_ratio_text(c['beyond_forward_s']['ratio'])} |",
                f"| {n} | prompt to ready s (forward included) | {c['prompt_to_ready_s']['headscope']:.3f} | {c['prompt_to_ready_s']['circuitsvis']:.3f} | {_ratio_text(c['prompt_to_ready_s']['ratio'])} |",
                f"| {n} | first painted heatmap | {_num(fp['headscope'], 0, ' ms')} | {cv_first} | {fp_ratio} |",
                f"| {n} | hover to tooltip painted | {_num(hover['headscope'], 1, ' ms')} | {_num(hover['circuitsvis'], 1, ' ms')} | {_ratio_text(hover['ratio'])} |",
                f"| {n} | JS heap after load | {_num(heap['headscope'] and heap['headscope'] / 2**20, 1, ' MiB')} | {_num(heap['circuitsvis'] and heap['circuitsvis'] / 2**20, 1, ' MiB')} | {_ratio_text(heap['ratio'])} |",
            ]
        lines.append("")

    if results["kernel"]:
        lines += [
            "## headscope, kernel side",
            "",
            "| model | tokens | heads | forward s | prompt to ready s | beyond forward s | first paint B | further head B | peak forward MiB | peak widget MiB | peak ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results["kernel"]:
            lines.append(
                f"| {r['model']} | {r['tokens']} | {r['heads']} | {_kernel_range(r, 'forward')} | "
                f"{_kernel_range(r, 'widget_ready')} | {r['overhead_s']:.3f} | {r['first_paint_bytes']:,} | "
                f"{r['head_bytes']:,} | {r['peak_forward_mib']:.0f} | {r['peak_widget_mib']:.0f} | {_num(r['peak_ratio'], 2)} |")
        lines.append("")

    if results["browser_headscope"]:
        lines += [
            "## headscope, in Chromium (ms)",
            "",
            "*drawn*: the canvas or tooltip holds the new content; *painted*: the next animation frame after that.",
            "",
            "| model | tokens | first paint (painted) | cached switch (drawn) | cached switch (painted) | uncached switch (painted) | hover (drawn) | hover (painted) | JS heap MiB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results["browser_headscope"]:
            lines.append(
                f"| {r['model']} | {r['tokens']} | {_range(r['first_paint_ms'])} | {_range(r['switch_cached_drawn_ms'])} | "
                f"{_range(r['switch_cached_ms'])} | {_range(r['switch_uncached_ms'])} | {_range(r['hover_drawn_ms'])} | "
                f"{_range(r['hover_ms'])} | {_range(r['js_heap_bytes'], 1, 1 / 2**20)} |")
        lines += [
            "",
            "The first paint and an uncached switch wait for one head from the kernel. Their head "
            "request in parts (ms): the widget's work in the kernel; the stand-in transport (page → "
            "Python → page over the DevTools protocol, base64 both ways; Jupyter's comm carries binary "
            "buffers instead); the front end, from the decoded answer to the head drawn.",
            "",
            "| model | tokens | first paint: kernel | transport | front end | uncached switch: kernel | transport | front end |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in results["browser_headscope"]:
            f = r.get("first_paint_parts", {})
            p = r.get("switch_uncached_parts", {})
            lines.append(f"| {r['model']} | {r['tokens']} | {_range(f.get('kernel_ms'))} | "
                         f"{_range(f.get('transport_ms'))} | {_range(f.get('front_ms'))} | "
                         f"{_range(p.get('kernel_ms'))} | "
                         f"{_range(p.get('transport_ms'))} | {_range(p.get('front_ms'))} |")
        lines.append("")

    if results["circuitsvis_build"]:
        lines += [
            "## CircuitsVis `attention_heads`, one layer",
            "",
            "| tokens | heads | HTML B | build s | build peak MiB | first heatmap ms | all heatmaps ms | hover ms | JS heap MiB | opens | network requests |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for b in results["circuitsvis_build"]:
            page = _find(results["browser_circuitsvis"], tokens=b["tokens"]) or {}
            over = page.get("timed_out") or page.get("error")
            limit = f"> {page.get('limit_s', 0):.0f} s" if over else "–"
            first = _range(page.get("first_paint_ms"), 0) if page.get("first_paint_ms") else limit
            every = _range(page.get("all_painted_ms"), 0) if page.get("all_painted_ms") else limit
            build = (f"{b['build_s']:.2f} ({b['build_min_s']:.2f}–{b['build_max_s']:.2f})"
                     if len(b["build_runs_s"]) > 1 else f"{b['build_s']:.2f}")
            net = len(page.get("external_requests", [])) if page else "–"
            lines.append(
                f"| {b['tokens']} | {b['heads']} | {b['html_bytes']:,} | {build} | {b['peak_build_mib']:.0f} | {first} | {every} | "
                f"{_range(page.get('hover_ms'))} | {_range(page.get('js_heap_bytes'), 1, 1 / 2**20)} | {page.get('opens', '–')} | {net} |")
        errors = [(p["tokens"], p["error"]) for p in results["browser_circuitsvis"] if p.get("error")]
        for n, err in errors:
            lines.append(f"\n{n} tokens: {err}")
        lines.append("")

    t = results.get("targets", {})
    if t.get("rows"):
        lines += [
            f"## Targets (headscope, GPT-2 geometry, {t['tokens']} tokens, {t['heads']} heads)",
            "",
            "| target | limit | measured | | how |",
            "|---|---|---|---|---|",
        ]
        for row in t["rows"]:
            lines.append(f"| {row['target']} | {_limit(row)} | {_measured(row)} | {_missed(row)} | {row['how']} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def atlas_table(rows: list[dict[str, Any]]) -> str:
    """The atlas of many heads: geometry, first paint, and arrow-key steps through it."""
    out = [
        "*key → selected*: an arrow key on the atlas until its label names the new head (the atlas "
        "redrawn, same task); *painted*: the next frame; *key → head drawn*: the new head's pattern "
        "drawn (a kernel request); *in view*: steps after which the selected cell was inside the "
        "atlas's box one frame later.",
        "",
        "| heads | tokens | T | atlas B | cell pitch px | grid px | box px | first paint (painted) "
        "| key → selected | key → painted | key → head drawn | in view |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        g = r.get("geometry") or {}
        out.append(
            f"| {r['heads'][0]} × {r['heads'][1]} | {r['tokens']} | {r['thumb_size']} | {r['atlas_bytes']:,} "
            f"| {g.get('pitch', 0):.0f} | {g.get('grid_width', 0):.0f} × {g.get('grid_height', 0):.0f} "
            f"| {g.get('box_width', 0):.0f} × {g.get('box_height', 0):.0f} | {_range(r['first_paint_ms'])} "
            f"| {_range(r['key_selected_ms'])} | {_range(r['key_painted_ms'])} | {_range(r['key_pattern_ms'])} "
            f"| {r['key_in_view']}/{r['key_steps']} |"
        )
    return "\n".join(out)

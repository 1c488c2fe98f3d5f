"""In-browser timings, in Debian's Chromium driven by Playwright, timed inside the page.

headscope: ``benchmarks/host/index.html`` imports the built widget bundle with a minimal
anywidget model whose kernel is the real Python widget (reached through functions exposed to the
page; head answers travel as base64 through the DevTools protocol, standing in for the comm).
CircuitsVis: its ``attention_heads`` HTML (local bundle inlined) is opened as a page, with
``benchmarks/host/cv-probe.js`` marking the first animation frame that holds heatmap pixels.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import statistics
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--enable-precise-memory-info",  # performance.memory without 100 kB rounding
    "--js-flags=--expose-gc",  # window.gc() before reading the heap
]
VIEWPORT = {"width": 1200, "height": 900}


#: URL prefix under which :func:`serve` maps its ``extra`` folder (the benchmark's output).
EXTRA = "/__out/"


class _Quiet(SimpleHTTPRequestHandler):
    extra: Path | None = None

    def translate_path(self, path: str) -> str:
        if self.extra is not None and path.startswith(EXTRA):
            name = path[len(EXTRA):].split("?", 1)[0].split("#", 1)[0]
            return str(self.extra / Path(name).name)
        return super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextlib.contextmanager
def serve(root: Path = ROOT, extra: Path | None = None) -> Iterator[str]:
    """A static server of ``root`` on 127.0.0.1 (module imports are blocked from file://), with
    the files of ``extra`` under ``/__out/``."""
    handler = type("_Handler", (_Quiet,), {"extra": extra})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def playwright() -> Iterator[Any]:
    """Playwright's sync API, for :func:`chromium`."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_playwright() as p:
        yield p


@contextlib.contextmanager
def chromium(p: Any) -> Iterator[Any]:
    """A headless system Chromium with a fresh profile (Playwright makes a new user-data dir)."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


def chromium_version(browser: Any) -> str:
    return str(browser.version)


# --- headscope ------------------------------------------------------------------------------


def _wire(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


class WidgetKernel:
    """The real Python widget behind the page's model (what a comm would carry, as JSON)."""

    def __init__(self, widget: Any) -> None:
        from headscope._widget.state import WidgetState

        self.widget = widget
        self.names = sorted(WidgetState.class_own_traits(sync=True))
        self.sent_bytes: list[int] = []

    def values(self) -> dict[str, Any]:
        return {name: getattr(self.widget, name) for name in self.names}

    def state(self) -> dict[str, Any]:
        return {name: _wire(value) for name, value in self.values().items()}

    def _diff(self, before: dict[str, Any]) -> dict[str, Any]:
        after = self.values()
        return {k: _wire(v) for k, v in after.items() if not (v is before[k] or v == before[k])}

    def message(self, content: dict[str, Any]) -> dict[str, Any]:
        raw: list[tuple[Any, list[bytes]]] = []

        def capture(content: Any, buffers: Any = None) -> None:
            raw.append((content, [bytes(b) for b in buffers or []]))

        t0 = time.perf_counter()
        before = self.values()
        self.widget.send = capture
        self.widget._handle_custom_msg(content, [])
        kernel_ms = 1000 * (time.perf_counter() - t0)  # the widget's own work
        self.sent_bytes += [sum(len(b) for b in buffers) for _, buffers in raw]
        replies = [{"content": c, "buffers": [base64.b64encode(b).decode("ascii") for b in buffers]}
                   for c, buffers in raw]
        return {"messages": replies, "state": self._diff(before), "kernel_ms": kernel_ms}

    def save(self, changes: dict[str, Any]) -> dict[str, Any]:
        before = self.values()
        self.widget.set_state(changes)
        return {"state": self._diff(before)}


@contextlib.contextmanager
def checked_page(browser: Any, what: str, *, console: bool = True) -> Iterator[Any]:
    """A page in a fresh browser context at :data:`VIEWPORT`; raises after the body when the
    page threw (or, with ``console``, logged an error), so no figure comes from a broken page."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        if console:
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        yield page
        if errors:
            raise RuntimeError(f"{what} logged errors: {errors[:3]}")
    finally:
        context.close()


def _switch_targets(n_layers: int, n_heads: int, count: int) -> list[tuple[int, int]]:
    """Distinct heads other than (0, 0), spread over the layers."""
    out: list[tuple[int, int]] = []
    i = 1
    while len(out) < min(count, n_layers * n_heads - 1):
        target = ((i * 5) // n_heads % n_layers, (i * 7) % n_heads)
        if target != (0, 0) and target not in out:
            out.append(target)
        i += 1
    return out


def _hover_cells(n: int, count: int) -> list[tuple[int, int]]:
    cells = []
    for i in range(count):
        q = n - 1 - (i * 37) % max(1, n // 2)
        k = (i * 53) % (q + 1)
        cells.append((q, k))
    return cells


def headscope_page(browser: Any, base: str, widget: Any, repeats: int, switches: int = 6,
                   hovers: int = 10) -> dict[str, Any]:
    """First paint, head switches (uncached, then cached) and hover, ``repeats`` fresh pages."""
    first, first_drawn, uncached, uncached_drawn, cached, cached_drawn = [], [], [], [], [], []
    hover, hover_drawn, heap = [], [], []
    parts: dict[str, list[float]] = {"kernel_ms": [], "transport_ms": [], "front_ms": []}
    first_parts: dict[str, list[float]] = {"kernel_ms": [], "transport_ms": [], "front_ms": []}
    cached_frames_late = 0
    n = len(widget.tokens)
    targets = _switch_targets(widget.n_layers, widget.n_heads, switches)
    for _ in range(repeats):
        widget.layer, widget.head = 0, 0
        kernel = WidgetKernel(widget)
        with checked_page(browser, "the benchmark page") as page:
            page.expose_function("hsbKernelMessage", kernel.message)
            page.expose_function("hsbKernelSave", kernel.save)
            page.goto(f"{base}/benchmarks/host/index.html")
            page.wait_for_function("() => window.hsbReady === true")
            r = page.evaluate("s => window.hsbFirstPaint(s)", kernel.state())
            first.append(r["painted_ms"])
            first_drawn.append(r["drawn_ms"])
            for key, samples in first_parts.items():
                if r.get(key) is not None:
                    samples.append(r[key])
            heap.append(r["heap_bytes"])
            for layer, head in targets:
                s = page.evaluate("([l, h]) => window.hsbSwitch(l, h)", [layer, head])
                assert s["requested"], (layer, head, "expected a request to the kernel")
                uncached.append(s["painted_ms"])
                uncached_drawn.append(s["drawn_ms"])
                for key, samples in parts.items():
                    if s.get(key) is not None:
                        samples.append(s[key])
            for layer, head in [(0, 0)] + targets[:-1]:  # all in the front end's cache
                s = page.evaluate("([l, h]) => window.hsbSwitch(l, h)", [layer, head])
                assert not s["requested"], (layer, head, "expected a cache hit")
                cached.append(s["painted_ms"])
                cached_drawn.append(s["drawn_ms"])
                cached_frames_late += s["painted_ms"] > 1.5 * 1000 / 60
            for q, k in _hover_cells(n, hovers):
                s = page.evaluate("([q, k]) => window.hsbHover(q, k)", [q, k])
                assert s["text"].startswith(f"query {q} "), s
                hover.append(s["painted_ms"])
                hover_drawn.append(s["drawn_ms"])
    return {
        "first_paint_ms": stats(first),
        "first_paint_drawn_ms": stats(first_drawn),
        "first_paint_parts": {key: stats(samples) for key, samples in first_parts.items()},
        "switch_uncached_ms": stats(uncached),
        "switch_uncached_drawn_ms": stats(uncached_drawn),
        "switch_uncached_parts": {key: stats(samples) for key, samples in parts.items()},
        "switch_cached_ms": stats(cached),
        "switch_cached_drawn_ms": stats(cached_drawn),
        "switch_cached_late_frames": cached_frames_late,
        "hover_ms": stats(hover),
        "hover_drawn_ms": stats(hover_drawn),
        "js_heap_bytes": stats([float(h) for h in heap if h is not None]),
        "head_message_bytes": max(kernel.sent_bytes) if kernel.sent_bytes else 0,
    }


def synthetic_widget(case: str, seed: int = 0) -> Any:
    """``headscope.show_attention`` on random causal attention of geometry ``LxH@N`` (layers,
    heads, tokens): the cheapest widget with many heads (no model)."""
    import numpy as np

    import headscope

    heads, n = case.split("@")
    n_layers, n_heads = (int(x) for x in heads.lower().split("x"))
    n_tokens = int(n)
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n_layers, n_heads, n_tokens, n_tokens)).astype(np.float32)
    logits[..., ~np.tri(n_tokens, dtype=bool)] = -np.inf
    logits -= logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=-1, keepdims=True)
    return headscope.show_attention([f"t{i}" for i in range(n_tokens)], logits)


def atlas_page(browser: Any, base: str, widget: Any, repeats: int, steps: int = 30) -> dict[str, Any]:
    """An atlas of many heads: first paint, its geometry, and arrow-key steps through it
    (``steps`` per repeat: to the right past the panel's edge, then down), ``repeats`` fresh
    pages."""
    first, selected, painted, pattern, geometry = [], [], [], [], None
    in_view = 0
    right = min(widget.n_heads - 1, (2 * steps) // 3)
    keys = ["ArrowRight"] * right + ["ArrowDown"] * min(widget.n_layers - 1, steps - right)
    for _ in range(repeats):
        widget.layer, widget.head = 0, 0
        kernel = WidgetKernel(widget)
        with checked_page(browser, "the benchmark page", console=False) as page:
            page.expose_function("hsbKernelMessage", kernel.message)
            page.expose_function("hsbKernelSave", kernel.save)
            page.goto(f"{base}/benchmarks/host/index.html")
            page.wait_for_function("() => window.hsbReady === true")
            first.append(page.evaluate("s => window.hsbFirstPaint(s)", kernel.state())["painted_ms"])
            geometry = page.evaluate("() => window.hsbAtlasGeometry()")
            for key in keys:
                s = page.evaluate("(k) => window.hsbAtlasKey(k)", key)
                selected.append(s["selected_ms"])
                painted.append(s["painted_ms"])
                pattern.append(s["pattern_ms"])
                in_view += bool(s["in_view"])
    return {
        "heads": [widget.n_layers, widget.n_heads],
        "tokens": len(widget.tokens),
        "thumb_size": widget.thumb_size,
        "atlas_bytes": len(widget.atlas),
        "geometry": geometry,
        "first_paint_ms": stats(first),
        "key_selected_ms": stats(selected),
        "key_painted_ms": stats(painted),
        "key_pattern_ms": stats(pattern),
        "key_steps": len(selected),
        "key_in_view": in_view,
    }


# --- CircuitsVis ----------------------------------------------------------------------------


def circuitsvis_page(p: Any, base: str, page_path: Path, repeats: int,
                     limit_s: float, hovers: int = 6) -> dict[str, Any]:
    """Open CircuitsVis's page ``repeats`` times in a fresh Chromium each; stop at the first
    open that does not paint within ``limit_s`` (recorded as over the limit)."""
    url = f"{base}{EXTRA}{page_path.name}"  # served by serve(extra=page_path.parent)
    first, every, heap, hover = [], [], [], []
    external: list[str] = []
    timed_out = False
    error = ""
    attempts = 0
    for _ in range(repeats):
        attempts += 1
        with chromium(p) as browser:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.on("request", lambda req: external.append(req.url)
                    if not req.url.startswith(base) and not req.url.startswith("data:") else None)
            marks: dict[str, float] = {}

            def on_console(msg: Any) -> None:
                parts = msg.text.split()
                if len(parts) == 3 and parts[0] == "__cv":
                    marks[parts[1]] = float(parts[2])

            page.on("console", on_console)
            page.on("crash", lambda _: marks.setdefault("crashed", 1.0))
            deadline = time.monotonic() + limit_s
            try:
                page.goto(url, wait_until="commit", timeout=limit_s * 1000)
                # wait on the driver's clock, never on the busy page
                while "all" not in marks and time.monotonic() < deadline:
                    page.wait_for_timeout(250)
                    if "crashed" in marks:
                        raise RuntimeError("the renderer crashed (out of memory?)")
            except Exception as exc:  # a renderer that died, or a navigation over the limit
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            if "first" in marks:
                first.append(marks["first"])
            if "all" not in marks:
                timed_out = not error
                with contextlib.suppress(Exception):
                    context.close()
                break
            every.append(marks["all"])
            heap.append(float(page.evaluate("window.__cvHeap()") or 0))
            for i in range(hovers):
                fx, fy = (0.35, 0.7) if i % 2 == 0 else (0.3, 0.8)
                r = page.evaluate("([x, y]) => window.__cvHover(x, y, 5000)", [fx, fy])
                if r["drawn_ms"] is not None:
                    hover.append(r["drawn_ms"])
            context.close()
    return {
        "first_paint_ms": stats(first),
        "all_painted_ms": stats(every),
        "js_heap_bytes": stats(heap),
        "hover_ms": stats(hover),
        "timed_out": timed_out,
        "limit_s": limit_s,
        "error": error,
        "opens": attempts,
        "external_requests": sorted(set(external)),
    }


def stats(values: list[float]) -> dict[str, Any] | None:
    """Median, min and max of a list of samples (None when there are none)."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values), "runs": values}

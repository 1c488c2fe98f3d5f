"""Browser fixtures shared by the e2e tiers (host page: tier A; JupyterLab: tier B).

Fixtures:

- ``repo_root`` (session): the repository root as a ``Path``.
- ``http_server`` (session): base URL (``http://127.0.0.1:<port>``) of a static server of the
  repository root, so pages can import ``/python/headscope/static/widget.js`` as an ES module.
- ``browser`` (session): a headless system Chromium (``/usr/bin/chromium``) driven by
  Playwright's sync API. Without Chromium the browser tests skip, with the reason in the summary,
  or fail when ``CI`` is set to a true value (``browser_setup.py``).
- ``browser_page`` (function): ``(page, errors)``, a fresh context and page, and a live list of
  console errors and uncaught page errors (``"console: …"`` / ``"pageerror: …"``). When the test
  fails, a screenshot and the full console log go to ``tests/e2e/artifacts/<test name>.*``.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser_setup import CHROMIUM, missing_browser

os.environ["HF_HUB_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"
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
]

try:  # a source checkout without `pip install -e .` still imports the package
    import headscope  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(ROOT / "python"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def http_server() -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(ROOT))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    missing = missing_browser()
    if missing is not None:
        action, message = missing
        if action == "fail":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:120]


@pytest.fixture
def browser_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[tuple[Any, list[str]]]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    log: list[str] = []
    errors: list[str] = []

    def on_console(msg: Any) -> None:
        log.append(f"{msg.type}: {msg.text}")
        if msg.type == "error":
            errors.append(f"console: {msg.text}")

    def on_page_error(exc: Any) -> None:
        log.append(f"pageerror: {exc}")
        errors.append(f"pageerror: {exc}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    try:
        yield page, errors
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            name = _artifact_name(request.node.nodeid)
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            except Exception as exc:  # a crashed page cannot be photographed; keep the log
                log.append(f"screenshot failed: {exc}")
            (ARTIFACTS / f"{name}.console.txt").write_text("\n".join(log), encoding="utf-8")
        context.close()

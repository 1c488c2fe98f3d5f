"""Without Chromium the browser tests skip with a reason, or fail in CI. Needs no browser."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from browser_setup import INSTALL_HINT, in_ci, missing_browser

E2E = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), ("1", True), ("yes", True), (" on ", True),
     ("", False), ("0", False), ("false", False), ("no", False)],
)  # fmt: skip
def test_ci_is_a_true_value_of_the_ci_variable(value: str, expected: bool) -> None:
    assert in_ci({"CI": value}) is expected


def test_no_ci_variable_is_not_ci() -> None:
    assert not in_ci({})


def test_chromium_present_means_nothing_to_do(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    chromium.touch()
    assert missing_browser(str(chromium), {"CI": "true"}) is None
    assert missing_browser(str(chromium), {}) is None


def test_missing_chromium_skips_locally_and_fails_in_ci(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-chromium")
    action, message = missing_browser(missing, {})
    assert action == "skip"
    assert missing in message and INSTALL_HINT in message and "apt-get install chromium" in message
    action, message = missing_browser(missing, {"CI": "true"})
    assert action == "fail"
    assert missing in message and "apt-get install chromium" in message and "CI is set" in message
    assert missing_browser(missing, {"CI": "false"})[0] == "skip"


def _run_browser_test(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    """Run one test that asks for the real ``browser`` fixture, with Chromium looked up at a
    path that does not exist, in a fresh pytest."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            f"""
            import importlib.util
            import sys

            sys.path.insert(0, {str(E2E)!r})
            import browser_setup

            browser_setup.CHROMIUM = {str(tmp_path / "no-chromium")!r}
            spec = importlib.util.spec_from_file_location("e2e_conftest", {str(E2E / "conftest.py")!r})
            e2e = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(e2e)
            browser = e2e.browser
            """
        )
    )
    (tmp_path / "test_needs_browser.py").write_text("def test_needs_browser(browser):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         str(tmp_path / "test_needs_browser.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_browser_fixture_skips_with_the_reason_in_the_summary(tmp_path: Path) -> None:
    result = _run_browser_test(tmp_path, ci=None)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(summary) == 1, result.stdout
    assert "the browser tests need Chromium at" in summary[0] and "apt-get install chromium" in summary[0]
    assert "1 skipped" in result.stdout


def test_browser_fixture_fails_in_ci(tmp_path: Path) -> None:
    result = _run_browser_test(tmp_path, ci="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout and "skipped" not in result.stdout
    assert "apt-get install chromium" in result.stdout and "CI is set" in result.stdout

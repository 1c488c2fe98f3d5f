"""The benchmarks still run and write their tables (smoke tests: no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_kernel_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "kernel.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "kernel.py"), "--sizes", "32",
           "--repeats", "1", "--layers", "1", "--json", str(out)]  # fmt: skip
    printed = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout
    assert printed.splitlines()[0].startswith("| tokens | heads | forward s |")
    (row,) = json.loads(out.read_text())
    assert row["tokens"] == 32 and row["heads"] == 12
    # bytes are exact: a 32 x 32 thumbnail per head, and one head's lower triangle + row scales
    assert row["atlas_bytes"] == 12 * 32 * 32
    assert row["head_bytes"] == 32 * 33 // 2 + 4 * 32
    assert row["peak_widget_mib"] >= 0 and row["forward_s"] > 0


def test_kernel_scale_table_smoke(tmp_path: Path) -> None:
    """The scale table on its smoke case, under a budget of one byte: no layer kept, heads come
    back from Q and K (the benchmark's model has absolute positions)."""
    out = tmp_path / "scale.json"
    budget = 1  # nothing kept: every head over the budget
    cmd = [sys.executable, str(ROOT / "benchmarks" / "kernel.py"), "--scale", "2x4@64", "--repeats", "0",
           "--threads", "1", "--budget", str(budget), "--json", str(out)]  # fmt: skip
    printed = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout
    assert printed.splitlines()[0].startswith("| case | forward s | widget s |")
    (row,) = json.loads(out.read_text())
    assert (row["case"], row["heads"], row["tokens"], row["thumb_size"]) == ("2x4@64", 8, 64, 64)
    assert row["kept_layers"] == 0 and row["head_served_ms"] is None and row["head_recomputed_s"] > 0
    assert row["head_bytes"] == 64 * 65 // 2 + 4 * 64 and row["atlas_bytes"] == 8 * 64 * 64
    assert row["peak_ratio"] is not None and row["overhead_s"] == row["widget_ready_s"] - row["forward_here_s"]


def test_benchmark_command_quick_writes_tables_and_json(tmp_path: Path) -> None:
    """`python -m benchmarks --quick` runs end to end (browser and CircuitsVis where installed)."""
    import importlib.util

    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)]
    has_browser = Path("/usr/bin/chromium").exists()
    has_cv = importlib.util.find_spec("circuitsvis") is not None
    if not has_browser:
        cmd.append("--no-browser")
    else:
        cmd += ["--atlas", "2x4@16"]
    if not has_cv:
        cmd.append("--no-circuitsvis")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)

    results = json.loads((out / "results.json").read_text())
    table = (out / "results.md").read_text()
    assert table.startswith("# headscope benchmark results")
    assert "## headscope, kernel side" in table and "## Targets" in table
    machine = results["machine"]
    assert machine["cpu_count"] >= 1 and machine["versions"]["torch"]
    assert [s["phase"] for s in machine["loads"]][0] == "start" and machine["loads"][-1]["phase"] == "end"

    gpt2, builtin = results["kernel"]
    assert (gpt2["model"], gpt2["tokens"], gpt2["heads"]) == ("gpt2", 32, 12)  # 1 layer x 12 heads
    assert (builtin["model"], builtin["tokens"], builtin["heads"]) == ("builtin", 32, 16)
    for row in results["kernel"]:
        # bytes are exact: a 32 x 32 thumbnail per head; one head's lower triangle + row scales
        assert row["atlas_bytes"] == row["heads"] * 32 * 32
        assert row["head_bytes"] == 32 * 33 // 2 + 4 * 32
        assert row["first_paint_bytes"] == row["atlas_bytes"] + row["tokens_json_bytes"] + row["head_bytes"]
        assert row["forward_s"] > 0 and row["widget_ready_s"] > 0
    names = [t["target"] for t in results["targets"]["rows"]]
    assert "kernel time beyond the forward pass" in names and len(names) == 8
    wire = results["targets"]["rows"][0]
    assert wire["measured"] == gpt2["first_paint_bytes"] and wire["met"] is True

    if has_browser:
        for page in results["browser_headscope"]:
            assert page["head_message_bytes"] == 32 * 33 // 2 + 4 * 32  # what the kernel sent
            for key in ("first_paint_ms", "switch_cached_drawn_ms", "switch_uncached_ms", "hover_drawn_ms"):
                assert page[key]["median"] > 0 and page[key]["min"] <= page[key]["median"] <= page[key]["max"]
            assert page["js_heap_bytes"]["median"] > 0
        assert "## headscope, in Chromium (ms)" in table
        (atlas,) = results["browser_atlas"]
        assert (atlas["heads"], atlas["tokens"], atlas["thumb_size"], atlas["atlas_bytes"]) == ([2, 4], 16, 16, 8 * 16 * 16)
        assert atlas["key_steps"] == 3 + 1 and atlas["key_in_view"] == atlas["key_steps"]  # 3 right, 1 down
        assert atlas["key_selected_ms"]["median"] > 0 and atlas["geometry"]["pitch"] >= 12
        assert "## headscope, the atlas of many heads in Chromium (ms)" in table
    if has_cv:
        (build,) = results["circuitsvis_build"]
        assert build["tokens"] == 32 and build["heads"] == 12 and build["html_bytes"] > 1_000_000
        assert build["cdn_imports"] == []  # the local bundle, inlined
        assert not (out / "circuitsvis-32.html").exists()  # large pages are removed unless kept
        (comparison,) = results["comparison"]
        assert comparison["bytes"]["ratio"] == gpt2["first_paint_bytes"] / build["html_bytes"]
        if has_browser:
            (cv_page,) = results["browser_circuitsvis"]
            assert cv_page["external_requests"] == [] and not cv_page["timed_out"]
            assert cv_page["first_paint_ms"]["median"] > 0
            assert "against CircuitsVis" in table


def test_export_benchmark_smoke(tmp_path: Path) -> None:
    """`benchmarks/export.py` on the built-in model, one open: the file's exact size, no request."""
    import pytest

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "export.py"), "--cases", "builtin@256", "--repeats", "1",
           "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    (row,) = json.loads((tmp_path / "export.json").read_text())["results"]
    assert (row["case"], row["tokens"], row["heads"]) == ("builtin@256", 256, 16)
    assert row["bytes"] == (tmp_path / "builtin-256.html").stat().st_size <= 1_000_000
    assert row["requests_beyond_the_document"] == [] and row["first_pattern_painted_ms"]["n"] == 1
    assert (tmp_path / "export.md").read_text().startswith("| case | tokens | heads | file B |")

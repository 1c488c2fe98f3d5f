"""The README's main job: `headscope demo` runs the example notebook on the built-in model."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from headscope.__main__ import main


def test_demo_finds_heads_by_score_and_saves_widgets(tmp_path: Path, capsys, monkeypatch) -> None:
    import numpy as np

    import headscope

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--out", "demo.ipynb", "--timeout", "300"]) == 0
    printed = capsys.readouterr().out
    found = {
        name: (int(layer), int(head), float(score))
        for name, layer, head, score in re.findall(
            r"(\w+) head: layer (\d+), head (\d+)  \(score ([0-9.]+)\)", printed
        )
    }
    assert set(found) == {"previous_token", "induction"}
    probe = headscope.induction_probe(None, length=50, seed=0)
    assert f"probe loss: first copy {probe.first_half_loss:.2f}, second copy {probe.second_half_loss:.2f}" in printed
    notebook = nbformat.read(str(tmp_path / "demo.ipynb"), as_version=4)
    prompt = re.search(r'prompt = "([^"]+)"', "".join(c.source for c in notebook.cells)).group(1)
    scores = headscope.head_scores(None, prompt)
    for name, (layer, head, score) in found.items():
        best = np.unravel_index(np.argmax(scores[name]), scores[name].shape)
        assert (layer, head) == tuple(int(i) for i in best)
        assert score == pytest.approx(float(scores[name][layer, head]), abs=0.006)
    assert "GPT-2 is not available here" in printed  # offline: a clear message, no traceback
    # the main job shows something true: the card's heads, and a model that copies the repeat
    from headscope._builtin import builtin_card

    roles = builtin_card()["roles"]
    assert found["induction"][:2] == tuple(roles["induction"][0]) and found["induction"][2] >= 0.5
    assert found["previous_token"][:2] == tuple(roles["previous_token"][0])
    assert found["previous_token"][2] >= 0.7
    assert probe.second_half_loss < probe.first_half_loss / 3

    notebook = nbformat.read(str(tmp_path / "demo.ipynb"), as_version=4)
    views = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
    assert len(views) == 2
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o["output_type"] == "error"]

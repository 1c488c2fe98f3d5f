"""docs/scores.md's worked example prints what the page says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scores_page_example_output_is_what_the_code_prints() -> None:
    page = (ROOT / "docs" / "scores.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- scores-example -->\n```python\n(.*?)```\n\n```text\n(.*?)```", page, re.S)
    assert match, "docs/scores.md lost its example (python block, then its text output)"
    code, expected = match.groups()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/scores.md", "exec"), {})
    assert out.getvalue() == expected


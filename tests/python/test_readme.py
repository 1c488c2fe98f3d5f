"""The README answers what a new user asks: CPU-only torch, the browser the tests need, and
how head scores are averaged. CI runs the README's test command, so that block is checked too."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PROSE = " ".join(README.split())  # line breaks inside a sentence are spaces


def test_test_command_block_is_the_one_ci_runs() -> None:
    # .ci/run takes the first ```-fenced block after the marker, exactly as written
    match = re.search(r"<!-- test-command -->\n```bash\n(.*?)```", README, re.S)
    assert match and match.group(1) == "npm test && python -m pytest\n"


def test_install_says_how_to_get_a_cpu_only_torch() -> None:
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in README
    assert "CPU-only" in README


def test_browser_tests_name_their_chromium_and_what_happens_without_it() -> None:
    assert "`/usr/bin/chromium` (`apt-get install chromium`)" in PROSE
    assert "skip locally, and pytest's summary prints the reason" in PROSE
    assert "in CI (`CI` set to `true` or `1`" in PROSE and "they fail instead" in PROSE


def test_readme_documents_the_convention_argument() -> None:
    assert 'head_scores(source, prompt=None, *, template=None, convention="rows")' in README
    assert '`convention="rows"`, the default' in PROSE and '`convention="detect_head"`:' in PROSE
    assert "(docs/scores.md)" in README and (ROOT / "docs" / "scores.md").is_file()

"""Whether the browser tests can run here, and what to do when they cannot.

The browser tests drive Debian's Chromium at ``/usr/bin/chromium``. Without it they skip on a
developer's machine, with the reason in pytest's summary (``-ra``), and fail in CI, where a
skipped browser tier would pass unnoticed. CI is recognised by the ``CI`` environment variable
that CI services (and ``.ci/run``) set to a true value such as ``true`` or ``1``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Optional

CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "install Debian's chromium package (`apt-get install chromium`)"

_TRUE = frozenset({"1", "true", "yes", "on"})


def in_ci(env: Mapping[str, str]) -> bool:
    """Whether ``env`` says this run is CI: ``CI`` set to a true value (``true``, ``1``, ``yes``, ``on``)."""
    return env.get("CI", "").strip().lower() in _TRUE


def missing_browser(
    path: Optional[str] = None, env: Optional[Mapping[str, str]] = None
) -> Optional[tuple[Literal["fail", "skip"], str]]:
    """``None`` when Chromium is at ``path`` (default :data:`CHROMIUM`); otherwise
    ``("fail" or "skip", message)``, "fail" when ``env`` (default ``os.environ``) says CI.

    The message names the missing file and how to install it; in CI it also says why the run fails
    rather than skips.
    """
    path = CHROMIUM if path is None else path
    if Path(path).exists():
        return None
    message = f"the browser tests need Chromium at {path}, and there is none: {INSTALL_HINT}"
    if in_ci(os.environ if env is None else env):
        return "fail", f"{message}. CI is set, so missing Chromium fails the run instead of skipping the browser tests"
    return "skip", message

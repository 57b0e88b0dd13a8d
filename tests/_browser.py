"""Find a Chromium for the browser tests, on any machine.

Lookup order (the first that exists wins):

1. ``$QUICKSTART_CHROMIUM``: a Chromium or Chrome binary you choose. When it is set but
   is not an executable file, that is an error, never a silent fallback.
2. The system's Chromium or Chrome: ``/usr/bin/chromium`` (Debian's package, what
   ``.ci/run`` installs), then ``chromium``, ``chromium-browser``, ``google-chrome``,
   ``google-chrome-stable`` on ``PATH``, then the usual macOS application paths.
3. Playwright's own Chromium, installed with ``python -m playwright install chromium``
   when it is missing and the network allows.

When none can be had, :func:`find_chromium` raises :class:`NoBrowser` whose message is
one line saying how to enable the tests; the ``browser`` fixture skips them with it,
except under ``CI=true``, where a missing browser fails them. The
:func:`pytest_terminal_summary` hook (imported by ``tests/conftest.py``) prints that line
once at the end of the run, however many tests it skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = [
    "SYSTEM_BROWSERS",
    "Chromium",
    "NoBrowser",
    "chromium_or_skip",
    "find_chromium",
    "in_ci",
    "install_playwright_chromium",
    "pytest_terminal_summary",
    "skip_or_fail",
]

#: System browsers, in the order they are tried (names are looked up on PATH).
#: Chromium's command line for the browser tests (the ``browser`` fixture of conftest.py).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SYSTEM_BROWSERS = (
    "/usr/bin/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)

#: How to enable the browser tests, for the skip or failure message.
HOW_TO_ENABLE = (
    "install Chromium (apt-get install chromium), or run "
    "`python3 -m uv run playwright install chromium` with network access, "
    "or set QUICKSTART_CHROMIUM to a Chromium or Chrome binary"
)

#: Seconds allowed for ``playwright install chromium`` (a download of about 150 MB).
INSTALL_TIMEOUT = 900


@dataclass(frozen=True)
class Chromium:
    """A browser the tests can launch.

    Attributes:
        executable: Path of the binary, for Playwright's ``executable_path``.
        source: Where it was found: ``"QUICKSTART_CHROMIUM"``, ``"system"`` or
            ``"playwright"``.
    """

    executable: str
    source: str


class NoBrowser(Exception):
    """No browser could be found or installed; the message says how to enable the tests.

    Attributes:
        misconfigured: True when ``QUICKSTART_CHROMIUM`` names no executable (always an
            error, also outside CI).
    """

    def __init__(self, message: str, *, misconfigured: bool = False) -> None:
        super().__init__(message)
        self.misconfigured = misconfigured


def in_ci(env: Mapping[str, str] = os.environ) -> bool:
    """Whether ``CI`` is set to a true value (``true``, ``1``, ``yes``), as CI services do."""
    return env.get("CI", "").strip().lower() in ("true", "1", "yes")


def install_playwright_chromium() -> str | None:
    """Run ``python -m playwright install chromium``.

    Returns:
        None when it succeeded, else a one-line reason (no network, timeout...).
    """
    try:
        done = subprocess.run(
            [sys.executable, "-m", "playwright", "install", "chromium"],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`playwright install chromium` could not run: {exc}"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    # Its output ends with stack traces: the last "Error: ..." line says why (no network...).
    errors = [line for line in lines if line.startswith("Error:")]
    why = (errors or lines or [f"exit status {done.returncode}"])[-1]
    return f"`playwright install chromium` failed: {why}"


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_chromium(
    *,
    env: Mapping[str, str] = os.environ,
    which: Callable[[str], str | None] = shutil.which,
    playwright_executable: Callable[[], str],
    install: Callable[[], str | None] = install_playwright_chromium,
    is_executable: Callable[[str], bool] = _is_executable,
) -> Chromium:
    """Find a Chromium in the order of this module's docstring.

    Args:
        env: Environment to read ``QUICKSTART_CHROMIUM`` from.
        which: Looks a name (or an absolute path) up on ``PATH``, like ``shutil.which``.
        playwright_executable: Returns where Playwright's own Chromium lives
            (``playwright.chromium.executable_path``), installed or not.
        install: Installs Playwright's Chromium; returns None or why it failed.
        is_executable: Whether a path is an executable file.

    Returns:
        The browser to launch and where it was found.

    Raises:
        NoBrowser: ``QUICKSTART_CHROMIUM`` is not executable (``misconfigured``), or no
            browser was found and none could be installed.
    """
    chosen = env.get("QUICKSTART_CHROMIUM", "").strip()
    if chosen:
        if is_executable(chosen):
            return Chromium(chosen, "QUICKSTART_CHROMIUM")
        raise NoBrowser(
            f"QUICKSTART_CHROMIUM={chosen!r} is not an executable file; point it at a "
            "Chromium or Chrome binary, or unset it to look for one.",
            misconfigured=True,
        )
    for name in SYSTEM_BROWSERS:
        found = which(name)
        if found:
            return Chromium(found, "system")
    bundled = playwright_executable()
    if is_executable(bundled):
        return Chromium(bundled, "playwright")
    failure = install()
    if failure is None and is_executable(bundled):
        return Chromium(bundled, "playwright")
    reason = failure or f"`playwright install chromium` left no browser at {bundled}"
    raise NoBrowser(
        f"Browser tests need Chromium: none found and {reason}. To enable them, {HOW_TO_ENABLE}."
    )


def chromium_or_skip(playwright_executable: Callable[[], str], **lookup: Any) -> Chromium:
    """Return :func:`find_chromium`'s browser, or skip (fail under ``CI=true``) saying why.

    ``lookup`` is passed on to :func:`find_chromium` (``env``, ``which``, ``install``...).
    A misconfigured ``QUICKSTART_CHROMIUM`` always fails.
    """
    env = lookup.get("env", os.environ)
    try:
        return find_chromium(playwright_executable=playwright_executable, **lookup)
    except NoBrowser as exc:
        skip_or_fail(str(exc), always_fail=exc.misconfigured, env=env)
        raise  # not reached: skip_or_fail raises


def skip_or_fail(
    message: str, *, always_fail: bool = False, env: Mapping[str, str] = os.environ
) -> None:
    """Skip the calling test with ``message`` (one line), or fail it under ``CI=true``."""
    message = " ".join(message.split())
    if always_fail or in_ci(env):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print each distinct skip reason once, with how many tests it skipped."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in reasons.items():
        terminalreporter.write_line(f"SKIPPED {count} test(s): {reason}", yellow=True)


#: A page init script: records in ``window.bubbleStates`` each text the last model bubble
#: of the web chat takes, with the time (``performance.now()``), as the DOM changes.
RECORD_BUBBLE_STATES = """
window.bubbleStates = [];
new MutationObserver(() => {
  const bubbles = document.querySelectorAll(".bubble.model");
  if (!bubbles.length) return;
  const text = bubbles[bubbles.length - 1].textContent;
  const states = window.bubbleStates;
  if (!states.length || states[states.length - 1].text !== text) {
    states.push({ text, at: performance.now() });
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""

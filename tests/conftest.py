"""Fixtures shared by the chat tests (test_chat_streaming.py and test_auth.py) and the
browser tests (test_browser.py, test_browser_resume.py, test_player_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from quickstart_helpers.emulator import CassetteStore, Emulator, load_cassette

# Says once why the browser tests were skipped (no Chromium; see tests/_browser.py).
from ._browser import (
    CHROMIUM_ARGS,
    HOW_TO_ENABLE,
    chromium_or_skip,
    pytest_terminal_summary,  # noqa: F401 - a pytest hook
    skip_or_fail,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

#: Test-only chat cassettes (a lighthouse keeper), authored by scripts/author.py (chat.toml).
CHAT_CASSETTES = Path(__file__).parent / "cassettes" / "chat"
#: The model those cassettes were recorded with (tests ask it, not the package default).
CHAT_MODEL = load_cassette(CHAT_CASSETTES / "test_chat_keeper_turn1.json").model


@pytest.fixture(scope="session")
def chat_emulator() -> Iterator[Emulator]:
    """An emulator replaying the test chat cassettes, fast pacing, shared by the session."""
    emulator = Emulator(store=CassetteStore([CHAT_CASSETTES]), pacing="fast").start()
    yield emulator
    emulator.stop()


@pytest.fixture
def chat_emu(chat_emulator: Emulator) -> Emulator:
    """The chat emulator with its record of received requests emptied."""
    chat_emulator.requests.clear()
    return chat_emulator


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (found by tests/_browser.py), one per test module; skips without it."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = chromium_or_skip(lambda: playwright.chromium.executable_path)
        try:
            browser = playwright.chromium.launch(
                executable_path=chromium.executable, args=CHROMIUM_ARGS
            )
        except PlaywrightError as exc:
            if chromium.source != "playwright":
                raise
            # Playwright's download does not bring the system libraries it needs.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            skip_or_fail(
                f"Browser tests need Chromium: Playwright's ({chromium.executable}) does not "
                f"start ({first}); install its libraries with `sudo python3 -m uv run "
                f"playwright install-deps chromium`. To enable them, {HOW_TO_ENABLE}."
            )
        yield browser
        browser.close()

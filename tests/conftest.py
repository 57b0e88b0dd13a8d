"""Fixtures shared by the chat tests (test_chat_streaming.py and test_auth.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quickstart_helpers.emulator import CassetteStore, Emulator, load_cassette

# Says once why the browser tests were skipped (no Chromium; see tests/_browser.py).
from ._browser import pytest_terminal_summary  # noqa: F401 - a pytest hook

#: Test-only chat cassettes (a lighthouse keeper), written by scripts/make_chat_cassettes.py.
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

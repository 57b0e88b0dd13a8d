"""Shared pieces of the conformance suite: the shipped cassettes and what they expect.

Used by tests/test_conformance_*.py (Python SDK, raw HTTP, Live API) and the
JavaScript SDK test, so every client checks the same recordings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google import genai

from quickstart_helpers.emulator import Emulator, GenerateCassette, LiveCassette
from quickstart_helpers.emulator._live_wire import load_audio

from ._store import STORE

#: The API key the conformance clients send (any key but the emulator's invalid one works).
KEY = "conformance-key"

_clients: list[genai.Client] = []


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """An emulator of the shipped cassettes, fast pacing, one per test module."""
    emu = Emulator(pacing="fast").start()
    yield emu
    emu.stop()


def sdk_client(emu: Emulator, slash: bool = False, key: str = KEY, **options: Any) -> genai.Client:
    """A Python SDK client of ``emu``; ``slash`` ends its base URL with ``/``.

    ``options`` go to :meth:`Emulator.http_options` (e.g. ``api_version="v1alpha"``).
    """
    http_options = emu.http_options(**options)
    if slash:
        http_options.base_url = emu.base_url + "/"
    client = genai.Client(api_key=key, http_options=http_options)
    _clients.append(client)  # a collected client closes its connections
    return client


def cassette(name: str) -> Any:
    """Return the shipped cassette called ``name``."""
    return next(c for c in STORE.cassettes if c.name == name)


TEXT: GenerateCassette = cassette("text_first_stream")
IMAGE: GenerateCassette = cassette("storyboard_stream")
CHAT1: GenerateCassette = cassette("chat_tide_pool_turn1")
CHAT2: GenerateCassette = cassette("chat_tide_pool_turn2")
NARRATION: LiveCassette = cassette("live_narration")


def last_prompt(recorded: GenerateCassette) -> str:
    """The text of the last user turn of a cassette's request."""
    user = [c for c in recorded.request["contents"] if c.get("role", "user") == "user"]
    return "".join(p.get("text", "") for p in user[-1]["parts"])


def chunk_texts(recorded: GenerateCassette) -> list[str]:
    """The text of each recorded chunk (thought parts left out), in order."""
    texts = []
    for chunk in recorded.chunks:
        if chunk.response is None:
            continue
        parts = chunk.response["candidates"][0]["content"].get("parts", [])
        texts.append("".join(p.get("text", "") for p in parts if not p.get("thought")))
    return texts


def prompt_tokens(recorded: GenerateCassette) -> int:
    """The recorded ``promptTokenCount``."""
    return next(
        c.response["usageMetadata"]["promptTokenCount"]
        for c in reversed(recorded.chunks)
        if c.response and "usageMetadata" in c.response
    )


def system_text(recorded: GenerateCassette | LiveCassette) -> str:
    """The recorded system instruction's text."""
    setup = recorded.request if isinstance(recorded, GenerateCassette) else recorded.setup
    return setup["systemInstruction"]["parts"][0]["text"]


def turn_pcm(recorded: LiveCassette, index: int) -> bytes:
    """The PCM bytes a Live cassette's turn sends, joined."""
    folder = recorded.path.parent
    pcm = b""
    for message in recorded.turns[index].messages:
        if message.audio is not None:
            _, data = load_audio(folder / message.audio.file)
            start = message.audio.start * 2
            pcm += data[start : start + message.audio.frames * 2]
    return pcm

"""Thinking over the emulator: the thinkingConfig selects the recording, thoughts come first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types

from quickstart_helpers.emulator import Emulator, GenerateCassette

from ._store import STORE

HIGH = next(c for c in STORE.cassettes if c.name == "text_thinking_high")
PROMPT = HIGH.request["contents"][0]["parts"][0]["text"]
assert isinstance(HIGH, GenerateCassette)


@pytest.fixture(scope="module")
def client() -> Iterator[genai.Client]:
    with Emulator(store=STORE, pacing="fast") as emu:
        yield genai.Client(api_key="test", http_options=emu.http_options())


def stream(client: genai.Client, thinking: types.ThinkingConfig | None) -> list[types.Part]:
    config = types.GenerateContentConfig(thinking_config=thinking)
    chunks = client.models.generate_content_stream(model=HIGH.model, contents=PROMPT, config=config)
    return [part for chunk in chunks for part in chunk.candidates[0].content.parts]


def test_high_thinking_streams_thought_parts_before_the_answer(client: genai.Client) -> None:
    parts = stream(client, types.ThinkingConfig(include_thoughts=True, thinking_level="high"))
    flags = [bool(p.thought) for p in parts]
    assert flags == sorted(flags, reverse=True) and flags[0] and not flags[-1]
    answer = "".join(p.text for p in parts if not p.thought)
    assert answer == "The letter r appears three times in the word strawberry."


def test_minimal_thinking_answers_without_thought_parts(client: genai.Client) -> None:
    parts = stream(client, types.ThinkingConfig(thinking_level="minimal"))
    assert not any(p.thought for p in parts)
    assert "".join(p.text for p in parts) == (
        "The letter r appears three times in the word strawberry."
    )


def test_the_thinking_config_selects_the_recording(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError, match="NOT_FOUND"):
        stream(client, None)


def test_thinking_waits_longer_before_the_first_answer_chunk() -> None:
    """The recordings' delays (the emulator replays them in realtime pacing)."""
    minimal = next(c for c in STORE.cassettes if c.name == "text_thinking_minimal")

    def first_answer_ms(cassette: GenerateCassette) -> int:
        waited = 0
        for chunk in cassette.chunks:
            waited += chunk.delay_ms
            parts = chunk.response["candidates"][0]["content"]["parts"]  # type: ignore[index]
            if any(not p.get("thought") for p in parts):
                return waited
        raise AssertionError("no answer chunk")

    assert first_answer_ms(HIGH) > 5 * first_answer_ms(minimal)  # type: ignore[arg-type]

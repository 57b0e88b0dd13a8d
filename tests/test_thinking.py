"""Thinking over the emulator: the thinkingConfig selects the recording, thoughts come first."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types

from quickstart_helpers.emulator import CassetteStore, Emulator, GenerateCassette

from ._store import STORE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import _authoring as authoring  # noqa: E402

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


# -- Gemini 3: a function call goes back with its thought signature ----------------------

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city.",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
    ),
)
ASK = "What's the weather in Lisbon?"
CALL = {"functionCall": {"name": "get_weather", "args": {"city": "Lisbon"}}}
RESULT = {"functionResponse": {"name": "get_weather", "response": {"forecast": "sunny, 24 C"}}}


def _function_call_cassettes(folder: Path) -> None:
    """Write a two-step tool chat: the signed call, then the answer to its result."""
    model = HIGH.model
    tools = [
        types.Tool(function_declarations=[WEATHER]).model_dump(
            by_alias=True, exclude_none=True, mode="json"
        )
    ]
    common = {"name": "fc", "model": model, "prompt_tokens": 9, "answer_tokens": 4, "thoughts": 30}
    call = authoring.stream_chunks([[CALL]], [0], **common)
    signed = call[0].response["candidates"][0]["content"]["parts"][0]
    ask = authoring.text_content("user", ASK)
    turn2 = [ask, {"role": "model", "parts": [signed]}, {"role": "user", "parts": [RESULT]}]
    answer = authoring.stream_chunks(
        ["It is sunny in Lisbon, 24 C."], [0], **{**common, "name": "fc2"}
    )
    authoring.write_cassettes(
        folder,
        [
            authoring.generate_cassette(
                "fc", "call", model, {"contents": [ask], "tools": tools}, call
            ),
            authoring.generate_cassette(
                "fc2", "answer", model, {"contents": turn2, "tools": tools}, answer
            ),
        ],
    )


def test_a_chat_that_keeps_the_model_turn_sends_the_signature_back(tmp_path) -> None:
    _function_call_cassettes(tmp_path)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    with Emulator(store=CassetteStore([tmp_path]), pacing="fast") as emu:
        client = genai.Client(api_key="test", http_options=emu.http_options())
        chat = client.chats.create(model=HIGH.model, config=config)
        first = chat.send_message(ASK)
        assert first.function_calls[0].name == "get_weather"
        result = types.Part.from_function_response(
            name="get_weather", response={"forecast": "sunny, 24 C"}
        )
        assert chat.send_message(result).text == "It is sunny in Lisbon, 24 C."


def test_a_history_that_drops_the_signature_gets_the_apis_400(tmp_path) -> None:
    _function_call_cassettes(tmp_path)
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    history = [
        types.Content(role="user", parts=[types.Part(text=ASK)]),
        types.Content(
            role="model",
            parts=[types.Part.from_function_call(name="get_weather", args={"city": "Lisbon"})],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(
                    name="get_weather", response={"forecast": "sunny, 24 C"}
                )
            ],
        ),
    ]
    with Emulator(store=CassetteStore([tmp_path]), pacing="fast") as emu:
        client = genai.Client(api_key="test", http_options=emu.http_options())
        with pytest.raises(errors.ClientError) as info:
            client.models.generate_content(model=HIGH.model, contents=history, config=config)
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    assert info.value.message.startswith(
        "Function call is missing a thought_signature in functionCall parts."
    )
    assert "function call `default_api:get_weather` , position 2." in info.value.message

"""The strict cassette schema: kinds, unknown keys, the SDK's models, one request key."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types

from quickstart_helpers.emulator import (
    CassetteStore,
    Emulator,
    GenerateCassette,
    LiveCassette,
    load_cassette,
)
from quickstart_helpers.emulator._matching import request_key
from quickstart_helpers.errors import CassetteError

MODEL = "gemini-3.8-flash"


def _text_chunk(text: str) -> dict:
    return {
        "delay_ms": 0,
        "response": {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
            ]
        },
    }


GOOD = {
    "format": 1,
    "name": "good",
    "kind": "generate",
    "model": MODEL,
    "request": {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]},
    "chunks": [_text_chunk("Hi!")],
}


def _write(folder: Path, name: str, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data), "utf-8")
    return path


def test_a_valid_cassette_loads_as_its_kind(tmp_path):
    cassette = load_cassette(_write(tmp_path, "good", GOOD))
    assert isinstance(cassette, GenerateCassette)
    assert cassette.path == tmp_path / "good.json"


def test_a_misspelled_key_fails_naming_file_and_field(tmp_path):
    bad = {**GOOD, "chunkz": GOOD["chunks"]}
    path = _write(tmp_path, "typo", bad)
    with pytest.raises(CassetteError) as info:
        CassetteStore([tmp_path])
    message = str(info.value)
    assert str(path) in message
    assert "generate.chunkz: Extra inputs are not permitted" in message


def test_a_wrong_kind_fails(tmp_path):
    path = _write(tmp_path, "kind", {**GOOD, "kind": "generation"})
    with pytest.raises(CassetteError, match=r"kind\.json is not a valid cassette") as info:
        load_cassette(path)
    assert (
        "does not match any of the expected tags: 'generate', 'openai', 'live', 'count_tokens', "
        "'models'" in str(info.value)
    )


def test_a_live_cassette_with_chunks_and_no_turns_fails(tmp_path):
    live = {**GOOD, "kind": "live"}
    with pytest.raises(CassetteError) as info:
        load_cassette(_write(tmp_path, "live", live))
    assert "live.turns: Field required" in str(info.value)
    assert "live.chunks: Extra inputs are not permitted" in str(info.value)


def test_a_missing_format_fails(tmp_path):
    data = {k: v for k, v in GOOD.items() if k != "format"}
    with pytest.raises(CassetteError, match="generate.format: Field required"):
        load_cassette(_write(tmp_path, "noformat", data))


def test_an_invalid_response_field_fails_with_its_path(tmp_path):
    bad = copy.deepcopy(GOOD)
    bad["chunks"].append(_text_chunk("more"))
    bad["chunks"][1]["response"]["candidates"][0]["content"]["partz"] = []
    path = _write(tmp_path, "response", bad)
    with pytest.raises(CassetteError) as info:
        load_cassette(path)
    message = str(info.value)
    assert str(path) in message and "the SDK's models refuse it" in message
    assert "chunks[1].response.candidates[0].content.partz: Extra inputs are not permitted" in (
        message
    )


def test_an_invalid_live_message_fails_with_its_path(tmp_path):
    live = {
        "format": 1,
        "name": "live",
        "kind": "live",
        "model": "gemini-live",
        "turns": [
            {
                "input": "Hi",
                "messages": [{"message": {"serverContent": {"turnComplet": True}}}],
            }
        ],
    }
    with pytest.raises(CassetteError) as info:
        load_cassette(_write(tmp_path, "live", live))
    assert "turns[0].messages[0].message.serverContent.turnComplet" in str(info.value)
    live["turns"][0]["messages"][0]["message"] = {"serverContent": {"turnComplete": True}}
    assert isinstance(load_cassette(_write(tmp_path, "live", live)), LiveCassette)


def test_a_chunk_is_a_response_or_a_break(tmp_path):
    both = {**GOOD, "chunks": [{**_text_chunk("x"), "break": True}]}
    with pytest.raises(CassetteError, match='exactly one of "response"'):
        load_cassette(_write(tmp_path, "both", both))
    neither = {**GOOD, "chunks": [{"delay_ms": 5}]}
    with pytest.raises(CassetteError, match='exactly one of "response"'):
        load_cassette(_write(tmp_path, "neither", neither))


# -- one request key for matching and for duplicates --------------------------------------

WEATHER_TOOL = {
    "functionDeclarations": [
        {
            "name": "get_weather",
            "description": "Weather in a city.",
            "parameters": {
                "type": "OBJECT",
                "properties": {"city": {"type": "STRING"}},
                "required": ["city"],
            },
        }
    ]
}


def _tool_conversation(city: str) -> list[dict]:
    return [
        {"role": "user", "parts": [{"text": "What is the weather?"}]},
        {
            "role": "model",
            # Gemini 3 refuses a function call sent back without its signature.
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": city}},
                    "thoughtSignature": "c2lnbmF0dXJl",
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"sky": f"{city}: sun"}}}
            ],
        },
    ]


def _tool_cassette(name: str, city: str, answer: str) -> dict:
    return {
        **GOOD,
        "name": name,
        "request": {"contents": _tool_conversation(city), "tools": [WEATHER_TOOL]},
        "chunks": [_text_chunk(answer)],
    }


def test_function_call_conversations_match_only_their_own_cassette(tmp_path):
    _write(tmp_path, "paris", _tool_cassette("paris", "Paris", "Sunny in Paris."))
    _write(tmp_path, "oslo", _tool_cassette("oslo", "Oslo", "Sunny in Oslo."))
    store = CassetteStore([tmp_path])  # two different tool conversations are not duplicates
    with Emulator(store=store, pacing="fast") as emu:
        client = genai.Client(api_key="test", http_options=emu.http_options())
        config = types.GenerateContentConfig(
            tools=[types.Tool.model_validate(WEATHER_TOOL)],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        for city in ("Paris", "Oslo"):
            contents = [types.Content.model_validate(c) for c in _tool_conversation(city)]
            response = client.models.generate_content(model=MODEL, contents=contents, config=config)
            assert response.text == f"Sunny in {city}."
        # The same conversation without the tools is another request: no recording.
        with pytest.raises(errors.ClientError) as info:
            client.models.generate_content(
                model=MODEL,
                contents=[types.Content.model_validate(c) for c in _tool_conversation("Paris")],
            )
        assert info.value.code == 404


def test_request_key_ignores_spelling_and_order_but_not_content():
    camel = {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "temperature": 0.2},
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    }
    snake = {
        "contents": [{"role": "USER", "parts": {"text": "Hi"}}],
        "generation_config": {"response_modalities": ["image", "text"]},
        "system_instruction": {"parts": [{"text": "Be brief."}]},
    }
    assert request_key(MODEL, camel) == request_key(f"models/{MODEL}", snake)
    other = copy.deepcopy(camel)
    other["systemInstruction"]["parts"][0]["text"] = "Be long."
    assert request_key(MODEL, camel) != request_key(MODEL, other)
    text_only = {"contents": camel["contents"], "systemInstruction": camel["systemInstruction"]}
    assert request_key(MODEL, camel) != request_key(MODEL, text_only)


def test_duplicates_use_the_same_key_as_matching(tmp_path):
    first = _tool_cassette("first", "Paris", "A")
    second = _tool_cassette("second", "Paris", "B")
    second["request"]["contents"][0]["role"] = "USER"  # same request, other spelling
    _write(tmp_path, "first", first)
    _write(tmp_path, "second", second)
    with pytest.raises(CassetteError, match="answer the same request"):
        CassetteStore([tmp_path])


# -- precedence: later folders override earlier ones ----------------------------------------


def test_a_later_folder_overrides_an_earlier_one_for_the_same_request(tmp_path):
    shipped, mine = tmp_path / "shipped", tmp_path / "mine"
    _write(shipped / "text", "shipped_answer", {**GOOD, "name": "shipped_answer"})
    other = {**GOOD, "name": "other", "request": {"contents": "Something else"}}
    _write(shipped / "text", "other", other)
    recorded = {**GOOD, "name": "my_answer", "chunks": [_text_chunk("My own answer.")]}
    recorded["request"] = {"contents": [{"role": "USER", "parts": [{"text": "Hello"}]}]}
    _write(mine / "deep", "my_answer", recorded)

    store = CassetteStore([shipped, mine])
    assert store.find(MODEL, GOOD["request"]).name == "my_answer"
    assert [(a.name, b.name) for a, b in store.overridden] == [("shipped_answer", "my_answer")]
    assert sorted(c.name for c in store.cassettes) == ["my_answer", "other"]
    # The order decides: listed the other way round, the shipped one wins.
    assert CassetteStore([mine, shipped]).find(MODEL, GOOD["request"]).name == "shipped_answer"


def test_a_later_folder_overrides_a_cassette_of_the_same_name(tmp_path):
    _write(tmp_path / "a", "good", GOOD)
    edited = {**GOOD, "request": {"contents": "Edited prompt"}, "chunks": [_text_chunk("E")]}
    _write(tmp_path / "b", "good", edited)
    store = CassetteStore([tmp_path / "a", tmp_path / "b"])
    assert [c.request for c in store.cassettes] == [edited["request"]]
    assert store.find(MODEL, GOOD["request"]) is None  # the earlier one is set aside


def test_a_later_folder_overrides_a_copy_with_the_same_name_and_request(tmp_path):
    _write(tmp_path / "a", "good", GOOD)
    _write(tmp_path / "b", "good", {**GOOD, "chunks": [_text_chunk("Mine.")]})
    store = CassetteStore([tmp_path / "a", tmp_path / "b"])
    assert store.find(MODEL, GOOD["request"]).path == tmp_path / "b" / "good.json"
    assert [(a.path.parent.name, b.path.parent.name) for a, b in store.overridden] == [("a", "b")]


def test_two_cassettes_for_one_request_in_one_folder_tree_are_still_refused(tmp_path):
    _write(tmp_path / "shipped", "good", GOOD)
    _write(tmp_path / "mine" / "x", "one", {**GOOD, "name": "one"})
    _write(tmp_path / "mine" / "y", "two", {**GOOD, "name": "two"})
    with pytest.raises(CassetteError, match="'one' .* and 'two' .* answer the same request"):
        CassetteStore([tmp_path / "shipped", tmp_path / "mine"])
    _write(tmp_path / "names" / "x", "same", {**GOOD, "name": "same"})
    other = {**GOOD, "name": "same", "request": {"contents": "Other"}}
    _write(tmp_path / "names" / "y", "same", other)
    with pytest.raises(CassetteError, match="names must be unique within a folder"):
        CassetteStore([tmp_path / "names"])


def test_a_folder_listed_twice_or_nested_is_read_once(tmp_path):
    _write(tmp_path / "all" / "inner", "good", GOOD)
    store = CassetteStore([tmp_path / "all", tmp_path / "all" / "inner", tmp_path / "all"])
    assert [c.name for c in store.cassettes] == ["good"]


def test_a_users_recording_overrides_a_shipped_cassette_offline(tmp_path, monkeypatch):
    shipped = next(
        c for c in CassetteStore().cassettes if c.name == "text_first_stream"
    )  # a request the notebooks send
    mine = json.loads(shipped.path.read_text("utf-8"))
    mine["name"] = "my_text_first_stream"
    mine["chunks"] = [_text_chunk("My recording wins.")]
    _write(tmp_path / "mine", "my_text_first_stream", mine)
    monkeypatch.setenv("QUICKSTART_CASSETTES", str(tmp_path / "mine"))

    store = CassetteStore()  # shipped, then QUICKSTART_CASSETTES
    assert store.find(shipped.model, shipped.request).name == "my_text_first_stream"
    with Emulator(store=store, pacing="fast") as emulator:
        sdk = genai.Client(api_key="offline", http_options=emulator.http_options())
        prompt = shipped.request["contents"][0]["parts"][0]["text"]
        answer = sdk.models.generate_content(model=shipped.model, contents=prompt)
        assert answer.text == "My recording wins."

"""What is recorded, and the answer to what is not: ``quickstart cassettes`` and the 404.

``quickstart cassettes --json`` runs as a subprocess; each request it lists, sent as is
over a real socket (httpx, aiohttp's WebSocket), gets its recorded answer. A request no
recording answers gets the API's 404 whose message names the fields in which it differs
from the nearest recording, never a fault recording, and says how to list and record.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from google import genai
from google.genai import errors, types

from quickstart_helpers.emulator import Emulator

from ._store import STORE

CASSETTES = {c.name: c for c in STORE.cassettes}
FIRST = CASSETTES["text_first_stream"]  # one user turn, no config
PROMPT = FIRST.request["contents"][0]["parts"][0]["text"]
KEY = {"x-goog-api-key": "test-key"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(store=STORE, pacing="fast").start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def listed() -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k != "QUICKSTART_CASSETTES"}
    done = subprocess.run(
        [sys.executable, "-m", "quickstart_cli", "cassettes", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def client(emulator: Emulator) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=emulator.http_options())


def _http(emulator: Emulator) -> httpx.Client:
    ctx = emulator.certificate.client_context()
    return httpx.Client(base_url=emulator.base_url, verify=ctx, timeout=60, headers=KEY)


def _sse_data(text: str) -> list[Any]:
    return [json.loads(line[5:]) for line in text.split("\n") if line.startswith("data:")]


# -- quickstart cassettes ---------------------------------------------------------------


def test_cassettes_json_lists_every_recording_with_the_request_a_client_sends(listed):
    assert sorted(e["name"] for e in listed) == sorted(CASSETTES)
    for entry in listed:
        cassette = CASSETTES[entry["name"]]
        assert {"name", "kind", "model", "request"} <= set(entry)
        assert entry["kind"] == cassette.kind and entry["fault"] == cassette.faulty
        if cassette.kind == "generate":
            assert entry["request"] == cassette.request
            assert entry["path"] == f"/v1beta/models/{cassette.model}:streamGenerateContent?alt=sse"
        elif cassette.kind == "live":
            setup, *messages = entry["request"]
            assert setup["setup"]["model"] == f"models/{cassette.model}"
            for message, turn in zip(messages, cassette.turns, strict=True):
                realtime = message["realtimeInput"]
                if turn.audio is None:
                    assert realtime == {"text": turn.input}
                else:  # a spoken turn: its audio, then the end of the stream
                    assert realtime["audioStreamEnd"] is True
                    assert realtime["audio"]["mimeType"] == "audio/pcm;rate=16000"
        elif cassette.kind == "interactions":
            assert entry["request"] == {"model": cassette.model, **cassette.request}
            assert entry["previous"] == cassette.previous


def test_cassettes_lists_the_recordings_by_model_with_their_prompts():
    done = subprocess.run(
        [sys.executable, "-m", "quickstart_cli", "cassettes"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = done.stdout.splitlines()
    model_line = lines.index(FIRST.model)
    names = [line.split()[1].rstrip(":") for line in lines[model_line + 1 :] if line[:2] == "  "]
    assert "text_first_stream" in names
    assert f"text_first_stream: {PROMPT[:40]}" in done.stdout.replace("'", "")
    assert "faults_overloaded [fault]" in done.stdout


def test_cassettes_json_into_a_reader_that_stops_early_ends_quietly():
    """``quickstart cassettes --json | head -1``: no BrokenPipeError traceback, exit 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "quickstart_cli", "cassettes", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["name"]
    proc.stdout.close()  # the reader has enough
    assert proc.wait(timeout=120) == 0
    assert b"Traceback" not in proc.stderr.read()


def test_each_listed_generate_request_sent_as_is_gets_its_recorded_answer(listed, emulator):
    entries = [e for e in listed if e["kind"] == "generate"]
    assert len(entries) > 10
    with _http(emulator) as http:
        for entry in entries:
            cassette = CASSETTES[entry["name"]]
            try:
                answer = http.post(entry["path"], json=entry["request"])
            except httpx.HTTPError:  # a recorded break
                assert cassette.faulty, entry["name"]
                continue
            assert "No recorded response" not in answer.text, entry["name"]
            if not cassette.faulty:
                assert answer.status_code == 200, (entry["name"], answer.text[:300])
                recorded = [c.response for c in cassette.chunks]
                assert _sse_data(answer.text) == recorded, entry["name"]


def test_each_listed_interactions_request_sent_as_is_gets_its_recording(listed, emulator):
    entries = {e["name"]: e for e in listed if e["kind"] == "interactions"}
    ids: dict[str, str] = {}

    def create(name: str) -> httpx.Response:
        entry = entries[name]
        body = dict(entry["request"])
        if entry["previous"]:
            body["previous_interaction_id"] = ids.get(entry["previous"]) or create_id(
                entry["previous"]
            )
        return http.post(entry["path"], json=body)

    def create_id(name: str) -> str:
        ids[name] = create(name).json()["id"]
        return ids[name]

    with _http(emulator) as http:
        for name in entries:
            answer = create(name)
            assert answer.status_code == 200, (name, answer.text[:300])
            assert answer.json()["id"] == CASSETTES[name].interaction_id


def test_each_listed_live_session_sent_as_is_gets_its_recorded_turns(listed, emulator):
    entries = [e for e in listed if e["kind"] == "live" and not e["fault"]]
    assert entries
    url = emulator.base_url.replace("https://", "wss://") + entries[0]["path"]

    async def session(messages: list[dict[str, Any]]) -> int:
        ctx = emulator.certificate.client_context()
        completed = 0
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(url, ssl=ctx, headers=KEY) as ws,
        ):
            await ws.send_str(json.dumps(messages[0]))
            assert "setupComplete" in json.loads((await ws.receive(timeout=30)).data)
            for message in messages[1:]:
                await ws.send_str(json.dumps(message))
                while True:
                    got = await ws.receive(timeout=30)
                    assert got.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), got
                    if (json.loads(got.data).get("serverContent") or {}).get("turnComplete"):
                        completed += 1
                        break
        return completed

    for entry in entries:
        turns = asyncio.run(session(entry["request"]))
        assert turns == len(CASSETTES[entry["name"]].turns), entry["name"]


# -- the 404 names what differs ----------------------------------------------------------


def _not_found(client: genai.Client, model: str = FIRST.model, **kwargs: Any) -> str:
    contents = kwargs.pop("contents", PROMPT)
    config = types.GenerateContentConfig(**kwargs) if kwargs else None
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=model, contents=contents, config=config)
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"
    message = info.value.message or ""
    assert "`quickstart cassettes`" in message and "quickstart record" in message
    return message


def _closest(message: str) -> str:
    found = re.search(r"The closest cassette is '([^']+)'", message)
    assert found, message
    return found.group(1)


def _differs(message: str) -> str:
    return message.split("differs from it in ", 1)[1]


def test_a_recorded_prompt_answers_as_recorded(client):
    answer = client.models.generate_content(model=FIRST.model, contents=PROMPT)
    assert answer.text


def test_another_system_instruction_is_named(client):
    message = _not_found(client, system_instruction="Answer in French.")
    assert _closest(message) == "text_first_stream"
    assert _differs(message).startswith("the system instruction (recorded: none; sent: 'Answer")
    assert "the prompt" not in _differs(message)


def test_a_thinking_config_is_named(client):
    config = types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)
    message = _not_found(client, thinking_config=config)
    assert _closest(message) == "text_first_stream"
    assert "the generation config's thinking config" in _differs(message)
    assert "LOW" in message and "the prompt" not in _differs(message)


def test_tools_are_named(client):
    tool = types.Tool(
        function_declarations=[types.FunctionDeclaration(name="get_time", description="Now.")]
    )
    message = _not_found(client, tools=[tool])
    assert _closest(message) == "text_first_stream"
    assert _differs(message).startswith("the tools (recorded: none;")


def test_a_missing_history_is_named(client):
    turn2 = CASSETTES["chat_tide_pool_turn2"]
    last = turn2.request["contents"][-1]
    message = _not_found(
        client,
        contents=[types.Content.model_validate(last)],
        system_instruction=turn2.request["systemInstruction"]["parts"][0]["text"],
    )
    assert _closest(message) == "chat_tide_pool_turn2"
    assert _differs(message).startswith("the history (the turns before the prompt) (recorded: ")
    assert "sent: none" in _differs(message)


def test_another_model_is_named(client):
    message = _not_found(client, model="gemini-2.5-flash")
    assert _closest(message) == "text_first_stream"
    assert _differs(message).startswith("the model (recorded: 'gemini-3.8-flash'; sent:")


def test_a_new_prompt_names_the_prompt_of_the_nearest_recording(client):
    message = _not_found(client, contents=PROMPT.replace("bread dough", "pizza dough"))
    assert _closest(message) == "text_first_stream"
    assert _differs(message).startswith("the prompt (the last turn) (recorded: 'In three")


@pytest.mark.parametrize(
    "fault", ["faults_overloaded", "faults_dropped_stream", "web_sse_broken", "faults_split_utf8"]
)
def test_the_nearest_recording_is_never_a_fault_recording(client, fault):
    cassette = CASSETTES[fault]
    assert cassette.faulty
    prompt = cassette.request["contents"][-1]["parts"][0]["text"]
    for contents in (prompt, prompt + " Please."):
        message = _not_found(client, contents=contents, system_instruction="Be brief.")
        assert not CASSETTES[_closest(message)].faulty, message


def test_the_interactions_404_names_the_field_and_never_a_fault_recording(emulator):
    first = CASSETTES["interactions_first_stream"]
    dropped = CASSETTES["interactions_dropped"]
    assert dropped.faulty and not first.faulty
    with _http(emulator) as http:
        body = {"model": first.model, **first.request, "system_instruction": "Answer in Welsh."}
        answer = http.post("/v1beta/interactions", json=body)
        message = answer.json()["error"]["message"]
        assert answer.status_code == 404 and answer.json()["error"]["status"] == "NOT_FOUND"
        assert _closest(message) == first.name
        assert _differs(message).startswith("the system instruction (recorded: none;")
        assert "`quickstart cassettes`" in message
        answer = http.post(
            "/v1beta/interactions", json={"model": dropped.model, **dropped.request, "tools": []}
        )
        assert answer.status_code == 200  # tools: [] is no tools: the recording answers
        body = {"model": dropped.model, "input": dropped.request["input"] + " Thanks."}
        message = http.post("/v1beta/interactions", json=body).json()["error"]["message"]
        assert not CASSETTES[_closest(message)].faulty, message

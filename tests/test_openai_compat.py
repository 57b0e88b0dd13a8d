"""Gemini's OpenAI compatibility endpoint (``/v1beta/openai/``) in the emulator, driven by
OpenAI's own Python SDK (sync and async, streaming and not) and by curl over real sockets:
chat completions answered from the shipped ``openai`` cassettes, ``data: [DONE]``, usage on
the last chunk when ``stream_options.include_usage`` asks for it, the endpoint's error list
for an unrecorded request and for a missing or rejected Bearer key, ``models``, and record
mode (a second emulator as the upstream) recording a stream that then replays offline."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from quickstart_helpers.emulator import (
    CassetteStore,
    Emulator,
    load_cassette,
    recording_emulator,
    shipped_cassette_dir,
)

SHIPPED = shipped_cassette_dir() / "openai"
FIRST = load_cassette(SHIPPED / "openai_marlo_1.json")
MODEL = FIRST.model
MESSAGES = FIRST.request["messages"]
ANSWER = "".join(c.response["choices"][0]["delta"]["content"] for c in FIRST.chunks)
USAGE = FIRST.chunks[-1].response["usage"]
KEY = "AIzaFAKE-openai-test-Qk4wZ8"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    started = Emulator(store=CassetteStore([SHIPPED]), pacing="fast").start()
    yield started
    started.stop()


def _http(emulator: Emulator) -> httpx.Client:
    return httpx.Client(verify=emulator.certificate.client_context())


def _client(emulator: Emulator, key: str = KEY) -> openai.OpenAI:
    base = f"{emulator.base_url}/v1beta/openai/"
    return openai.OpenAI(api_key=key, base_url=base, http_client=_http(emulator), max_retries=0)


def _async_client(emulator: Emulator) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(verify=emulator.certificate.client_context())
    base = f"{emulator.base_url}/v1beta/openai/"
    return openai.AsyncOpenAI(api_key=KEY, base_url=base, http_client=http, max_retries=0)


def test_sync_stream_sends_deltas_then_usage_on_the_last_chunk(emulator):
    stream = _client(emulator).chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert len(chunks) == len(FIRST.chunks) > 3
    assert "".join(c.choices[0].delta.content for c in chunks) == ANSWER
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.id for c in chunks} == {FIRST.chunks[0].response["id"]}
    assert [c.choices[0].finish_reason for c in chunks][-2:] == [None, "stop"]
    assert [c.usage is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].usage.prompt_tokens == USAGE["prompt_tokens"]


def test_without_include_usage_no_chunk_carries_usage(emulator):
    stream = _client(emulator).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content for c in chunks) == ANSWER
    assert all(c.usage is None for c in chunks)


def test_sync_without_stream_answers_one_chat_completion(emulator):
    completion = _client(emulator).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == ANSWER
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == USAGE["total_tokens"]


def test_async_stream_and_async_completion(emulator):
    async def run() -> tuple[str, str]:
        client = _async_client(emulator)
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        streamed = "".join([c.choices[0].delta.content async for c in stream])
        completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
        await client.close()
        return streamed, completion.choices[0].message.content

    assert asyncio.run(run()) == (ANSWER, ANSWER)


def test_a_later_turn_is_answered_with_its_history(emulator):
    second = load_cassette(SHIPPED / "openai_marlo_2.json")
    history = [*MESSAGES, {"role": "assistant", "content": ANSWER}]
    history.append({"role": "user", "content": "Which of those should I never touch?"})
    assert history == second.request["messages"]
    completion = _client(emulator).chat.completions.create(model=MODEL, messages=history)
    assert completion.choices[0].message.content.startswith("Leave the sea urchins alone")


def test_curl_streams_sse_events_ending_with_done(emulator):
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    out = subprocess.run(
        ["curl", "-sN", "--cacert", str(emulator.certificate.cert_file),
         f"{emulator.base_url}/v1beta/openai/chat/completions",
         "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {KEY}",
         "-d", json.dumps(body)],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    events = out.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    first = json.loads(events[0].removeprefix("data: "))
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"]["role"] == "assistant"


def test_an_unrecorded_request_gets_the_endpoints_error_list(emulator):
    messages = [{"role": "user", "content": "What is the tallest lighthouse?"}]
    with pytest.raises(openai.NotFoundError) as caught:
        _client(emulator).chat.completions.create(model=MODEL, messages=messages)
    body = caught.value.body
    assert isinstance(body, list) and body[0]["error"]["status"] == "NOT_FOUND"
    assert "The closest cassette is 'openai_marlo_" in body[0]["error"]["message"]


@pytest.mark.parametrize(
    ("headers", "status", "name"),
    [
        ({}, 403, "PERMISSION_DENIED"),
        ({"Authorization": "Bearer invalid"}, 400, "INVALID_ARGUMENT"),
    ],
)
def test_a_missing_or_rejected_bearer_key_gets_the_auth_error(emulator, headers, status, name):
    url = f"{emulator.base_url}/v1beta/openai/chat/completions"
    answer = _http(emulator).post(url, json={"model": MODEL, "messages": MESSAGES}, headers=headers)
    assert answer.status_code == status
    assert answer.json()[0]["error"]["status"] == name


def test_the_sdk_with_the_key_invalid_raises_bad_request(emulator):
    with pytest.raises(openai.BadRequestError) as caught:
        _client(emulator, "invalid").chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.body[0]["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_models_lists_and_gets_the_recorded_model(emulator):
    client = _client(emulator)
    assert f"models/{MODEL}" in [m.id for m in client.models.list()]
    assert client.models.retrieve(MODEL).owned_by == "google"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gemini-0-unknown")


def test_record_mode_records_a_compatibility_stream_that_replays(tmp_path: Path):
    upstream = Emulator(store=CassetteStore([SHIPPED]), pacing="fast").start()
    folder = tmp_path / "cassettes"
    proxy = recording_emulator(
        folder,
        upstream=upstream.base_url,
        upstream_ca=upstream.certificate.cert_file,
        pacing="fast",
        shared=False,
    )
    try:
        kwargs = {"stream": True, "stream_options": {"include_usage": True}}
        chunks = list(
            _client(proxy).chat.completions.create(model=MODEL, messages=MESSAGES, **kwargs)
        )
        assert "".join(c.choices[0].delta.content for c in chunks) == ANSWER
        # The SDK hangs up at `data: [DONE]`; the proxy writes the cassette once the upstream
        # has ended its answer, a moment later.
        for _ in range(200):
            if proxy.recorder.written:
                break
            time.sleep(0.025)
        (written,) = proxy.recorder.written
        assert KEY not in written.read_text("utf-8")
        recorded = load_cassette(written)
        assert recorded.kind == "openai" and len(recorded.chunks) == len(chunks)
    finally:
        proxy.stop()
        upstream.stop()
    replay = Emulator(store=CassetteStore([folder]), pacing="fast").start()
    try:
        again = _client(replay).chat.completions.create(model=MODEL, messages=MESSAGES, **kwargs)
        replayed = list(again)
        assert [c.model_dump() for c in replayed] == [c.model_dump() for c in chunks]
    finally:
        replay.stop()


def test_a_body_that_is_not_a_chat_request_gets_the_400_list(emulator):
    url = f"{emulator.base_url}/v1beta/openai/chat/completions"
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    answer = _http(emulator).post(url, content=b"{not json", headers=headers)
    assert answer.status_code == 400
    assert answer.json()[0]["error"]["status"] == "INVALID_ARGUMENT"
    assert answer.json()[0]["error"]["message"].startswith("Invalid JSON payload received.")


def test_a_recorded_drop_fault_breaks_the_compatibility_stream(tmp_path):
    broken = json.loads((SHIPPED / "openai_marlo_1.json").read_text("utf-8"))
    broken["name"], broken["faults"] = "openai_dropped", [{"fault": "drop", "after": 2}]
    (tmp_path / "dropped.json").write_text(json.dumps(broken), "utf-8")
    dropping = Emulator(store=CassetteStore([tmp_path]), pacing="fast").start()
    try:
        stream = _client(dropping).chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True
        )
        received = []
        with pytest.raises(httpx.RemoteProtocolError):  # as a dropped connection live
            received.extend(c.choices[0].delta.content for c in stream)
        assert len(received) == 2
    finally:
        dropping.stop()

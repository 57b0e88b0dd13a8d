"""Conformance of the emulator's REST routes, each case run by more than one client.

Clients: the Python SDK (sync, async, chat; base URL with and without a trailing
``/``) and raw HTTP with httpx (key as ``?key=`` and as ``x-goog-api-key``; camelCase
and snake_case bodies; SSE and JSON-array streams parsed here, independently of the
emulator's framer). The JavaScript SDK runs the same recordings in test_js_sdk.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from google.genai import errors, types

from quickstart_helpers.emulator import Emulator

from . import conformance
from .conformance import (
    CHAT1,
    CHAT2,
    IMAGE,
    KEY,
    TEXT,
    chunk_texts,
    last_prompt,
    prompt_tokens,
    system_text,
)
from .conformance import sdk_client as sdk

emulator = conformance.emulator  # the module-scoped emulator of the shipped cassettes


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    ctx = ssl.create_default_context(cafile=str(emulator.certificate.cert_file))
    with httpx.Client(base_url=emulator.base_url, verify=ctx, timeout=30) as client:
        yield client


def text_of(response: types.GenerateContentResponse) -> str:
    parts = response.candidates[0].content.parts or []
    return "".join(p.text or "" for p in parts if not p.thought)


# -- Python SDK, base URL with and without a trailing slash ---------------------------

SLASH = pytest.mark.parametrize("slash", [False, True], ids=["base", "base-slash"])


@SLASH
def test_sdk_sync_stream(emulator, slash):
    stream = sdk(emulator, slash).models.generate_content_stream(
        model=TEXT.model, contents=last_prompt(TEXT)
    )
    assert [text_of(c) for c in stream] == chunk_texts(TEXT)


@SLASH
def test_sdk_async_stream_and_call(emulator, slash):
    client = sdk(emulator, slash)

    async def run():
        stream = await client.aio.models.generate_content_stream(
            model=TEXT.model, contents=last_prompt(TEXT)
        )
        chunks = [text_of(c) async for c in stream]
        whole = await client.aio.models.generate_content(
            model=TEXT.model, contents=last_prompt(TEXT)
        )
        return chunks, whole

    chunks, whole = asyncio.run(run())
    assert chunks == chunk_texts(TEXT)
    assert whole.text == "".join(chunk_texts(TEXT))


@SLASH
def test_sdk_chat_two_turns(emulator, slash):
    chat = sdk(emulator, slash).chats.create(
        model=CHAT1.model,
        config=types.GenerateContentConfig(system_instruction=system_text(CHAT1)),
    )
    first = [text_of(c) for c in chat.send_message_stream(last_prompt(CHAT1))]
    second = [text_of(c) for c in chat.send_message_stream(last_prompt(CHAT2))]
    assert first == chunk_texts(CHAT1)
    assert second == chunk_texts(CHAT2)


@SLASH
def test_sdk_models_list_get_and_count_tokens(emulator, slash):
    client = sdk(emulator, slash)
    names = [m.name for m in client.models.list(config={"page_size": 2})]
    assert names == sorted(names)
    assert {f"models/{TEXT.model}", f"models/{IMAGE.model}"} <= set(names)
    model = client.models.get(model=TEXT.model)
    assert model.name == f"models/{TEXT.model}"
    assert {"generateContent", "countTokens"} <= set(model.supported_actions)
    # The catalog holds only what can be justified for this model: no invented limits.
    assert model.display_name is None and model.input_token_limit is None
    counted = client.models.count_tokens(model=TEXT.model, contents=last_prompt(TEXT))
    assert counted.total_tokens == prompt_tokens(TEXT)


@SLASH
def test_sdk_sees_the_api_errors(emulator, slash):
    client = sdk(emulator, slash)
    with pytest.raises(errors.ClientError) as info:
        client.models.count_tokens(model=TEXT.model, contents="never recorded")
    assert info.value.code == 404
    assert "never recorded" in info.value.message
    with pytest.raises(errors.ClientError) as info:
        client.models.get(model="gemini-unknown")
    assert info.value.code == 404
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(
            model=TEXT.model,
            contents=last_prompt(TEXT),
            config={"response_modalities": ["IMAGE"]},
        )
    assert info.value.code == 400


def test_sdk_image_request_with_modalities_in_another_order(emulator):
    response = sdk(emulator, False).models.generate_content(
        model=IMAGE.model,
        contents=last_prompt(IMAGE),
        config=types.GenerateContentConfig(response_modalities=["IMAGE", "TEXT"]),
    )
    kinds = {("image" if p.inline_data else "text") for p in response.candidates[0].content.parts}
    assert kinds == {"image", "text"}


# -- raw HTTP: keys, casing, both stream formats, parsed independently -----------------


def body(recorded, *, snake: bool = False) -> dict:
    """The recorded request as JSON, in camelCase (as recorded) or snake_case."""
    data = json.loads(json.dumps(recorded.request))
    if snake:
        if "systemInstruction" in data:
            data["system_instruction"] = data.pop("systemInstruction")
        if "generationConfig" in data:
            config = data.pop("generationConfig")
            data["generation_config"] = {
                "response_modalities": config.pop("responseModalities"),
                **config,
            }
    return data


def parse_sse(raw: bytes) -> list[dict]:
    """An SSE parser written from the spec: events end at a blank line (LF or CRLF)."""
    events, data = [], []
    for line in raw.decode("utf-8").replace("\r\n", "\n").split("\n"):
        if line == "":
            if data:
                events.append(json.loads("\n".join(data)))
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        else:
            raise AssertionError(f"unexpected SSE line {line!r}")
    assert not data, "the stream ended inside an event"
    return events


def parse_json_array_incrementally(raw: bytes) -> list[dict]:
    """Read a streamed JSON array object by object, as a streaming client must."""
    text = raw.decode("utf-8")
    decoder = json.JSONDecoder()
    assert text.startswith("[")
    index, objects = 1, []
    while True:
        while text[index] in " \r\n\t,":
            index += 1
        if text[index] == "]":
            assert text[index + 1 :].strip() == ""
            return objects
        value, index = decoder.raw_decode(text, index)
        objects.append(value)


def texts_of(events: list[dict]) -> list[str]:
    return [
        "".join(
            p.get("text", "")
            for p in e["candidates"][0]["content"].get("parts", [])
            if not p.get("thought")
        )
        for e in events
    ]


KEYS = pytest.mark.parametrize("key_in", ["query", "header"])
CASING = pytest.mark.parametrize("snake", [False, True], ids=["camel", "snake"])


def absolute(http: httpx.Client, path: str) -> str:
    """The full URL of a path (httpx would read ``//v1beta/...`` as a host name)."""
    return str(http.base_url).rstrip("/") + path


def post(http, path, payload, key_in="header", headers=None):
    path = absolute(http, path)
    if key_in == "query":
        sep = "&" if "?" in path else "?"
        return http.post(f"{path}{sep}key={KEY}", json=payload, headers=headers)
    return http.post(path, json=payload, headers={"x-goog-api-key": KEY, **(headers or {})})


@KEYS
@CASING
def test_raw_sse_stream(http, key_in, snake):
    recorded = CHAT1
    response = post(
        http,
        f"/v1beta/models/{recorded.model}:streamGenerateContent?alt=sse",
        body(recorded, snake=snake),
        key_in,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert texts_of(parse_sse(response.content)) == chunk_texts(recorded)


@KEYS
@CASING
def test_raw_json_array_stream(http, key_in, snake):
    recorded = IMAGE
    response = post(
        http,
        f"//v1beta//models/{recorded.model}:streamGenerateContent",
        body(recorded, snake=snake),
        key_in,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.content.startswith(b"[{") and response.content.endswith(b"\n]")
    assert b"\n,\r\n{" in response.content
    whole = json.loads(response.content)
    assert whole == parse_json_array_incrementally(response.content)
    assert whole == [c.response for c in recorded.chunks]


def test_raw_json_array_and_sse_carry_the_same_chunks(http):
    path = f"/v1/models/{TEXT.model}:streamGenerateContent"
    sse = parse_sse(post(http, path + "?alt=sse", body(TEXT)).content)
    array = json.loads(post(http, path, body(TEXT)).content)
    assert sse == array


def test_raw_single_parts_object_and_role_casing_match(http):
    payload = {"contents": [{"role": "User", "parts": {"text": last_prompt(TEXT)}}]}
    response = post(http, f"/v1beta/models/{TEXT.model}:generateContent", payload)
    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"][-1]["text"].endswith(
        chunk_texts(TEXT)[-1]
    )


def test_raw_count_tokens_both_shapes(http):
    path = f"/v1beta/models/{CHAT1.model}:countTokens"
    whole = {"generateContentRequest": {"model": f"models/{CHAT1.model}", **body(CHAT1)}}
    assert post(http, path, whole, "query").json()["totalTokens"] == prompt_tokens(CHAT1)
    plain = {"contents": body(TEXT)["contents"]}
    answer = post(http, f"/v1beta/models/{TEXT.model}:countTokens", plain).json()
    assert answer == {
        "totalTokens": prompt_tokens(TEXT),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens(TEXT)}],
    }


def test_raw_models_paging(http):
    first = http.get("/v1beta/models?pageSize=1", headers={"x-goog-api-key": KEY}).json()
    names = [m["name"] for m in first["models"]]
    token = first["nextPageToken"]
    while token:
        page = http.get(f"/v1beta/models?pageSize=1&pageToken={token}&key={KEY}").json()
        names += [m["name"] for m in page["models"]]
        token = page.get("nextPageToken")
    everything = http.get(absolute(http, f"//v1beta/models?key={KEY}")).json()
    assert "nextPageToken" not in everything
    assert names == [m["name"] for m in everything["models"]]
    assert len(names) == len(set(names)) >= 3
    one = http.get(f"/v1beta/models/{IMAGE.model}?key={KEY}").json()
    assert one == next(m for m in everything["models"] if m["name"] == f"models/{IMAGE.model}")


# -- every error is the API's JSON ----------------------------------------------------

TEXT_PATH = f"/v1beta/models/{TEXT.model}:generateContent"

ERRORS = {
    "unknown-top-field": (
        "POST",
        TEXT_PATH,
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfg": {}},
        400,
        'Invalid JSON payload received. Unknown name "generationConfg": Cannot find field.',
    ),
    "unknown-nested-field": (
        "POST",
        TEXT_PATH,
        {"contents": [{"parts": [{"text": "x"}]}], "generation_config": {"temprature": 1}},
        400,
        "Unknown name \"temprature\" at 'generation_config': Cannot find field.",
    ),
    "bad-enum": (
        "POST",
        TEXT_PATH,
        {
            "contents": [{"parts": [{"text": "x"}]}],
            "generationConfig": {"responseModalities": ["SMELL"]},
        },
        400,
        "Invalid value at 'generation_config.response_modalities[0]'",
    ),
    "array-body": ("POST", TEXT_PATH, [], 400, "Expected an object, got an array"),
    "null-body": ("POST", TEXT_PATH, None, 400, "Expected an object, got null"),
    "not-json": ("POST", TEXT_PATH, b"{not json", 400, "Invalid JSON payload received."),
    "no-recording": (
        "POST",
        TEXT_PATH,
        {"contents": [{"role": "User", "parts": [{"text": "Never recorded, this one"}]}]},
        404,
        "with the prompt 'Never recorded, this one'",
    ),
    "unknown-method": (
        "POST",
        f"/v1beta/models/{TEXT.model}:embedContent",
        {},
        404,
        "embedContent",
    ),
    "unknown-route": ("GET", "/v1beta/files", None, 404, "GET /v1beta/files"),
    "wrong-http-method": ("DELETE", "/v1beta/models", None, 405, "DELETE"),
    "get-on-a-method": ("GET", TEXT_PATH, None, 405, "GET"),
    "unknown-model": ("GET", "/v1beta/models/gemini-nope", None, 404, "models/gemini-nope"),
    "count-no-recording": (
        "POST",
        f"/v1beta/models/{TEXT.model}:countTokens",
        {"contents": [{"parts": [{"text": "uncounted"}]}]},
        404,
        "never estimates",
    ),
    "bad-page-token": ("GET", "/v1beta/models?pageToken=zzz", None, 400, "page token"),
    "missing-key": ("GET", "/v1beta/models", None, 403, "API Key"),
    "websocket-route-without-upgrade": (
        "GET",
        "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
        None,
        400,
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_every_error_is_the_api_json(http, case):
    method, path, payload, status, message = ERRORS[case]
    headers = {} if case == "missing-key" else {"x-goog-api-key": KEY}
    if isinstance(payload, bytes):
        response = http.request(method, path, content=payload, headers=headers)
    elif payload is None and method == "POST":
        response = http.request(method, path, content=b"null", headers=headers)
    else:
        response = http.request(
            method, path, json=payload if method == "POST" else None, headers=headers
        )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == status
    assert isinstance(error["status"], str) and error["status"]
    assert message in error["message"]


def test_unknown_field_names_the_field_in_the_bad_request_detail(http):
    payload = {"contents": [{"parts": [{"text": "x", "txet": "y"}]}]}
    error = post(http, TEXT_PATH, payload).json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    violation = error["details"][0]["fieldViolations"][0]
    assert violation["field"] == "contents[0].parts[0]"
    assert '"txet"' in violation["description"]


def test_sdk_raises_the_same_400(emulator):
    client = sdk(emulator, True)
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(
            model=TEXT.model,
            contents=last_prompt(TEXT),
            config={"response_modalities": ["SMELL"]},
        )
    assert info.value.code == 400
    assert "response_modalities[0]" in info.value.message


# -- CORS and local-only ----------------------------------------------------------------


def test_cors_preflight_and_answers_for_a_local_page(http):
    origin = "http://localhost:5173"
    preflight = http.options(
        absolute(http, "/") + f"/v1beta/models/{TEXT.model}:streamGenerateContent?alt=sse",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-goog-api-key,x-goog-api-client",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == (
        "content-type,x-goog-api-key,x-goog-api-client"
    )
    stream = post(
        http,
        f"/v1beta/models/{TEXT.model}:streamGenerateContent?alt=sse",
        body(TEXT),
        headers={"Origin": origin},
    )
    assert stream.headers["access-control-allow-origin"] == origin
    error = http.get("/v1beta/nothing", headers={"Origin": origin})
    assert error.headers["access-control-allow-origin"] == origin


def test_foreign_origin_and_host_are_refused_as_json(http):
    foreign = http.get(f"/v1beta/models?key={KEY}", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert "access-control-allow-origin" not in foreign.headers
    assert foreign.json()["error"]["status"] == "PERMISSION_DENIED"
    rebound = http.get(f"/v1beta/models?key={KEY}", headers={"Host": "evil.example"})
    assert rebound.status_code == 403
    assert "evil.example" in rebound.json()["error"]["message"]


# -- the CLI's emulator -------------------------------------------------------------------


def test_cli_emulator_frames_sse_with_crlf(tmp_path):
    env = {**os.environ, "QUICKSTART_PACING": "fast"}
    process = subprocess.Popen(
        [sys.executable, "-m", "quickstart_cli", "emulator"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        exports = {}
        for _ in range(10):
            line = process.stdout.readline()
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
            if len(exports) == 3:
                break
        ctx = ssl.create_default_context(cafile=exports["SSL_CERT_FILE"])
        with httpx.Client(verify=ctx, timeout=30) as client:
            raw = client.post(
                f"{exports['GOOGLE_GEMINI_BASE_URL']}/v1beta/models/{TEXT.model}"
                ":streamGenerateContent?alt=sse",
                json=body(TEXT),
                headers={"x-goog-api-key": KEY},
            ).content
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert raw.count(b"\r\n\r\n") == len(TEXT.chunks)
    assert texts_of(parse_sse(raw)) == chunk_texts(TEXT)

"""Regression tests of the emulator's hardening (issue 16): an unmatched huge prompt does
not delay other streams, the request log is bounded, silent and slow clients are timed
out, every error is the API's JSON, and 500 concurrent streams complete and leave no
descriptor behind.

Real emulators on 127.0.0.1 over TLS; the real SDK, aiohttp or raw sockets as clients.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator

import aiohttp
import httpx
import psutil
import pytest
from google import genai
from google.genai import errors, types

from quickstart_helpers.emulator import CassetteStore, Emulator, RequestLog, parse_cassette
from quickstart_helpers.emulator._live import CLOSE_INVALID_ARGUMENT
from quickstart_helpers.emulator._protocol import ReceivedRequest
from tests._sockets import closed_within
from tests._sse import iter_events, iter_lines

MODEL = "gemini-3.8-flash"
KEY = "test-key"
TICKS = 30
TICK_MS = 100
TICKER_PROMPT = "Count slowly to thirty."
NEAR_PROMPT = "Tell me about the ocean and the creatures that live in it."
HEADERS = {"x-goog-api-key": KEY}


def _chunk(text: str, delay_ms: int, *, last: bool = False) -> dict:
    candidate: dict = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if last:
        candidate["finishReason"] = "STOP"
    return {"delay_ms": delay_ms, "response": {"candidates": [candidate], "modelVersion": MODEL}}


def _generate(name: str, prompt: str, chunks: list[dict]) -> dict:
    return {
        "format": 1,
        "kind": "generate",
        "name": name,
        "model": MODEL,
        "request": {"contents": [{"role": "user", "parts": [{"text": prompt}]}]},
        "chunks": chunks,
    }


def _store() -> CassetteStore:
    """The shipped cassettes plus a slow ticker and a prompt close to the huge one."""
    store = CassetteStore()
    ticks = [_chunk(f"{i} ", TICK_MS, last=i == TICKS) for i in range(1, TICKS + 1)]
    store.add(parse_cassette(_generate("hardening_ticker", TICKER_PROMPT, ticks)))
    store.add(parse_cassette(_generate("hardening_ocean", NEAR_PROMPT, [_chunk("Waves.", 0)])))
    return store


@pytest.fixture(scope="module")
def fast() -> Iterator[Emulator]:
    with Emulator(_store(), pacing="fast") as emu:
        yield emu


def _http(emu: Emulator) -> httpx.Client:
    assert emu.certificate is not None
    return httpx.Client(verify=emu.certificate.client_context(), timeout=60)


def _assert_api_error(response: httpx.Response, code: int, status: str) -> dict:
    assert response.status_code == code, response.text
    # Before the first chunk of an SSE stream, the API labels its error JSON text/event-stream.
    sse = response.request.url.params.get("alt") == "sse"
    kind = "text/event-stream" if sse else "application/json"
    assert response.headers["content-type"].startswith(kind)
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code and body["error"]["status"] == status
    assert body["error"]["message"]
    return body["error"]


# -- an unmatched huge prompt does not delay other streams ---------------------------------


def test_unmatched_1mb_prompt_does_not_delay_another_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    huge = (NEAR_PROMPT + " ") * (1024 * 1024 // (len(NEAR_PROMPT) + 1) + 1)
    assert len(huge) > 1024 * 1024
    caplog.set_level(logging.INFO, logger="quickstart_helpers.emulator")
    emu = Emulator(_store(), pacing="realtime").start()
    client = genai.Client(api_key=KEY, http_options=emu.http_options())
    live_model = next(c.model for c in emu.store.cassettes if c.name == "live_narration")

    async def ticker(arrivals: list[float]) -> str:
        text = ""
        stream = await client.aio.models.generate_content_stream(
            model=MODEL, contents=TICKER_PROMPT
        )
        async for chunk in stream:
            arrivals.append(time.monotonic())
            text += chunk.text or ""
        return text

    async def unmatched_rest() -> tuple[str, float]:
        with pytest.raises(errors.ClientError) as caught:
            await client.aio.models.generate_content(model=MODEL, contents=huge)
        return caught.value.message or "", time.monotonic()

    async def unmatched_live() -> tuple[int, float]:
        config = types.LiveConnectConfig(response_modalities=["AUDIO"])
        with pytest.raises(errors.APIError) as caught:
            async with client.aio.live.connect(model=live_model, config=config) as session:
                await session.send_realtime_input(text=huge)
                async for _ in session.receive():
                    pass
        return caught.value.code, time.monotonic()

    async def scenario() -> tuple[list[float], str, tuple[str, float], tuple[int, float]]:
        arrivals: list[float] = []
        stream = asyncio.ensure_future(ticker(arrivals))
        for _ in range(200):  # bounded: wait for the first two chunks
            if len(arrivals) >= 2 or stream.done():
                break
            await asyncio.sleep(0.05)
        rest = await unmatched_rest()
        live = await unmatched_live()
        return arrivals, await stream, rest, live

    try:
        arrivals, text, (message, rest_done), (live_code, live_done) = asyncio.run(scenario())
    finally:
        client.close()
        emu.stop()
    assert text == "".join(f"{i} " for i in range(1, TICKS + 1))
    # Both unmatched requests were answered while the ticker was still streaming ...
    assert rest_done < arrivals[-1] and live_done < arrivals[-1]
    # ... and no gap between its chunks grew far beyond the recorded 100 ms (it grew by
    # the whole closest-cassette search, 18 s for 1 MB, before the search was bounded).
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert max(gaps) < TICK_MS / 1000 + 1.5, gaps
    # The 404 still names the closest cassette; the Live close names the closest turn.
    assert "'hardening_ocean'" in message
    assert live_code == 1008
    assert "The closest recorded turn is" in caplog.text


def test_closest_names_the_nearest_prompt_of_a_huge_one() -> None:
    store = _store()
    body = {"contents": [{"role": "user", "parts": [{"text": NEAR_PROMPT + "x" * 5_000_000}]}]}
    closest = store.closest(MODEL, body)
    assert closest is not None and closest.name == "hardening_ocean"


# -- the request log is bounded ------------------------------------------------------------


def test_five_large_bodies_do_not_grow_the_request_log(fast: Emulator) -> None:
    """Issue 16's case (five 40 MB bodies, all kept) at a tenth of the size: each body is
    over the 1 MiB the log keeps of one, and together they are over its 16 MiB."""
    fast.requests.clear()
    log = fast.requests
    assert 5 * (4 << 20) > log.max_bytes and (4 << 20) > log.max_body_bytes
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "y" * (4 << 20)}]}]})
    with _http(fast) as http:
        for _ in range(5):
            response = http.post(
                f"{fast.base_url}/v1beta/models/{MODEL}:generateContent",
                content=body,
                headers={**HEADERS, "Content-Type": "application/json"},
            )
            _assert_api_error(response, 404, "NOT_FOUND")
    assert len(log) == 5
    assert all(r.size == len(body) and r.truncated for r in log)
    assert all(isinstance(r.body, str) and r.body.startswith("<not kept: ") for r in log)
    assert log.bytes == 0  # the markers hold none of the 20 MiB
    assert log.bytes <= log.max_bytes


def test_the_request_log_keeps_the_newest_within_its_count_and_byte_limits() -> None:
    log = RequestLog(max_count=3, max_bytes=1000, max_body_bytes=400)
    for i in range(5):
        log.append(ReceivedRequest("generateContent", MODEL, "v1", {"i": i}, size=10))
    assert [r.body["i"] for r in log] == [2, 3, 4] and log.bytes == 30
    for i in range(5):
        log.append(ReceivedRequest("generateContent", MODEL, "v1", {"j": i}, size=300))
    assert [r.body.get("j") for r in log] == [2, 3, 4] and log.bytes == 900
    big = ReceivedRequest("generateContent", MODEL, "v1", {"big": True}, size=401)
    log.append(big)
    assert big.truncated and big.body.startswith("<not kept: 401 bytes")
    assert log[-1] is big and log.bytes == 600
    # A Live session's messages are kept as received and counted as they come, up to the
    # per-body limit; what the log counts is what it keeps.
    setup = '{"setup": {}}'.ljust(100)
    session = ReceivedRequest("BidiGenerateContent", MODEL, "v1", [setup], size=100)
    log.append(session)
    log.add_message(session, '{"a": 1}'.ljust(250))
    assert session.body == [{"setup": {}}, {"a": 1}] and session.size == 350
    log.add_message(session, '{"b": 2}'.ljust(100))
    log.add_message(session, '{"c": 3}'.ljust(100))
    assert session.truncated and session.size == 550
    assert session.body[:2] == [{"setup": {}}, {"a": 1}]
    assert session.body[2].startswith("<not kept: 200 bytes") and len(session.body) == 3
    assert log.bytes == sum(r.size for r in log if not r.truncated) + 350
    assert sum(len(m) for m in session.wire) == 350
    assert log.bytes <= log.max_bytes
    log.clear()
    assert log == [] and log.bytes == 0
    with pytest.raises(ValueError, match="positive"):
        RequestLog(max_count=0)


# -- timeouts ------------------------------------------------------------------------------


def test_silent_slow_and_setup_less_clients_are_timed_out() -> None:
    emu = Emulator(
        _store(), pacing="fast", header_timeout=0.5, body_timeout=0.5, live_setup_timeout=0.5
    ).start()
    assert emu.certificate is not None
    ctx = emu.certificate.client_context()

    def tls() -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", emu.port), timeout=10)
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    async def live_without_setup() -> tuple[int | None, str]:
        url = f"wss://127.0.0.1:{emu.port}/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, ssl=ctx, headers=HEADERS) as ws:
                message = await asyncio.wait_for(ws.receive(), 10)
                return ws.close_code, str(message.extra)

    try:
        silent, trickling, slow_body = tls(), tls(), tls()
        trickling.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends its head
        slow_body.sendall(
            f"POST /v1beta/models/{MODEL}:generateContent HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{emu.port}\r\nx-goog-api-key: {KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            '{"contents": '.encode()
        )
        with silent, trickling, slow_body:
            assert closed_within(silent, 10) == b""
            assert closed_within(trickling, 10) == b""
            answer = closed_within(slow_body, 10)
        assert answer is not None and answer.startswith(b"HTTP/1.1 408")
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert b"application/json" in head
        assert json.loads(payload)["error"]["status"] == "DEADLINE_EXCEEDED"
        code, reason = asyncio.run(live_without_setup())
        assert code == 1011 and "no setup message within 0.5 s" in reason
        # The emulator still serves everyone else.
        client = genai.Client(api_key=KEY, http_options=emu.http_options())
        assert client.models.generate_content(model=MODEL, contents=NEAR_PROMPT).text == "Waves."
        client.close()
    finally:
        emu.stop()


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="> 0"):
        Emulator(body_timeout=0)


# -- every error is the API's JSON ---------------------------------------------------------

NESTED = "[" * 100_000 + "]" * 100_000
NESTED_IN_CONTENTS = '{"contents": [{"parts": [' + '{"text": [' * 900 + "]}" * 900 + "]}]}"


@pytest.mark.parametrize(
    "path",
    [
        f"/v1beta/models/{MODEL}:generateContent",
        f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
        f"/v1beta/models/{MODEL}:countTokens",
        "/v1alpha/auth_tokens",
    ],
)
@pytest.mark.parametrize("body", [NESTED, NESTED_IN_CONTENTS], ids=["array", "object"])
def test_deeply_nested_json_is_a_400(fast: Emulator, path: str, body: str) -> None:
    with _http(fast) as http:
        response = http.post(
            fast.base_url + path,
            content=body,
            headers={**HEADERS, "Content-Type": "application/json"},
        )
    error = _assert_api_error(response, 400, "INVALID_ARGUMENT")
    assert "Invalid" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        42,
        None,
        {"contents": 5},
        {"contents": [{"parts": 5}]},
        {"contents": [{"role": "user", "parts": [{"text": ["a"]}]}]},
        {"contents": [], "generationConfig": "hot"},
    ],
)
@pytest.mark.parametrize("method", ["generateContent", "countTokens"])
def test_valid_json_of_the_wrong_shape_is_a_400(fast: Emulator, body: object, method: str) -> None:
    with _http(fast) as http:
        response = http.post(
            f"{fast.base_url}/v1beta/models/{MODEL}:{method}", json=body, headers=HEADERS
        )
    _assert_api_error(response, 400, "INVALID_ARGUMENT")


def test_a_body_over_the_limit_is_a_413_in_json() -> None:
    with Emulator(_store(), pacing="fast", max_body_bytes=4096) as emu, _http(emu) as http:
        body = {"contents": [{"role": "user", "parts": [{"text": "z" * 8192}]}]}
        response = http.post(
            f"{emu.base_url}/v1beta/models/{MODEL}:generateContent", json=body, headers=HEADERS
        )
        error = _assert_api_error(response, 413, "INVALID_ARGUMENT")
        assert "4,096 bytes" in error["message"]
        small = http.post(
            f"{emu.base_url}//v1beta/models/{MODEL}:generateContent",  # merged slashes too
            json={"contents": [{"role": "user", "parts": [{"text": NEAR_PROMPT}]}]},
            headers=HEADERS,
        )
        assert small.status_code == 200


def test_a_request_aiohttp_cannot_parse_gets_json(fast: Emulator) -> None:
    assert fast.certificate is not None
    ctx = fast.certificate.client_context()
    raw = socket.create_connection(("127.0.0.1", fast.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n")
        answer = closed_within(sock, 10)
    assert answer is not None and answer.startswith(b"HTTP/1.")
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert b" 400 " in head.split(b"\r\n")[0] and b"application/json" in head
    assert json.loads(payload)["error"]["status"] == "INVALID_ARGUMENT"


def test_deeply_nested_live_message_closes_with_1007(fast: Emulator) -> None:
    assert fast.certificate is not None
    ctx = fast.certificate.client_context()
    url = f"wss://127.0.0.1:{fast.port}/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"

    async def run() -> int | None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, ssl=ctx, headers=HEADERS) as ws:
                await ws.send_str(NESTED)
                await asyncio.wait_for(ws.receive(), 10)
                return ws.close_code

    assert asyncio.run(run()) == CLOSE_INVALID_ARGUMENT


# -- load ----------------------------------------------------------------------------------


def test_500_concurrent_sse_streams_complete_and_descriptors_return() -> None:
    """Bounded load: 500 simultaneous SSE streams straight to the emulator, fast pacing."""
    process = psutil.Process()
    gc.collect()  # close what earlier tests left for the garbage collector
    emu = Emulator(_store(), pacing="fast").start()
    assert emu.certificate is not None
    ctx = emu.certificate.client_context()
    expected = "".join(f"{i} " for i in range(1, TICKS + 1))
    url = f"{emu.base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    body = {"contents": [{"role": "user", "parts": [{"text": TICKER_PROMPT}]}]}
    baseline = process.num_fds()

    async def one(session: aiohttp.ClientSession) -> str:
        async with session.post(url, json=body, headers=HEADERS) as response:
            assert response.status == 200
            raw = (await response.read()).decode()
        events = list(iter_events(iter_lines([raw])))
        texts = [json.loads(e.data)["candidates"][0]["content"]["parts"][0]["text"] for e in events]
        return "".join(texts)

    async def burst() -> list[str]:
        connector = aiohttp.TCPConnector(limit=0, force_close=True, ssl=ctx)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            return await asyncio.gather(*(one(session) for _ in range(500)))

    try:
        results = asyncio.run(burst())
        assert results == [expected] * 500
        assert len([r for r in emu.requests if r.cassette == "hardening_ticker"]) == 500
        deadline = time.monotonic() + 30  # bounded wait for the server to close its ends
        while process.num_fds() > baseline and time.monotonic() < deadline:
            # Client TLS transports whose close_notify was cut short when asyncio.run
            # closed its loop are closed by the garbage collector: run it.
            gc.collect()
            time.sleep(0.1)
        assert process.num_fds() <= baseline
    finally:
        emu.stop()

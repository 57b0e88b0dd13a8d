"""Regression tests of the web chat's hardening (issue 16): who may call it, errors as
JSON, text that cannot be encoded, failures at every step of a turn, keys kept out of
relayed errors, timeouts, keep-alive comments, shutdown, and a bounded load test.

Real servers on 127.0.0.1, the real SDK, the emulator replaying assets/cassettes/web/.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import psutil
import pytest
from aiohttp import web
from google import genai

from quickstart_helpers import _conversations
from quickstart_helpers._background import BackgroundServer
from quickstart_helpers._scrub import REDACTED, scrub
from quickstart_helpers.chat import Conversation
from quickstart_helpers.emulator import Emulator
from quickstart_helpers.web import (
    MAX_BODY_BYTES,
    STOPPING_MESSAGE,
    ChatServer,
    create_app,
)
from tests import test_web
from tests._sockets import closed_within
from tests.test_web import (
    CHAT,
    FOLLOWUP,
    SLOW,
    cassette_chunks,
    read_stream,
    upstream_connections,
    wait_until,
)

from ._keys import fake_google_key
from ._serve import start_serve
from ._sse import iter_events, iter_lines

# The fast and realtime emulators and the relay of test_web.py (module-scoped fixtures).
emulator = test_web.emulator
server = test_web.server
slow_emulator = test_web.slow_emulator


def json_post(url: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(url, json=body, headers=headers, timeout=30)


def assert_json_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["reason"], str) and len(body["reason"]) > 10
    return body


# -- the front door: Host, Origin, Sec-Fetch-Site, content type ---------------------------


def test_foreign_host_is_refused_before_the_model_is_called(server: ChatServer) -> None:
    # DNS rebinding: another site's name resolving to 127.0.0.1 reaches the server with
    # its own name in Host.
    before = server.stats.started
    for path in ("", "chat/stream?message=" + CHAT, "static/chat.js"):
        response = httpx.get(
            server.url + path, headers={"Host": f"attacker.example:{server.port}"}, timeout=30
        )
        body = assert_json_error(response, 403, "forbidden_host")
        assert "attacker.example" in body["reason"]
    refused = json_post(server.url + "chat", {"message": CHAT}, Host="attacker.example")
    assert_json_error(refused, 403, "forbidden_host")
    assert server.stats.started == before


def test_loopback_names_with_the_port_are_accepted(server: ChatServer) -> None:
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        assert httpx.get(server.url, headers={"Host": host}, timeout=30).status_code == 200
    wrong_port = httpx.get(server.url, headers={"Host": "127.0.0.1:1"}, timeout=30)
    assert_json_error(wrong_port, 403, "forbidden_host")


def test_cross_origin_post_is_refused(server: ChatServer) -> None:
    before = server.stats.started
    response = json_post(server.url + "chat", {"message": CHAT}, Origin="https://evil.example")
    body = assert_json_error(response, 403, "forbidden_origin")
    assert "evil.example" in body["reason"]
    # A page on another port of this machine is another origin too.
    other_port = json_post(
        server.url + "chat", {"message": CHAT}, Origin=f"http://127.0.0.1:{server.port + 1}"
    )
    assert_json_error(other_port, 403, "forbidden_origin")
    assert server.stats.started == before


def test_same_origin_post_is_accepted(server: ChatServer) -> None:
    origin = f"http://127.0.0.1:{server.port}"
    response = json_post(server.url + "chat", {"message": CHAT}, Origin=origin)
    assert response.status_code == 202
    conversation_id = response.json()["conversationId"]
    assert read_stream(server.url + f"conversations/{conversation_id}/stream")[2][-1].event == (
        "done"
    )


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_post_without_json_content_type_is_refused(server: ChatServer, content_type: str) -> None:
    # What a cross-site <form> or a "simple" fetch can send without a CORS preflight.
    before = server.stats.started
    response = httpx.post(
        server.url + "chat",
        content=json.dumps({"message": CHAT}),
        headers={"Content-Type": content_type},
        timeout=30,
    )
    body = assert_json_error(response, 415, "unsupported_media_type")
    assert "application/json" in body["reason"]
    assert server.stats.started == before


def test_cross_site_get_is_refused(server: ChatServer) -> None:
    # An <img src="http://127.0.0.1:8000/chat/stream?message=..."> on another site sends
    # no Origin, but the browser marks it Sec-Fetch-Site: cross-site.
    before = server.stats.started
    for site in ("cross-site", "same-site"):
        response = httpx.get(
            server.url + "chat/stream",
            params={"message": CHAT},
            headers={"Sec-Fetch-Site": site},
            timeout=30,
        )
        assert_json_error(response, 403, "cross_site_request")
    assert server.stats.started == before
    _, _, events = read_stream(server.url + "chat/stream", message=CHAT)
    assert events[-1].event == "done"  # no Sec-Fetch-Site (not a browser): served


def test_extra_allowed_hosts_and_origins(emulator: Emulator) -> None:
    client = genai.Client(api_key="test", http_options=emulator.http_options())
    with ChatServer(
        client, allowed_hosts=("chat.example",), allowed_origins=("https://chat.example",)
    ) as srv:
        ok = json_post(
            srv.url + "chat",
            {"message": CHAT},
            Host="chat.example",
            Origin="https://chat.example",
        )
        assert ok.status_code == 202
        assert_json_error(
            httpx.get(srv.url, headers={"Host": "other.example"}, timeout=30), 403, "forbidden_host"
        )


# -- every error is JSON -------------------------------------------------------------------


def test_unknown_path_and_wrong_method_are_json(server: ChatServer) -> None:
    assert_json_error(httpx.get(server.url + "nothing/here", timeout=30), 404, "not_found")
    assert_json_error(httpx.get(server.url + "static/nope.js", timeout=30), 404, "not_found")
    wrong = httpx.put(server.url + "chat", json={"message": "hi"}, timeout=30)
    assert_json_error(wrong, 405, "method_not_allowed")
    assert "POST" in wrong.headers["Allow"]


def test_oversized_body_is_a_json_413(server: ChatServer) -> None:
    response = httpx.post(
        server.url + "chat",
        content=b'{"message": "' + b"x" * MAX_BODY_BYTES + b'"}',
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert_json_error(response, 413, "request_too_large")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("[" * 100_000 + "]" * 100_000, 400, "invalid_json"),  # RecursionError in json
        ('{"message": ' + "[" * 100_000 + "]" * 100_000 + "}", 400, "invalid_json"),
        ('{"message": {"text": "hi"}}', 400, "invalid_message"),
        ('{"message": ["hi"]}', 400, "invalid_message"),
        ('{"message": "hi", "conversationId": [1]}', 404, "unknown_conversation"),
        ('"just a string"', 400, "invalid_json"),
        (b"\xff\xfe not utf-8", 400, "invalid_json"),
    ],
)
def test_nested_and_wrong_shape_json_get_4xx_json(
    server: ChatServer, body: str | bytes, status: int, code: str
) -> None:
    response = httpx.post(
        server.url + "chat",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert_json_error(response, status, code)


def test_unparsable_requests_get_json(server: ChatServer) -> None:
    # A request line over the limit and a broken header never reach a handler: the
    # connection handler answers them, in JSON too.
    long_line = b"GET /chat/stream?message=" + b"x" * (70 * 1024) + b" HTTP/1.1\r\n\r\n"
    broken_header = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n"
    for request in (long_line, broken_header):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(request)
            raw = closed_within(sock, 10)
        assert raw is not None
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].split(b" ")[1] == b"400"
        assert b"application/json" in head
        assert json.loads(body)["error"] == "bad_request"


def test_a_handler_crash_is_a_json_500_without_the_key(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    key = fake_google_key("SyD-crash-test-key-")

    def make_app() -> web.Application:
        app = create_app(genai.Client(api_key=key, http_options=emulator.http_options()))

        async def crash(request: web.Request) -> web.Response:
            raise RuntimeError(f"upstream said: bad key {key}")

        app.router.add_get("/crash", crash)
        return app

    caplog.set_level(logging.ERROR)
    server = BackgroundServer(make_app, name="crash test", access_log=None).start()
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/crash", timeout=30)
    finally:
        server.stop()
    body = assert_json_error(response, 500, "internal_error")
    assert key not in json.dumps(body)
    assert "RuntimeError" in caplog.text and REDACTED in caplog.text
    assert key not in caplog.text


# -- text that cannot be encoded; no turn left unfinished ---------------------------------


def test_lone_surrogate_is_refused_and_the_conversation_goes_on(server: ChatServer) -> None:
    started = json_post(server.url + "chat", {"message": CHAT}).json()["conversationId"]
    assert read_stream(server.url + f"conversations/{started}/stream")[2][-1].event == "done"
    before = server.stats.started
    # json.dumps writes the lone surrogate as the escape \ud800, as a browser would.
    poisoned = httpx.post(
        server.url + "chat",
        content=json.dumps({"message": "hi \ud800", "conversationId": started}),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    body = assert_json_error(poisoned, 400, "invalid_text")
    assert "surrogate" in body["reason"]
    assert server.stats.started == before
    # The conversation is untouched and takes its next turn.
    follow = json_post(server.url + "chat", {"message": FOLLOWUP, "conversationId": started})
    assert follow.status_code == 202
    events = read_stream(server.url + f"conversations/{started}/stream")[2]
    assert events[-1].event == "done"


def test_lone_surrogate_in_the_query_is_refused_or_replaced(server: ChatServer) -> None:
    response = httpx.get(server.url + "chat/stream?message=hi%20%ED%A0%80", timeout=30)
    # aiohttp decodes invalid UTF-8 in a URL to U+FFFD, so no surrogate gets through.
    assert response.status_code == 200
    assert list(iter_events(iter_lines([response.text])))[-1].event == "error"  # unrecorded


def normal_turn_events(server: ChatServer) -> int:
    conversation_id = json_post(server.url + "chat", {"message": CHAT}).json()["conversationId"]
    return len(read_stream(server.url + f"conversations/{conversation_id}/stream")[2]) - 1


def test_a_failure_at_any_step_of_a_turn_ends_it_failed(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = normal_turn_events(server)  # state events of a turn: user, created, chunks...
    assert steps >= 4
    real_state_event = _conversations._state_event
    for failing_step in range(steps):
        encoding = UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
        for failure in (encoding if failing_step % 2 else RuntimeError("boom"),):
            calls = {"n": 0}

            def flaky(
                *args: object,
                _fail: int = failing_step,
                _exc: Exception = failure,
                _calls: dict[str, int] = calls,
            ) -> bytes:
                _calls["n"] += 1
                if _calls["n"] == _fail + 1:
                    raise _exc
                return real_state_event(*args)

            monkeypatch.setattr(_conversations, "_state_event", flaky)
            before = server.stats
            snapshot = (before.started, before.completed, before.failed, before.cancelled)
            response = json_post(server.url + "chat", {"message": CHAT})
            conversation_id = response.json()["conversationId"]
            events = read_stream(server.url + f"conversations/{conversation_id}/stream")[2]
            monkeypatch.setattr(_conversations, "_state_event", real_state_event)
            assert events[-1].event in ("error", "done"), (failing_step, events)
            state = httpx.get(server.url + f"conversations/{conversation_id}", timeout=30).json()
            statuses = [m["status"] for m in state["messages"]]
            assert set(statuses) <= {"completed", "failed"}, (failing_step, statuses)
            assert wait_until(lambda: server.stats.active == 0)
            assert server.stats.started == snapshot[0] + 1
            # The conversation is not poisoned: the next turn is accepted and ends.
            again = json_post(
                server.url + "chat", {"message": "Anything", "conversationId": conversation_id}
            )
            assert again.status_code == 202, (failing_step, again.text)
            tail = read_stream(server.url + f"conversations/{conversation_id}/stream")[2]
            assert tail[-1].event in ("error", "done")
            assert server.stats.active == 0


# -- keys never relayed --------------------------------------------------------------------


def test_scrub_removes_keys() -> None:
    key = fake_google_key("SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q")
    assert scrub(f"bad key {key}.") == f"bad key {REDACTED}."
    assert scrub("https://x.example/v1/models?key=abc123&alt=sse") == (
        f"https://x.example/v1/models?key={REDACTED}&alt=sse"
    )
    assert scrub("secret s3cr3t-value here", ["s3cr3t-value"]) == f"secret {REDACTED} here"
    assert scrub("encoded s3cr3t%2Fvalue", ["s3cr3t/value"]) == f"encoded {REDACTED}"
    assert scrub("nothing to hide", ["abc"]) == "nothing to hide"  # short secrets ignored


@pytest.fixture()
def echoing_upstream() -> Iterator[str]:
    """A fake model API on 127.0.0.1 that echoes the request's key in its errors."""

    async def echo(request: web.Request) -> web.Response:
        key = request.headers.get("x-goog-api-key", "")
        message = f"API key {key} is not valid (also {fake_google_key('Sy' + 'Z' * 33)})."
        return web.json_response(
            {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}},
            status=400,
        )

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", echo)
        return app

    server = BackgroundServer(make_app, name="echoing upstream", access_log=None).start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def test_a_key_echoing_upstream_never_leaks_the_key(
    echoing_upstream: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = fake_google_key("SyB-the-users-real-key-")
    client = genai.Client(api_key=key, http_options={"base_url": echoing_upstream})
    caplog.set_level(logging.DEBUG)
    with ChatServer(client) as srv:
        _, raw, events = read_stream(srv.url + "chat/stream", message="hello")
        assert events[-1].event == "error"
        assert "400 INVALID_ARGUMENT" in events[-1].data and REDACTED in events[-1].data
        conversation_id = json_post(srv.url + "chat", {"message": "hello"}).json()["conversationId"]
        _, conversation_raw, _ = read_stream(srv.url + f"conversations/{conversation_id}/stream")
        state = httpx.get(srv.url + f"conversations/{conversation_id}", timeout=30).text
    saved = Conversation.model_validate_json(state).save(tmp_path, "echo")
    for text in (raw, conversation_raw, state, saved.read_text(), caplog.text):
        assert key not in text
        assert "AIzaSyZZZZ" not in text


# -- timeouts and keep-alive comments ------------------------------------------------------


def test_silent_and_slow_clients_are_timed_out(emulator: Emulator) -> None:
    client = genai.Client(api_key="test", http_options=emulator.http_options())
    with ChatServer(client, header_timeout=0.5, body_timeout=0.5) as srv:
        silent = socket.create_connection(("127.0.0.1", srv.port))
        trickling = socket.create_connection(("127.0.0.1", srv.port))
        trickling.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends its head
        slow_body = socket.create_connection(("127.0.0.1", srv.port))
        slow_body.sendall(
            f"POST /chat HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            '{"message": '.encode()
        )
        with silent, trickling, slow_body:
            assert closed_within(silent, 10) == b""
            assert closed_within(trickling, 10) == b""
            answer = closed_within(slow_body, 10)
        assert answer is not None and answer.startswith(b"HTTP/1.1 408")
        assert b'"error": "body_timeout"' in answer
        # The server still serves everyone else.
        assert httpx.get(srv.url, timeout=30).status_code == 200


def test_idle_streams_get_keepalive_comments(slow_emulator: Emulator) -> None:
    client = genai.Client(api_key="test", http_options=slow_emulator.http_options())
    with ChatServer(client, keepalive_interval=0.2) as srv:
        with httpx.stream(
            "GET",
            srv.url + "chat/stream",
            params={"message": SLOW},
            timeout=httpx.Timeout(30, read=3),
        ) as response:
            lines = iter_lines(response.iter_text())
            seen = []
            for line in lines:  # a comment every 0.2 s, long before a 3 s read timeout
                seen.append(line)
                if line.startswith(":"):
                    break
    assert seen[0] == "data: " + cassette_chunks("web_sse_slow")[0]
    assert seen[-1].startswith(":")  # an SSE comment (aiohttp-sse's ": ping")


# -- shutdown ------------------------------------------------------------------------------


def test_stop_ends_every_open_stream_with_a_stopping_event(slow_emulator: Emulator) -> None:
    client = genai.Client(api_key="test", http_options=slow_emulator.http_options())
    srv = ChatServer(client).start()
    idle = upstream_connections(slow_emulator)
    results: dict[int, list] = {}
    ready = threading.Barrier(6)

    def follow(index: int) -> None:
        with httpx.stream("GET", srv.url + "chat/stream", params={"message": SLOW}) as r:
            events = iter_events(iter_lines(r.iter_text()))
            got = [next(events)]
            ready.wait(10)
            got.extend(events)
        results[index] = got

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    ready.wait(10)
    # A conversation subscriber too.
    conversation_id = json_post(srv.url + "chat", {"message": SLOW}).json()["conversationId"]
    with httpx.stream("GET", srv.url + f"conversations/{conversation_id}/stream") as r:
        lines = iter_lines(r.iter_text())
        assert next(e for e in iter_events(lines) if e.event == "streaming")
        assert srv.stats.active == 6
        stats = srv.stats
        began = time.monotonic()
        srv.stop()
        took = time.monotonic() - began
        rest = list(iter_events(lines))
    for t in threads:
        t.join(10)
    assert took < 5  # generous; it takes a few milliseconds
    assert rest[-1].event == "error" and rest[-1].data == STOPPING_MESSAGE
    assert len(results) == 5
    for events in results.values():
        assert events[0].data == cassette_chunks("web_sse_slow")[0]
        assert events[-1].event == "error" and events[-1].data == STOPPING_MESSAGE
    assert stats.cancelled == 6 and stats.active == 0
    assert wait_until(lambda: not (upstream_connections(slow_emulator) - idle), timeout=5)


def test_emulator_stops_at_once_with_an_abandoned_stream() -> None:
    emu = Emulator(pacing="realtime").start()
    client = genai.Client(api_key="test", http_options=emu.http_options())
    stream = client.models.generate_content_stream(model="gemini-3.8-flash", contents=SLOW)
    next(iter(stream))  # the emulator now waits a minute before the next chunk
    server = emu._server
    assert server is not None
    began = time.monotonic()
    emu.stop()
    assert not server.thread.is_alive()
    assert time.monotonic() - began < 5  # generous; it was 10 s before
    client.close()


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name
)
def test_a_signal_stops_quickstart_serve_with_a_final_event(tmp_path: Path, sig: int) -> None:
    process, lines = start_serve(tmp_path, pacing="realtime")
    try:
        url = lines[2].split(" is at ")[1].split(" ")[0]
        with httpx.stream("GET", url + "chat/stream", params={"message": SLOW}) as r:
            events = iter_events(iter_lines(r.iter_text()))
            assert next(events).event == "message"
            process.send_signal(sig)
            rest = list(events)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
    assert rest == [rest[-1]] and rest[-1].event == "error"
    assert rest[-1].data == STOPPING_MESSAGE
    assert process.returncode == 0


# -- load ----------------------------------------------------------------------------------


def test_500_concurrent_streams_complete_and_descriptors_return(emulator: Emulator) -> None:
    """Bounded load: 500 simultaneous /chat/stream clients on loopback, offline."""
    process = psutil.Process()
    baseline = process.num_fds()
    expected = "".join(cassette_chunks("web_sse_chat"))
    client = genai.Client(api_key="test", http_options=emulator.http_options())
    srv = ChatServer(client).start()

    async def one(session: aiohttp.ClientSession) -> tuple[str, str]:
        async with session.get(srv.url + "chat/stream", params={"message": CHAT}) as response:
            raw = (await response.read()).decode()
        events = list(iter_events(iter_lines([raw])))
        return "".join(e.data for e in events[:-1]), events[-1].event

    async def burst() -> list[tuple[str, str]]:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            return await asyncio.gather(*(one(session) for _ in range(500)))

    try:
        results = asyncio.run(burst())
        stats = srv.stats
        assert (stats.started, stats.completed, stats.failed) == (500, 500, 0)
    finally:
        srv.stop()
    client.close()
    assert results == [(expected, "done")] * 500
    assert wait_until(lambda: process.num_fds() <= baseline + 2, timeout=20), (
        process.num_fds(),
        baseline,
    )

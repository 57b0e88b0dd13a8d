"""Integration tests of the web chat: a real aiohttp server on 127.0.0.1, the real SDK,
and the emulator replaying the cassettes under assets/cassettes/web/."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from google import genai

from quickstart_helpers.emulator import Emulator
from quickstart_helpers.web import (
    SAMPLE_QUESTION,
    STOPPING_MESSAGE,
    UNRECORDED_MESSAGE,
    ChatServer,
)

from ._serve import start_serve
from ._sse import DONE, ServerSentEvent, iter_events, iter_lines
from ._store import STORE

#: The model the web cassettes were recorded with (the server asks it, not the default).
WEB_MODEL = next(c.model for c in STORE.cassettes if c.name == "web_sse_chat")


def cassette_prompt(name: str) -> str:
    """Return the last user text of a cassette's request."""
    (cassette,) = [c for c in STORE.cassettes if c.name == name]
    return cassette.request["contents"][-1]["parts"][0]["text"]


def cassette_chunks(name: str) -> list[str]:
    """Return the text of each chunk of a cassette, as recorded (line ends untouched)."""
    (cassette,) = [c for c in STORE.cassettes if c.name == name]
    return [
        "".join(p.get("text", "") for p in c.response["candidates"][0]["content"]["parts"])
        for c in cassette.chunks
        if c.response is not None
    ]


CHAT = cassette_prompt("web_sse_chat")
FOLLOWUP = cassette_prompt("web_sse_followup")
FRAMING = cassette_prompt("web_sse_framing")
BROKEN = cassette_prompt("web_sse_broken")
SLOW = cassette_prompt("web_sse_slow")


def sse_lf(text: str) -> str:
    """The text as SSE delivers it: CRLF and CR read as LF (written out for the test)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(pacing="fast").start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def server(emulator: Emulator) -> Iterator[ChatServer]:
    client = genai.Client(api_key="test", http_options=emulator.http_options())
    with ChatServer(client, model=WEB_MODEL) as srv:
        yield srv


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[Emulator]:
    """An emulator with realtime pacing: web_sse_slow waits a minute for its 2nd chunk.

    Each test's server closes its connections to it, which the tests check.
    """
    emu = Emulator(pacing="realtime").start()
    yield emu
    emu.stop()


@pytest.fixture()
def slow_server(slow_emulator: Emulator) -> Iterator[ChatServer]:
    client = genai.Client(api_key="test", http_options=slow_emulator.http_options())
    with ChatServer(client, model=WEB_MODEL) as srv:
        yield srv


def read_stream(url: str, **params: str) -> tuple[httpx.Response, str, list[ServerSentEvent]]:
    """GET an SSE URL; return the response, the raw body and the parsed events."""
    with httpx.stream("GET", url, params=params, timeout=30) as response:
        raw = response.read().decode("utf-8")
    return response, raw, list(iter_events(iter_lines([raw])))


def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def running_tasks(server: ChatServer) -> int:
    """How many asyncio tasks run on the server's loop now (besides the one counting)."""

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1

    return server.call(count())


def upstream_connections(emulator: Emulator) -> set[tuple]:
    """Return the open TCP connections from this process to the emulator (client ends).

    Other tests' servers may leave idle keep-alive connections in their SDK clients'
    pools, so tests compare sets taken before and after rather than counting.
    """
    return {
        (c.laddr, c.raddr)
        for c in psutil.Process().net_connections(kind="tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port == emulator.port
    }


# -- GET /chat/stream ---------------------------------------------------------------------


def test_each_chunk_is_one_event_then_done(server: ChatServer) -> None:
    response, raw, events = read_stream(server.url + "chat/stream", message=CHAT)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    chunks = cassette_chunks("web_sse_chat")
    assert [e.data for e in events[:-1]] == chunks
    assert all(e.event == "message" for e in events[:-1])
    assert events[-1] == ServerSentEvent(data=DONE, event="done")
    # A chunk holding "\n\n" is one event of three data lines, not a broken event.
    paragraph = next(c for c in chunks if "\n\n" in c)
    assert "".join(f"data: {line}\n" for line in paragraph.split("\n")) + "\n" in raw
    assert raw.endswith("event: done\ndata: [DONE]\n\n")


def test_tricky_chunks_arrive_intact(server: ChatServer) -> None:
    _, raw, events = read_stream(server.url + "chat/stream", message=FRAMING)
    chunks = cassette_chunks("web_sse_framing")
    assert "" in chunks and "[DONE]" in chunks and any("\r" in c for c in chunks)
    assert [e.data for e in events[:-1]] == [sse_lf(c) for c in chunks]
    assert events[-1].event == "done"
    assert "\r" not in raw
    assert "data: \n\n" in raw  # the empty chunk is still an event


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "missing_message"),
        ({"message": ""}, 400, "empty_message"),
        ({"message": "  \n\t "}, 400, "empty_message"),
        ({"message": "x" * 4001}, 413, "message_too_long"),
        ({"message": "🚀" * 4001}, 413, "message_too_long"),  # 48 KB once percent-encoded
    ],
)
def test_bad_message_gets_4xx_json_reason(
    server: ChatServer, params: dict, status: int, code: str
) -> None:
    before = server.stats.started
    response = httpx.get(server.url + "chat/stream", params=params, timeout=30)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    assert len(body["reason"]) > 20
    if code == "message_too_long":
        assert "4001 characters; the limit is 4000" in body["reason"]
        assert body["limit"] == 4000
    assert server.stats.started == before  # the model was not called


def test_message_at_the_limit_is_accepted(server: ChatServer) -> None:
    response, _, events = read_stream(server.url + "chat/stream", message="y" * 4000)
    assert response.status_code == 200
    assert events[-1].event == "error"  # no cassette for it, but it reached the model


def test_unrecorded_question_gets_one_short_error_event(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Offline, a question no cassette answers: one short paragraph saying what to do."""
    with caplog.at_level("INFO", logger="quickstart_helpers.web"):
        _, raw, events = read_stream(server.url + "chat/stream", message="Why is the sea salty?")
    assert [e.event for e in events] == ["error"]
    assert events[0].data == UNRECORDED_MESSAGE
    assert raw == f"event: error\ndata: {UNRECORDED_MESSAGE}\n\n"  # one data line
    assert len(UNRECORDED_MESSAGE) < 300 and "404" not in UNRECORDED_MESSAGE
    assert f'Ask "{SAMPLE_QUESTION}"' in UNRECORDED_MESSAGE
    assert "GEMINI_API_KEY" in UNRECORDED_MESSAGE and "quickstart record" in UNRECORDED_MESSAGE
    # The emulator's full explanation (the closest recorded prompt) goes to the log.
    logged = [r.getMessage() for r in caplog.records if "No recording answers" in r.message]
    assert len(logged) == 1 and "Why is the sea salty?" in logged[0]


def test_unrecorded_question_in_a_conversation_ends_with_the_short_message(
    server: ChatServer,
) -> None:
    conversation_id = post_chat(server, {"message": "Why is the sea salty?"}).json()[
        "conversationId"
    ]
    events = conversation_events(server, conversation_id)
    assert [e.event for e in events[-2:]] == ["failed", "error"]
    assert events[-1].data == UNRECORDED_MESSAGE


def test_invalid_key_gets_a_readable_error_event(emulator: Emulator) -> None:
    client = genai.Client(api_key="invalid", http_options=emulator.http_options())
    with ChatServer(client, model=WEB_MODEL) as srv:
        _, _, events = read_stream(srv.url + "chat/stream", message=CHAT)
        assert srv.stats.failed == 1
    assert [e.event for e in events] == ["error"]
    assert "rejected the API key" in events[0].data
    assert "GEMINI_API_KEY" in events[0].data


def test_broken_stream_keeps_chunks_and_ends_with_error(server: ChatServer) -> None:
    _, _, events = read_stream(server.url + "chat/stream", message=BROKEN)
    assert [e.data for e in events[:-1]] == cassette_chunks("web_sse_broken")
    assert events[-1].event == "error"
    assert events[-1].data.startswith("The answer stopped after 2 chunks; the text so far is kept.")
    assert "done" not in [e.event for e in events]


# -- disconnects and concurrency --------------------------------------------------------


def test_client_disconnect_cancels_the_model_stream(
    slow_server: ChatServer, slow_emulator: Emulator
) -> None:
    idle_tasks = running_tasks(slow_server)
    idle_connections = upstream_connections(slow_emulator)
    with httpx.stream(
        "GET", slow_server.url + "chat/stream", params={"message": SLOW}, timeout=30
    ) as response:
        events = iter_events(iter_lines(response.iter_text()))  # keep it: closing it hangs up
        first = next(events)
        assert first.data == cassette_chunks("web_sse_slow")[0]
        # The model stream is open: a handler task and a connection to the emulator.
        assert slow_server.stats.active == 1
        assert running_tasks(slow_server) > idle_tasks
        streaming = upstream_connections(slow_emulator) - idle_connections
        assert streaming
    # The client left 60 s before the second chunk: everything stops now.
    assert wait_until(lambda: slow_server.stats.cancelled == 1, timeout=5)
    assert slow_server.stats.active == 0
    assert wait_until(lambda: not streaming & upstream_connections(slow_emulator), timeout=5)
    assert wait_until(lambda: running_tasks(slow_server) == idle_tasks, timeout=5)


def test_concurrent_clients_are_independent(slow_server: ChatServer) -> None:
    results: dict[str, list[ServerSentEvent]] = {}

    def fetch(prompt: str) -> None:
        results[prompt] = read_stream(slow_server.url + "chat/stream", message=prompt)[2]

    # One client sits on a stream that waits a minute ...
    with httpx.stream(
        "GET", slow_server.url + "chat/stream", params={"message": SLOW}, timeout=30
    ) as waiting:
        waiting_events = iter_events(iter_lines(waiting.iter_text()))
        next(waiting_events)
        # ... while three others stream their answers (realtime pacing) side by side.
        threads = [threading.Thread(target=fetch, args=(p,)) for p in (CHAT, FRAMING, CHAT)]
        for t in threads:
            t.start()
        assert wait_until(lambda: slow_server.stats.active == 4, timeout=5)
        for t in threads:
            t.join(30)
        # The waiting client leaves; the others were not held up or cut short.
    assert [e.data for e in results[CHAT][:-1]] == cassette_chunks("web_sse_chat")
    assert [e.data for e in results[FRAMING][:-1]] == [
        sse_lf(c) for c in cassette_chunks("web_sse_framing")
    ]
    assert results[CHAT][-1].event == results[FRAMING][-1].event == "done"
    assert wait_until(lambda: slow_server.stats.cancelled == 1, timeout=5)
    assert slow_server.stats.completed == 3
    assert slow_server.stats.active == 0


# -- POST /chat and GET /conversations/{id}/stream ---------------------------------------


def post_chat(server: ChatServer, body: object) -> httpx.Response:
    return httpx.post(server.url + "chat", json=body, timeout=30)


def conversation_events(server: ChatServer, conversation_id: str) -> list[ServerSentEvent]:
    return read_stream(server.url + f"conversations/{conversation_id}/stream")[2]


def test_conversation_streams_its_state_updates(server: ChatServer) -> None:
    response = post_chat(server, {"message": CHAT})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "streaming"
    conversation_id = body["conversationId"]

    events = conversation_events(server, conversation_id)
    names = [e.event for e in events]
    # The stream's last chunk, an empty text part with the thought signature, adds no text.
    chunks = [text for text in cassette_chunks("web_sse_chat") if text]
    assert names == ["completed", "created"] + ["streaming"] * len(chunks) + ["completed", "done"]
    updates = [json.loads(e.data) for e in events[:-1]]
    assert updates[0]["role"] == "user" and updates[0]["text"] == CHAT
    model_updates = updates[1:]
    assert {u["role"] for u in model_updates} == {"model"}
    assert {u["conversationId"] for u in updates} == {conversation_id}
    assert [u["delta"] for u in model_updates[1:-1]] == chunks
    assert [u["chunkCount"] for u in model_updates[1:-1]] == list(range(1, len(chunks) + 1))
    assert model_updates[-1]["text"] == "".join(chunks)
    assert model_updates[-1]["finishReason"] == "STOP"

    # A subscriber that comes late gets the whole turn again.
    assert conversation_events(server, conversation_id) == events

    state = httpx.get(server.url + f"conversations/{conversation_id}").json()
    assert [(m["role"], m["status"]) for m in state["messages"]] == [
        ("user", "completed"),
        ("model", "completed"),
    ]


def test_second_turn_sends_the_history(server: ChatServer) -> None:
    conversation_id = post_chat(server, {"message": CHAT}).json()["conversationId"]
    assert conversation_events(server, conversation_id)[-1].event == "done"
    again = post_chat(server, {"message": FOLLOWUP, "conversationId": conversation_id})
    assert again.status_code == 202
    assert again.json()["conversationId"] == conversation_id
    events = conversation_events(server, conversation_id)
    # The follow-up cassette matches only a request carrying the first turn as history.
    assert events[-1].event == "done"
    final = json.loads(events[-2].data)
    assert final["messageId"] == "msg-4"
    assert final["text"] == "".join(cassette_chunks("web_sse_followup"))


def test_failed_answer_gives_failed_state_then_error(server: ChatServer) -> None:
    conversation_id = post_chat(server, {"message": BROKEN}).json()["conversationId"]
    events = conversation_events(server, conversation_id)
    assert [e.event for e in events[-2:]] == ["failed", "error"]
    failed = json.loads(events[-2].data)
    assert failed["text"] == "".join(cassette_chunks("web_sse_broken"))  # partial text kept
    assert failed["error"]
    assert events[-1].data.startswith("The answer stopped after 2 chunks")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("not json", 400, "invalid_json"),
        (["a list"], 400, "invalid_json"),
        ({}, 400, "missing_message"),
        ({"message": 42}, 400, "invalid_message"),
        ({"message": " "}, 400, "empty_message"),
        ({"message": "z" * 4001}, 413, "message_too_long"),
        ({"message": "Hi", "conversationId": "no-such-id"}, 404, "unknown_conversation"),
    ],
)
def test_bad_post_gets_4xx_json_reason(
    server: ChatServer, body: object, status: int, code: str
) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(
        server.url + "chat",
        content=content,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["reason"]


def test_unknown_conversation_stream_is_404(server: ChatServer) -> None:
    response = httpx.get(server.url + "conversations/nope/stream", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_conversation"


def test_busy_conversation_refuses_a_second_message(slow_server: ChatServer) -> None:
    conversation_id = post_chat(slow_server, {"message": SLOW}).json()["conversationId"]
    busy = post_chat(slow_server, {"message": CHAT, "conversationId": conversation_id})
    assert busy.status_code == 409
    assert busy.json()["error"] == "conversation_busy"


def test_stopping_the_server_cancels_running_answers(slow_emulator: Emulator) -> None:
    client = genai.Client(api_key="test", http_options=slow_emulator.http_options())
    srv = ChatServer(client, model=WEB_MODEL).start()
    idle_connections = upstream_connections(slow_emulator)
    conversation_id = post_chat(srv, {"message": SLOW}).json()["conversationId"]
    with httpx.stream("GET", srv.url + f"conversations/{conversation_id}/stream") as r:
        lines = iter_lines(r.iter_text())
        assert next(e for e in iter_events(lines) if e.event == "streaming")
        streaming = upstream_connections(slow_emulator) - idle_connections
        assert streaming
        stats = srv.stats
        srv.stop()
        rest = list(iter_events(lines))
    assert stats.cancelled == 1 and stats.active == 0
    assert rest[-1] == ServerSentEvent(data=STOPPING_MESSAGE, event="error")
    assert wait_until(lambda: not streaming & upstream_connections(slow_emulator), timeout=5)


# -- the page ------------------------------------------------------------------------------


def test_page_and_its_script_are_served(server: ChatServer) -> None:
    page = httpx.get(server.url, timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/chat.js">' in page.text
    script = httpx.get(server.url + "static/chat.js", timeout=30)
    assert script.status_code == 200
    assert "new EventSource" in script.text


# -- quickstart serve ----------------------------------------------------------------------


def test_quickstart_serve_works_offline(tmp_path: Path) -> None:
    process, lines = start_serve(tmp_path, "--model", WEB_MODEL)  # no .env in tmp_path
    try:
        assert lines[0].startswith("Mode: offline.")
        assert SAMPLE_QUESTION in lines[1]
        match = re.fullmatch(
            r"The chat page is at (http://127\.0\.0\.1:\d+/) \(Ctrl-C stops the server\)\.\n",
            lines[2],
        )
        assert match, lines
        url = match.group(1)
        assert "new EventSource" in httpx.get(url + "static/chat.js", timeout=30).text
        _, _, events = read_stream(url + "chat/stream", message=SAMPLE_QUESTION)
        assert "".join(e.data for e in events[:-1]) == "".join(cassette_chunks("web_sse_chat"))
        assert events[-1].event == "done"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


def test_quickstart_serve_reports_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "QUICKSTART_MODE": "offline"}
        result = subprocess.run(
            [sys.executable, "-m", "quickstart_cli", "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert "The chat server could not start" in result.stderr
    assert "--port 0" in result.stderr


@pytest.mark.parametrize("uvloop", ["installed", "missing"])
def test_the_server_runs_on_uvloop_where_it_installs(
    emulator: Emulator, uvloop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvloop's loop (its TLS read buffers cost memory only as data comes: docs/performance.md)
    where it imports; asyncio's where it does not (Windows). An answer streams either way."""
    if uvloop == "missing":
        monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop fails
    client = genai.Client(api_key="offline", http_options=emulator.http_options())
    with ChatServer(client, model=WEB_MODEL) as srv:
        _, body, _ = read_stream(srv.url + "chat/stream", message=SAMPLE_QUESTION)
        loop_module = type(srv.loop).__module__.split(".")[0]
    expected = "uvloop" if uvloop == "installed" and sys.platform != "win32" else "asyncio"
    assert loop_module == expected and body.endswith("data: [DONE]\n\n")

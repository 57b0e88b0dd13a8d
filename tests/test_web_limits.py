"""The web relay's findings of issue 23: a conversation's turn limit, requests without a
``Host``, an ``Origin`` with userinfo, and no private key left on disk after SIGKILL.

Real servers on 127.0.0.1, the real SDK, the emulator replaying assets/cassettes/web/;
``quickstart serve`` as a real process. SIGTERM and SIGHUP: test_web_hardening.py.
"""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from google import genai

from quickstart_helpers.emulator import Emulator
from quickstart_helpers.web import DEFAULT_MAX_TURNS, ChatServer, create_app
from tests import test_web
from tests._sockets import closed_within
from tests.test_web import CHAT, WEB_MODEL, conversation_events, post_chat

from ._serve import start_serve

emulator = test_web.emulator
server = test_web.server


@pytest.fixture()
def small_server(emulator: Emulator) -> Iterator[ChatServer]:
    client = genai.Client(api_key="test", http_options=emulator.http_options())
    with ChatServer(client, model=WEB_MODEL, max_turns=3) as srv:
        yield srv


# -- a conversation holds at most max_turns questions --------------------------------------


def test_a_conversation_at_its_turn_limit_refuses_the_next_question(
    small_server: ChatServer,
) -> None:
    conversation_id = None
    for _ in range(3):  # the first is answered; the others fail (no recording has them)
        sent = post_chat(small_server, {"message": CHAT, "conversationId": conversation_id})
        assert sent.status_code == 202, sent.text
        conversation_id = sent.json()["conversationId"]
        assert conversation_events(small_server, conversation_id)[-1].event in ("done", "error")
    started = small_server.stats.started

    refused = post_chat(small_server, {"message": CHAT, "conversationId": conversation_id})
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "conversation_full" and body["limit"] == 3
    assert "limit of 3 questions" in body["reason"]
    assert "leave conversationId out" in body["reason"]
    assert small_server.stats.started == started  # the model was not asked
    kept = httpx.get(small_server.url + f"conversations/{conversation_id}", timeout=30).json()
    assert [m["role"] for m in kept["messages"]] == ["user", "model"] * 3

    fresh = post_chat(small_server, {"message": CHAT})  # a new conversation is accepted
    assert fresh.status_code == 202
    assert conversation_events(small_server, fresh.json()["conversationId"])[-1].event == "done"


def test_below_the_limit_a_conversation_goes_on(server: ChatServer) -> None:
    assert DEFAULT_MAX_TURNS == 100
    conversation_id = None
    for _ in range(4):
        sent = post_chat(server, {"message": CHAT, "conversationId": conversation_id})
        assert sent.status_code == 202, sent.text
        conversation_id = sent.json()["conversationId"]
        conversation_events(server, conversation_id)


@pytest.mark.parametrize("max_turns", [0, -1])
def test_a_turn_limit_below_one_is_refused(max_turns: int) -> None:
    with pytest.raises(ValueError, match="max_turns must be >= 1"):
        create_app(object(), max_turns=max_turns)


# -- the front door: no Host, an Origin or Host with userinfo ------------------------------


def raw_exchange(server: ChatServer, request: bytes) -> tuple[int, dict, bytes]:
    """Send a raw request; return the status, the JSON body and the head."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        raw = closed_within(sock, 10)
    assert raw is not None
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"application/json" in head
    return int(head.split(b" ")[1]), json.loads(body), head


@pytest.mark.parametrize("path", ["/", "/static/chat.js", f"/chat/stream?message={quote(CHAT)}"])
def test_an_http_1_0_request_without_host_is_refused(server: ChatServer, path: str) -> None:
    started = server.stats.started
    status, body, _ = raw_exchange(server, f"GET {path} HTTP/1.0\r\n\r\n".encode())
    assert status == 403 and body["error"] == "forbidden_host"
    assert "without a Host header" in body["reason"]
    assert server.stats.started == started


def test_an_http_1_1_request_without_host_is_refused(server: ChatServer) -> None:
    status, body, _ = raw_exchange(server, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status == 400 and body["error"] == "bad_request"
    assert "Host" in body["reason"]


def test_the_same_request_with_its_host_is_served(server: ChatServer) -> None:
    request = f"GET / HTTP/1.0\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        raw = closed_within(sock, 10)
    assert raw is not None and raw.startswith(b"HTTP/1.0 200") and b"EventSource" in raw


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.com@127.0.0.1:{port}",
        "http://evil.com:pw@localhost:{port}",
        "http://127.0.0.1:{port}@evil.com",
        "http://@127.0.0.1:{port}",
    ],
)
def test_an_origin_with_userinfo_is_refused_and_not_echoed(server: ChatServer, origin: str) -> None:
    origin = origin.format(port=server.port)
    started = server.stats.started
    for response in (
        httpx.get(server.url, headers={"Origin": origin}, timeout=30),
        httpx.get(server.url + "chat/stream", params={"message": CHAT}, headers={"Origin": origin}),
        httpx.post(server.url + "chat", json={"message": CHAT}, headers={"Origin": origin}),
    ):
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden_origin"
        assert "access-control-allow-origin" not in response.headers
    assert server.stats.started == started
    own = f"http://127.0.0.1:{server.port}"
    assert httpx.get(server.url, headers={"Origin": own}, timeout=30).status_code == 200


def test_a_host_with_userinfo_is_refused(server: ChatServer) -> None:
    host = f"evil.com@127.0.0.1:{server.port}"
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    status, body, _ = raw_exchange(server, request.encode())
    assert status == 403 and body["error"] == "forbidden_host"


# -- no private key outlives `quickstart serve` -----------------------------------------------


def private_keys(folder: Path) -> list[Path]:
    """Every file under ``folder`` that holds a PEM private key."""
    return [p for p in folder.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]


def test_sigkill_leaves_no_private_key_in_the_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Offline, the relay's process runs the emulator (TLS) and its client: both keys and
    # certificates are made there, with TMPDIR as the temporary folder.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    process, lines = start_serve(tmp_path)
    try:
        url = lines[2].split(" is at ")[1].split(" ")[0]
        response = httpx.get(url + "chat/stream", params={"message": CHAT}, timeout=30)
        assert response.text.endswith("event: done\ndata: [DONE]\n\n")  # TLS was used
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert private_keys(tmp) == []
    assert private_keys(tmp_path) == []

"""The web relay over the Interactions API: SSE ids and resuming with Last-Event-ID, over a
real server, the real SDK and the emulator (fast pacing)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google import genai

from quickstart_helpers.emulator import Emulator, InteractionsCassette
from quickstart_helpers.web import (
    RECONNECT_MS,
    SAMPLE_QUESTION,
    UNRECORDED_MESSAGE,
    ChatServer,
    create_app,
)

from ._serve import start_serve
from ._sse import ServerSentEvent, iter_events, iter_lines
from ._store import STORE

WEB = next(c for c in STORE.cassettes if c.name == "interactions_web_chat")
assert isinstance(WEB, InteractionsCassette)
ANSWER = WEB.interaction["steps"][-1]["content"][0]["text"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(store=STORE, pacing="fast") as emu:
        yield emu


@pytest.fixture(scope="module")
def server(emulator: Emulator) -> Iterator[ChatServer]:
    client = genai.Client(api_key="test", http_options=emulator.http_options())
    with ChatServer(client, model=WEB.model, api="interactions") as srv:
        yield srv


def read(server: ChatServer, **headers: str) -> tuple[httpx.Response, str, list[ServerSentEvent]]:
    url = server.url + "chat/stream"
    with httpx.stream(
        "GET", url, params={"message": SAMPLE_QUESTION}, headers=headers, timeout=30
    ) as response:
        raw = response.read().decode("utf-8")
    return response, raw, list(iter_events(iter_lines([raw])))


def test_every_event_has_an_id_and_the_answer_is_whole(server: ChatServer) -> None:
    _, raw, events = read(server)
    started, *texts, done = events
    assert started.event == "started" and started.data == WEB.interaction_id
    assert f"retry: {RECONNECT_MS}\n" in raw
    assert done.event == "done"
    assert all(e.event == "message" for e in texts)
    ids = [e.id for e in [started, *texts]]
    assert len(set(ids)) == len(ids) and all(i.startswith(WEB.interaction_id + "/") for i in ids)
    assert "".join(e.data for e in texts) == ANSWER


@pytest.mark.parametrize("after", [0, 3, 10])
def test_last_event_id_continues_after_that_event(
    server: ChatServer, emulator: Emulator, after: int
) -> None:
    _, _, events = read(server)
    texts = [e for e in events if e.event == "message"]
    last = ([events[0]] + texts)[after]
    emulator.requests.clear()
    _, _, resumed = read(server, **{"Last-Event-ID": last.id})
    assert resumed[-1].event == "done"
    expected = "".join(e.data for e in texts[after:])
    assert "".join(e.data for e in resumed if e.event == "message") == expected
    # The question was not asked again: the relay resumed the stored interaction.
    assert [r.method for r in emulator.requests] == ["interactions.get"]
    assert emulator.requests[0].body["last_event_id"] == last.id.partition("/")[2]


def test_an_unrecorded_question_gets_the_short_message(server: ChatServer) -> None:
    """The Interactions API's 404 for an unrecorded input reads as the generate relay's."""
    url = server.url + "chat/stream"
    with httpx.stream("GET", url, params={"message": "Why is the sea salty?"}, timeout=30) as r:
        events = list(iter_events(iter_lines([r.read().decode("utf-8")])))
    assert [(e.event, e.data) for e in events] == [("error", UNRECORDED_MESSAGE)]


def test_an_unknown_last_event_id_is_refused(server: ChatServer) -> None:
    response, raw, _ = read(server, **{"Last-Event-ID": "v1_unknown/evt_1"})
    assert response.status_code == 400
    assert '"unknown_last_event_id"' in raw


def test_api_must_be_known() -> None:
    with pytest.raises(ValueError, match="api must be one of generate, interactions"):
        create_app(object(), api="nope")


def test_quickstart_serve_api_interactions_answers_the_sample_offline(tmp_path: Path) -> None:
    process, lines = start_serve(tmp_path, "--api", "interactions")
    try:
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", lines[2])
        assert match, lines
        with httpx.stream(
            "GET", match.group(1) + "chat/stream", params={"message": SAMPLE_QUESTION}, timeout=30
        ) as response:
            events = list(iter_events(iter_lines([response.read().decode("utf-8")])))
        assert "".join(e.data for e in events if e.event == "message") == ANSWER
        assert events[0].event == "started" and events[-1].event == "done"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


def test_resuming_passes_the_same_front_door(server: ChatServer, emulator: Emulator) -> None:
    """A resume request from another page, or for another host, is refused before any model
    call, like every request to the relay."""
    _, _, events = read(server)
    last = events[2].id
    emulator.requests.clear()
    foreign_page, raw_page, _ = read(
        server, **{"Last-Event-ID": last, "Origin": "https://evil.example"}
    )
    rebound, raw_host, _ = read(server, **{"Last-Event-ID": last, "Host": "evil.example"})
    assert foreign_page.status_code == 403 and '"forbidden_origin"' in raw_page
    assert rebound.status_code == 403 and '"forbidden_host"' in raw_host
    assert list(emulator.requests) == []

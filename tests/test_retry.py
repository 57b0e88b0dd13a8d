"""quickstart_helpers.retry: its own logic, and ResumableLiveSession against the emulator."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import httpx
import pytest
from google import genai
from google.genai import errors, types

from quickstart_helpers.emulator import CassetteStore, Emulator, shipped_cassette_dir
from quickstart_helpers.retry import (
    CONTINUE_PROMPT,
    ResumableLiveSession,
    is_resumable,
    resume_stream,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import author  # noqa: E402


def api_error(code: int) -> errors.APIError:
    return errors.APIError(code, {"error": {"code": code, "message": "m", "status": "S"}})


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (api_error(429), True),
        (api_error(503), True),
        (api_error(400), False),
        (api_error(403), False),
        (httpx.RemoteProtocolError("peer closed"), True),
        (aiohttp.ClientPayloadError("cut"), True),
        (ConnectionResetError(), True),
        (ValueError("bad"), False),
    ],
)
def test_is_resumable(exc: BaseException, expected: bool) -> None:
    assert is_resumable(exc) is expected


class FakeModels:
    """Streams that fail as scripted: each item is a list of texts, then an exception."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def generate_content_stream(self, *, model, contents, config):
        self.calls.append(contents)
        texts, error = self.script.pop(0)
        for text in texts:
            yield types.GenerateContentResponse(
                candidates=[
                    types.Candidate(
                        content=types.Content(role="model", parts=[types.Part(text=text)])
                    )
                ]
            )
        if error is not None:
            raise error


class FakeClient:
    def __init__(self, script):
        self.models = FakeModels(script)


def test_resume_stream_waits_with_backoff_and_stops_on_a_client_error() -> None:
    client = FakeClient([(["a", "b"], api_error(503)), (["c"], api_error(400))])
    waits: list[float] = []
    result = resume_stream(client, model="m", contents="q", backoff_s=0.5, sleep=waits.append)
    with pytest.raises(errors.APIError):
        list(result)
    assert result.text == "abc" and waits == [0.5] and len(result.errors) == 1
    # The continue request: the prompt, the partial answer as a model turn, CONTINUE_PROMPT.
    assert [(t.role, t.parts[0].text) for t in client.models.calls[1]] == [
        ("user", "q"),
        ("model", "ab"),
        ("user", CONTINUE_PROMPT),
    ]


def test_resume_stream_backoff_doubles() -> None:
    client = FakeClient([([], api_error(503)), ([], api_error(503)), (["ok"], None)])
    waits: list[float] = []
    chunks = list(resume_stream(client, model="m", contents="q", backoff_s=1, sleep=waits.append))
    assert [c.text for c in chunks] == ["ok"] and waits == [1, 2]
    # No text before the breaks: the original request is sent again, not a continuation.
    assert all(len(call) == 1 for call in client.models.calls)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_resumes"):
        list(resume_stream(FakeClient([]), model="m", contents="q", max_resumes=-1))
    with pytest.raises(ValueError, match="max_reconnects"):
        ResumableLiveSession(object(), model="m", max_reconnects=-1)
    with pytest.raises(ValueError, match="update_timeout_s"):
        ResumableLiveSession(object(), model="m", update_timeout_s=0)


def test_a_live_session_cannot_resume_without_a_handle() -> None:
    live = ResumableLiveSession(object(), model="m")
    live._session = object()
    live.go_away = "5s"

    async def run():
        async for _ in live.send_turn("hi"):
            pass

    with pytest.raises(RuntimeError, match="no resumption handle"):
        asyncio.run(run())


def test_send_turn_outside_async_with_says_so() -> None:
    async def run():
        async for _ in ResumableLiveSession(object(), model="m").send_turn("hi"):
            pass

    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(run())


# -- ResumableLiveSession against the emulator (Gemini 3.1 Flash Live's rules) -------------

FAULTS = shipped_cassette_dir() / "faults"
GO_AWAY = next(c for c in CassetteStore([FAULTS]).cassettes if c.name == "live_go_away")
NARRATOR = author.source("live")["narrator"]
PASSAGES = [t.input for t in GO_AWAY.turns]
HISTORY = [
    types.Content(role="user", parts=[types.Part(text="Please read the passages I send.")]),
    types.Content(role="model", parts=[types.Part(text="I will read each one aloud.")]),
]


def _live_run(history: list[types.Content] | None) -> tuple[ResumableLiveSession, list]:
    """Read the go-away cassette's passages through a ResumableLiveSession; return it and
    the client messages of each connection."""
    config = types.LiveConnectConfig(response_modalities=["AUDIO"], system_instruction=NARRATOR)
    with Emulator(store=CassetteStore([FAULTS]), pacing="fast") as emu:
        client = genai.Client(api_key="test-key", http_options=emu.http_options())

        async def run() -> ResumableLiveSession:
            async with ResumableLiveSession(
                client, model=GO_AWAY.model, config=config, history=history
            ) as live:
                for passage in PASSAGES:
                    async for message in live.send_turn(passage):
                        assert message.server_content or message.usage_metadata or message.go_away
            return live

        live = asyncio.run(run())
        sent = [r.body for r in emu.requests if r.method == "BidiGenerateContent"]
    return live, sent


def _kinds(messages: list[dict]) -> list[str]:
    return [next(iter(m)) for m in messages]


def test_live_turns_go_as_realtime_input_and_resume_after_go_away() -> None:
    live, sent = _live_run(history=None)
    assert live.reconnects == ["goAway (time left 10s)"]
    assert len(sent) == 2
    assert all(k in ("realtimeInput", "realtime_input") for s in sent for k in _kinds(s)[1:])
    assert sent[1][0]["setup"]["sessionResumption"]["handle"]


def test_live_history_is_seeded_once_as_client_content_with_history_config() -> None:
    live, sent = _live_run(history=HISTORY)
    assert live.reconnects == ["goAway (time left 10s)"]
    first, resumed = sent
    setup = first[0]["setup"]
    # google-genai 3.4 writes this inner key in snake case.
    assert list(setup["historyConfig"].values()) == [True]
    assert _kinds(first)[1] in ("clientContent", "client_content")
    content = first[1].get("clientContent") or first[1]["client_content"]
    assert [t["parts"][0]["text"] for t in content["turns"]] == [c.parts[0].text for c in HISTORY]
    # The resumed connection has the history already: no history config, no client content.
    assert "historyConfig" not in resumed[0]["setup"]
    assert all(k in ("realtimeInput", "realtime_input") for k in _kinds(resumed)[1:])

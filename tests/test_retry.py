"""Unit tests of quickstart_helpers.retry's own logic (the emulator tests are in test_faults)."""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import pytest
from google.genai import errors, types

from quickstart_helpers.retry import (
    CONTINUE_PROMPT,
    ResumableLiveSession,
    ResumedStream,
    continue_contents,
    is_resumable,
    resume_stream,
)


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


def test_continue_contents_appends_the_partial_answer_and_the_prompt() -> None:
    turns = continue_contents("Tell me", "Once upon")
    assert [(t.role, t.parts[0].text) for t in turns] == [
        ("user", "Tell me"),
        ("model", "Once upon"),
        ("user", CONTINUE_PROMPT),
    ]
    assert [t.role for t in continue_contents("Tell me", "")] == ["user"]


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
    result = ResumedStream()
    with pytest.raises(errors.APIError):
        list(
            resume_stream(
                client, model="m", contents="q", result=result, backoff_s=0.5, sleep=waits.append
            )
        )
    assert result.text == "abc" and waits == [0.5] and len(result.errors) == 1
    assert client.models.calls[1][-2].parts[0].text == "ab"


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

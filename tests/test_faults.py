"""Fault directives through the real SDK (sync, async, Live) against the emulator.

Each test checks what the client saw and what the emulator received. The cassettes
are the shipped ones of notebook 07 (``assets/cassettes/faults``), written by
``scripts/author.py`` from ``scripts/recordings/faults.toml`` and ``live.toml``.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from google import genai
from google.genai import errors, types

from quickstart_helpers import settings
from quickstart_helpers.emulator import (
    CassetteStore,
    Emulator,
    LiveCassette,
    parse_cassette,
    shipped_cassette_dir,
)
from quickstart_helpers.emulator._live_wire import load_audio, render_message
from quickstart_helpers.errors import CassetteError
from quickstart_helpers.retry import (
    CONTINUE_PROMPT,
    ResumableLiveSession,
    is_resumable,
    resume_stream,
)
from quickstart_helpers.wav import wave_file

from ._sse import iter_events, iter_lines, iter_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import author  # noqa: E402

#: The prompts of the fault cassettes, from their source (scripts/recordings/faults.toml).
_PROMPTS = {c["name"]: c["prompt"] for c in author.source("faults")["cassette"]}
made = SimpleNamespace(
    **{
        key: _PROMPTS[f"faults_{name}"]
        for key, name in [
            ("OVERLOADED", "overloaded"),
            ("RATE_LIMITED", "rate_limited"),
            ("ERROR_MIDSTREAM", "error_midstream"),
            ("DROPPED", "dropped_stream"),
            ("SAFETY", "finish_safety"),
            ("MAX_TOKENS", "finish_max_tokens"),
            ("RECITATION", "finish_recitation"),
            ("BLOCKED", "prompt_blocked"),
            ("SPLIT_UTF8", "split_utf8"),
            ("SEPARATORS", "line_separators"),
        ]
    }
)
_LIVE = author.source("live")
spoken = SimpleNamespace(
    NARRATOR=_LIVE["narrator"],
    GO_AWAY_PASSAGES=[
        t["input"] for c in _LIVE["cassette"] if c["name"] == "live_go_away" for t in c["turns"]
    ],
)

MODEL = settings.DEFAULT_TEXT_MODEL
FAULTS = shipped_cassette_dir() / "faults"
STORE = CassetteStore([FAULTS])
BY_NAME = {c.name: c for c in STORE.cassettes}


def synced(test):
    """Run an ``async def`` test with ``asyncio.run`` (no async plugin needed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


FAST_RETRY = types.HttpRetryOptions(attempts=4, initial_delay=0.01, max_delay=0.02, jitter=0)


@pytest.fixture(scope="module")
def running() -> Iterator[Emulator]:
    emu = Emulator(store=STORE, pacing="fast").start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(running: Emulator) -> Emulator:
    running.requests.clear()
    running.fault_attempts.clear()
    return running


@pytest.fixture
def client(emu: Emulator) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=emu.http_options())


def retrying(options: types.HttpRetryOptions = FAST_RETRY) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(http_options=types.HttpOptions(retry_options=options))


def fault_of(cassette_name: str, kind: str):
    """The cassette's fault directive of that kind (e.g. ``"drop"``)."""
    return next(f for f in BY_NAME[cassette_name].faults if f.fault == kind)


def delivered(cassette_name: str, kind: str) -> list[str]:
    """The chunk texts a broken stream delivers before its fault (of that kind) breaks it."""
    return texts(cassette_name)[: fault_of(cassette_name, kind).after]


def texts(cassette_name: str) -> list[str]:
    cassette = BY_NAME[cassette_name]
    return [
        p.get("text", "")
        for c in cassette.chunks
        if c.response
        for cand in c.response.get("candidates", [])
        for p in cand.get("content", {}).get("parts", [])
    ]


# -- schema ------------------------------------------------------------------------------


def _generate(**extra):
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}}]}
    return {
        "format": 1,
        "kind": "generate",
        "name": "x",
        "model": MODEL,
        "request": {"contents": "Hi"},
        "chunks": [{"response": chunk}, {"response": chunk}],
        **extra,
    }


ERROR = {"error": {"code": 503, "message": "Overloaded.", "status": "UNAVAILABLE"}}


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ([{"fault": "http_error", "status": 429, "error": ERROR}], "must equal status"),
        ([{"fault": "error_event", "after": 3, "error": ERROR}], "past the end"),
        ([{"fault": "drop", "after": 2, "at_byte": 5}], "past the end"),
        ([{"fault": "split", "chunk": 0, "at": [5, 5]}], "increasing order"),
        ([{"fault": "go_away", "after": 1}], "cannot hold a 'go_away' fault"),
        ([{"fault": "drop", "after": 1, "turn": 0}], "'turn' is for live cassettes"),
        (
            [
                {"fault": "drop", "after": 1},
                {"fault": "error_event", "after": 0, "error": ERROR},
            ],
            r"repeats faults\[0\]",
        ),
        ([{"fault": "explode", "after": 1}], "fault"),
        ([{"fault": "drop", "after": 1, "when": "now"}], "Extra inputs are not permitted"),
    ],
)
def test_bad_fault_directives_are_refused_with_their_place(faults, message) -> None:
    with pytest.raises(CassetteError, match=message):
        parse_cassette(_generate(faults=faults), "bad.json")


def test_live_faults_must_name_an_existing_turn_and_message() -> None:
    live = copy.deepcopy(BY_NAME["live_go_away"].model_dump(by_alias=True, exclude_none=True))
    live["faults"] = [{"fault": "close", "turn": 5, "after": 0, "code": 1011}]
    with pytest.raises(CassetteError, match="turn 5 does not exist"):
        parse_cassette(live)
    live["faults"] = [{"fault": "drop", "turn": 0, "after": 1, "at_byte": 3}]
    with pytest.raises(CassetteError, match="'at_byte' is for generate"):
        parse_cassette(live)
    live["faults"] = [{"fault": "close", "after": 1, "code": 1011, "reason": "x" * 124}]
    with pytest.raises(CassetteError, match="123 UTF-8 bytes"):
        parse_cassette(live)


# -- HTTP errors before the first chunk ---------------------------------------------------


def test_an_http_error_is_raised_without_retry_options(client, emu) -> None:
    with pytest.raises(errors.ClientError) as caught:
        list(client.models.generate_content_stream(model=MODEL, contents=made.RATE_LIMITED))
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert len(emu.requests) == 1


def test_retry_options_give_up_after_their_attempts(client, emu) -> None:
    with pytest.raises(errors.ClientError, match="RESOURCE_EXHAUSTED"):
        list(
            client.models.generate_content_stream(
                model=MODEL, contents=made.RATE_LIMITED, config=retrying()
            )
        )
    assert [r.cassette for r in emu.requests] == ["faults_rate_limited"] * 4


def test_fails_twice_then_succeeds_under_retry_options(client, emu) -> None:
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents=made.OVERLOADED, config=retrying()
        )
    )
    assert "".join(c.text for c in chunks) == "".join(texts("faults_overloaded"))
    assert len(emu.requests) == 3
    assert emu.fault_attempts == {"faults_overloaded": 3}
    # The count starts over: the next request fails again.
    with pytest.raises(errors.ServerError, match="overloaded"):
        client.models.generate_content(model=MODEL, contents=made.OVERLOADED)


@synced
async def test_async_retry_options_count_the_same(client, emu) -> None:
    stream = await client.aio.models.generate_content_stream(
        model=MODEL, contents=made.OVERLOADED, config=retrying()
    )
    pieces = [chunk.text async for chunk in stream]
    assert "".join(pieces) == "".join(texts("faults_overloaded"))
    assert len(emu.requests) == 3


# -- in-stream faults ---------------------------------------------------------------------


def test_an_error_event_raises_after_the_partial_answer_and_is_not_retried(client, emu) -> None:
    seen = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in client.models.generate_content_stream(
            model=MODEL, contents=made.ERROR_MIDSTREAM, config=retrying()
        ):
            seen.append(chunk.text)
    assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE"
    assert seen == delivered("faults_error_midstream", "error_event")
    assert len(emu.requests) == 1  # retry options cover the first response only


@synced
async def test_async_error_event(client, emu) -> None:
    seen = []
    stream = await client.aio.models.generate_content_stream(
        model=MODEL, contents=made.ERROR_MIDSTREAM
    )
    with pytest.raises(errors.ServerError, match="overloaded"):
        async for chunk in stream:
            seen.append(chunk.text)
    assert seen == delivered("faults_error_midstream", "error_event")


def _raw_stream(emu: Emulator, prompt: str, query: str = "?alt=sse") -> list[bytes]:
    """The bytes of a stream as read from the socket, one item per read."""
    ctx = emu.certificate.client_context()
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    url = f"{emu.base_url}/v1beta/models/{MODEL}:streamGenerateContent{query}"
    reads: list[bytes] = []
    with httpx.Client(verify=ctx) as http:
        with http.stream("POST", url, json=body, headers={"x-goog-api-key": "k"}) as response:
            try:
                reads.extend(response.iter_raw())
            except httpx.HTTPError:
                pass
    return reads


def test_an_error_event_ends_a_json_array_stream_too(emu) -> None:
    # Without alt=sse the stream is one JSON array; the error is its last item.
    items = json.loads(b"".join(_raw_stream(emu, made.ERROR_MIDSTREAM, query="")))
    fault = fault_of("faults_error_midstream", "error_event")
    assert len(items) == fault.after + 1
    assert items[-1] == fault.error.model_dump(exclude_none=True)
    got = [i["candidates"][0]["content"]["parts"][0].get("text", "") for i in items[:-1]]
    assert got == texts("faults_error_midstream")[: fault.after]


def test_a_mid_chunk_drop_sends_part_of_an_event_then_breaks(client, emu) -> None:
    seen = []
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the transport's own error
        for chunk in client.models.generate_content_stream(model=MODEL, contents=made.DROPPED):
            seen.append(chunk.text)
    assert "incomplete chunked read" in str(caught.value) or "closed" in str(caught.value)
    assert seen == delivered("faults_dropped_stream", "drop")
    raw = b"".join(_raw_stream(emu, made.DROPPED))
    events = raw.split(b"\r\n\r\n")
    drop = fault_of("faults_dropped_stream", "drop")
    # ``after`` whole events, then ``at_byte`` bytes of the next
    assert len(events) == drop.after + 1 and len(events[-1]) == drop.at_byte


@synced
async def test_async_mid_chunk_drop(client) -> None:
    import aiohttp

    seen = []
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=made.DROPPED)
    with pytest.raises(aiohttp.ClientError):
        async for chunk in stream:
            seen.append(chunk.text)
    assert seen == delivered("faults_dropped_stream", "drop")


@pytest.mark.parametrize(
    ("name", "kind"), [("faults_error_midstream", "error_event"), ("faults_dropped_stream", "drop")]
)
def test_a_stream_breaks_mid_word_and_its_continue_request_carries_on_from_there(
    name, kind
) -> None:
    partial = "".join(delivered(name, kind))
    whole = "".join(texts(name))
    assert 0 < len(partial) < len(whole)
    assert partial[-1].isalpha() and whole[len(partial)].isalpha()  # a live stream's cut
    continued = BY_NAME[f"{name}_continued"]
    assert continued.request["contents"][1] == {"role": "model", "parts": [{"text": partial}]}
    assert partial + "".join(texts(f"{name}_continued")) == whole


@pytest.mark.parametrize("prompt", [made.ERROR_MIDSTREAM, made.DROPPED])
def test_resume_stream_continues_from_the_partial_answer(client, emu, prompt) -> None:
    result = resume_stream(client, model=MODEL, contents=prompt, backoff_s=0)
    pieces = [c.text for c in result]
    name = "faults_error_midstream" if prompt == made.ERROR_MIDSTREAM else "faults_dropped_stream"
    assert "".join(pieces) == "".join(texts(name)) == result.text
    assert result.requests == 2 and len(result.errors) == 1
    assert [r.cassette for r in emu.requests] == [name, f"{name}_continued"]
    contents = emu.requests[1].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[2]["parts"][0]["text"] == CONTINUE_PROMPT


@synced
async def test_the_async_clients_dropped_stream_is_resumable(client, emu) -> None:
    # The async client reads with aiohttp: its broken stream must count as resumable too.
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=made.DROPPED)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the SDK's transport error
        async for _ in stream:
            pass
    assert is_resumable(caught.value), repr(caught.value)


def test_resume_stream_gives_up_after_max_resumes(client, emu) -> None:
    with pytest.raises(errors.ServerError):
        list(
            resume_stream(
                client, model=MODEL, contents=made.ERROR_MIDSTREAM, max_resumes=0, backoff_s=0
            )
        )
    assert len(emu.requests) == 1


# -- finish reasons -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "reason"),
    [
        (made.SAFETY, types.FinishReason.SAFETY),
        (made.MAX_TOKENS, types.FinishReason.MAX_TOKENS),
        (made.RECITATION, types.FinishReason.RECITATION),
    ],
)
def test_finish_reasons_arrive_on_the_last_chunk(client, prompt, reason) -> None:
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=prompt))
    assert chunks[-1].candidates[0].finish_reason == reason
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])


def test_a_blocked_prompt_has_no_candidates(client) -> None:
    (chunk,) = client.models.generate_content_stream(model=MODEL, contents=made.BLOCKED)
    assert chunk.candidates is None and chunk.text is None
    assert chunk.prompt_feedback.block_reason == types.BlockedReason.SAFETY


# -- bytes on the wire --------------------------------------------------------------------


def test_split_writes_cut_utf8_characters_across_reads(emu) -> None:
    reads = _raw_stream(emu, made.SPLIT_UTF8)
    broken = 0
    for piece in reads:
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError:
            broken += 1
    assert broken >= 3  # é, ü and ☕ each straddle two reads
    # Decoding each read on its own corrupts the text...
    naive = "".join(piece.decode("utf-8", errors="replace") for piece in reads)
    assert "\ufffd" in naive
    # ...our parser decodes incrementally and gets every event whole.
    events = list(iter_events(iter_lines(iter_text(reads))))
    answer = "".join(
        json.loads(e.data)["candidates"][0]["content"]["parts"][0]["text"] for e in events
    )
    assert answer == "".join(texts("faults_split_utf8"))


def test_the_sdk_parses_split_utf8_sync_and_async(client) -> None:
    want = "".join(texts("faults_split_utf8"))
    chunks = client.models.generate_content_stream(model=MODEL, contents=made.SPLIT_UTF8)
    assert "".join(c.text for c in chunks) == want

    async def collect() -> str:
        stream = await client.aio.models.generate_content_stream(
            model=MODEL, contents=made.SPLIT_UTF8
        )
        return "".join([c.text async for c in stream])

    assert asyncio.run(collect()) == want


def test_line_separators_inside_json_survive_the_sdk_and_our_parser(client, emu) -> None:
    want = "".join(texts("faults_line_separators"))
    assert "\u2028" in want and "\u2029" in want
    chunks = client.models.generate_content_stream(model=MODEL, contents=made.SEPARATORS)
    assert "".join(c.text for c in chunks) == want
    reads = _raw_stream(emu, made.SEPARATORS)
    raw = b"".join(reads).decode("utf-8")
    assert "\u2028" in raw  # sent raw, not escaped
    events = list(iter_events(iter_lines(iter_text(reads))))
    assert len(events) == len(texts("faults_line_separators"))
    # str.splitlines() (and parsers built on it) tears those events apart.
    assert len([line for line in raw.splitlines() if line]) > len(events)


def test_bare_cr_line_ends_parse_in_our_parser_only() -> None:
    # The SDK's aiohttp reader splits at LF only, so the emulator never sends bare CR;
    # SSE allows it, and our parser reads it.
    stream = [b'data: {"a": "caf\xc3', b'\xa9"}\r\rdata: {"b": 2}\r', b"\r"]
    events = list(iter_events(iter_lines(iter_text(stream))))
    assert [json.loads(e.data) for e in events] == [{"a": "café"}, {"b": 2}]
    assert len(b"".join(stream).decode().split("\n")) == 1  # a LF-only parser sees one line


# -- Live API -----------------------------------------------------------------------------

LIVE = BY_NAME["live_go_away"]
assert isinstance(LIVE, LiveCassette)
CONFIG = types.LiveConnectConfig(response_modalities=["AUDIO"], system_instruction=spoken.NARRATOR)


def cassette_pcm(cassette: LiveCassette, turns: range) -> bytes:
    pcm = b""
    for t in turns:
        for message in cassette.turns[t].messages:
            if message.audio is not None:
                _, data = load_audio(FAULTS / message.audio.file)
                start = message.audio.start * 2
                pcm += data[start : start + message.audio.frames * 2]
    return pcm


def _live_store(tmp_path: Path, faults: list[dict]) -> CassetteStore:
    data = LIVE.model_dump(by_alias=True, exclude_none=True, exclude_defaults=False)
    data["name"] = "live_fault_test"
    data["faults"] = faults
    for turn in data["turns"]:
        for message in turn["messages"]:
            if message.get("audio"):
                message["audio"]["file"] = str(FAULTS / message["audio"]["file"])
            message.pop("break", None)
    (tmp_path / "c.json").write_text(json.dumps(data))
    return CassetteStore([tmp_path])


@synced
async def test_go_away_then_reconnect_with_the_handle_keeps_one_wav(client, emu, tmp_path) -> None:
    path = tmp_path / "narration.wav"
    handle = None
    handles = []  # every resumable handle received, in order
    go_away = None
    sessions = 0
    with wave_file(path) as wav:
        passages = list(spoken.GO_AWAY_PASSAGES)
        while passages:
            config = CONFIG.model_copy(
                update={"session_resumption": types.SessionResumptionConfig(handle=handle)}
            )
            sessions += 1
            async with client.aio.live.connect(model=LIVE.model, config=config) as session:
                go_away = None
                while passages and go_away is None:
                    await session.send_realtime_input(text=passages[0])
                    async for message in session.receive():
                        if message.data:
                            wav.writeframes(message.data)
                        if message.go_away:
                            go_away = message.go_away.time_left
                        # The update comes after turn_complete, where receive() stops.
                        assert message.session_resumption_update is None
                    async for message in session.receive():  # read on until the update
                        if message.go_away:
                            go_away = message.go_away.time_left
                        update = message.session_resumption_update
                        if update:
                            if update.resumable:
                                handle = update.new_handle
                                handles.append(handle)
                            break
                    passages.pop(0)
    assert sessions == 2 and go_away is None
    with wave.open(str(path), "rb") as read:
        assert (read.getframerate(), read.getnchannels(), read.getsampwidth()) == (24000, 1, 2)
        assert read.readframes(read.getnframes()) == cassette_pcm(LIVE, range(3))
    bidi = [r for r in emu.requests if r.method == "BidiGenerateContent"]
    assert len(bidi) == 2
    assert "sessionResumption" in bidi[0].body[0]["setup"]
    assert not bidi[0].body[0]["setup"]["sessionResumption"].get("handle")
    sent_handle = bidi[1].body[0]["setup"]["sessionResumption"]["handle"]
    assert sent_handle == handles[0]  # the handle after the first turn (the goAway turn)
    assert emu.live_handles.get(sent_handle) == ("live_go_away", 1)
    assert [emu.live_handles.get(h) for h in handles] == [
        ("live_go_away", 1),
        ("live_go_away", 2),
        ("live_go_away", 3),
    ]


@synced
async def test_resumable_live_session_follows_go_away(client, emu, tmp_path) -> None:
    path = tmp_path / "helper.wav"
    async with ResumableLiveSession(client, model=LIVE.model, config=CONFIG) as live:
        with wave_file(path) as wav:
            for passage in spoken.GO_AWAY_PASSAGES:
                async for message in live.send_turn(passage):
                    if message.data:
                        wav.writeframes(message.data)
        assert emu.live_handles.get(live.handle) == ("live_go_away", 2)
        assert await live.read_update() == live.handle  # the update after the last turn
    assert live.reconnects == ["goAway (time left 10s)"]
    assert emu.live_handles.get(live.handle) == ("live_go_away", 3)
    with wave.open(str(path), "rb") as read:
        assert read.readframes(read.getnframes()) == cassette_pcm(LIVE, range(3))
    bidi = [r for r in emu.requests if r.method == "BidiGenerateContent"]
    assert len(bidi) == 2
    sent_handle = bidi[1].body[0]["setup"]["sessionResumption"]["handle"]
    assert emu.live_handles.get(sent_handle) == ("live_go_away", 1)


@synced
async def test_the_connection_closes_with_1001_when_go_away_time_is_up(client) -> None:
    async with client.aio.live.connect(model=LIVE.model, config=CONFIG) as session:
        await session.send_realtime_input(text=spoken.GO_AWAY_PASSAGES[0])
        messages = [m async for m in session.receive()]
        assert any(m.go_away and m.go_away.time_left == "10s" for m in messages)
        assert messages[-1].server_content.turn_complete
        # Fast pacing: the 10 s are up at once, and no further turn is taken.
        with pytest.raises(errors.APIError) as caught:
            async for _ in session.receive():
                pass
    assert caught.value.code == 1001


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (
            {"fault": "close", "turn": 1, "after": 4, "code": 1011, "reason": "Internal error."},
            1011,
        ),
        ({"fault": "drop", "turn": 1, "after": 4}, 1006),
    ],
)
@synced
async def test_live_close_and_drop_faults(tmp_path, fault, code) -> None:
    store = _live_store(tmp_path, [fault])
    with Emulator(store=store, pacing="fast") as emu:
        client = genai.Client(api_key="k", http_options=emu.http_options())
        received = []
        async with client.aio.live.connect(model=LIVE.model, config=CONFIG) as session:
            for passage in spoken.GO_AWAY_PASSAGES[:2]:
                await session.send_realtime_input(text=passage)
                try:
                    async for message in session.receive():
                        received.append(message)
                except errors.APIError as exc:
                    error = exc
                    break
    assert error.code == code
    if code == 1011:
        assert "Internal error." in str(error)
    turn0 = [render_message(LIVE, m, output_transcription=False) for m in LIVE.turns[0].messages]
    turn1 = [render_message(LIVE, m, output_transcription=False) for m in LIVE.turns[1].messages]
    # Turn 0 whole, then what the first 4 messages of turn 1 send.
    assert len(received) == len([m for m in turn0 if m]) + len([m for m in turn1[:4] if m])

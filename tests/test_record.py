"""Record mode: the emulator as a recording proxy, then offline replay of what it wrote.

The upstream (standing in for the live API) is a second emulator with its own
cassettes, in realtime pacing with small delays. Everything goes over real sockets:
the SDK or httpx to the recording proxy, aiohttp from the proxy to the upstream.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from google import genai
from google.genai import errors, types

from quickstart_helpers._scrub import REDACTED
from quickstart_helpers.emulator import (
    CassetteStore,
    Emulator,
    GenerateCassette,
    LiveCassette,
    load_cassette,
    recording_emulator,
)

#: A distinctive fake key: it must reach no written file.
FAKE_KEY = "AIzaFAKE-record-test-Zq7xW3"
#: A model whose catalog entry (emulator/data/models.json) is the API's full Model JSON, so
#: the record tests of model look-ups have real fields to compare.
MODEL = "gemini-2.5-flash"
LIVE_MODEL = "gemini-3.1-flash-live-preview"
DELAYS = [120, 15, 100]
STORY = "Tell me a story about a lighthouse"
ECHO = "Echo my key please"
PLAIN = "Answer without streaming"
LIVE_INPUT = "Say hello in three words"


def _chunk(text: str, finish: bool = False) -> dict:
    candidate: dict = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    response: dict = {"candidates": [candidate], "modelVersion": MODEL}
    if finish:
        response["usageMetadata"] = {"promptTokenCount": 5, "totalTokenCount": 12}
    return response


def _generate(name: str, prompt: str, chunks: list[dict], **extra: object) -> dict:
    return {
        "format": 1,
        "name": name,
        "kind": "generate",
        "model": MODEL,
        "request": {"contents": [{"role": "user", "parts": [{"text": prompt}]}]},
        **({"chunks": chunks} if chunks else {}),
        **extra,
    }


def write_upstream(folder: Path, *, story_words: tuple[str, ...] = ("Once", " upon", " a time.")):
    """Write the upstream's cassettes (text, error echoing the key, Live with audio)."""
    folder.mkdir(parents=True, exist_ok=True)
    story = [
        {"delay_ms": d, "response": _chunk(w, i == len(DELAYS) - 1)}
        for i, (d, w) in enumerate(zip(DELAYS, story_words, strict=True))
    ]
    cassettes = [
        _generate("up_story", STORY, story),
        _generate("up_plain", PLAIN, [{"delay_ms": 60, "response": _chunk("Plain.", True)}]),
        _generate(
            "up_echo",
            ECHO,
            [],
            error={
                "status": 400,
                "delay_ms": 20,
                "body": {
                    "error": {
                        "code": 400,
                        "message": f"API key {FAKE_KEY} is not allowed for this project.",
                        "status": "INVALID_ARGUMENT",
                    }
                },
            },
        ),
    ]
    rng = np.random.default_rng(7)
    pcm = rng.integers(-3000, 3000, size=1440, dtype=np.int16).tobytes()
    (folder / "audio").mkdir(exist_ok=True)
    with wave.open(str(folder / "audio" / "up.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(24000)
        wav.writeframes(pcm)
    audio = [
        {"delay_ms": 40, "audio": {"file": "audio/up.wav", "start": i * 480, "frames": 480}}
        for i in range(3)
    ]
    cassettes.append(
        {
            "format": 1,
            "name": "up_live",
            "kind": "live",
            "model": LIVE_MODEL,
            "setup": {"generationConfig": {"responseModalities": ["AUDIO"]}},
            "turns": [
                {
                    "input": LIVE_INPUT,
                    "messages": [
                        *audio,
                        {
                            "delay_ms": 10,
                            "message": {"serverContent": {"generationComplete": True}},
                        },
                        {
                            "delay_ms": 5,
                            "message": {
                                "serverContent": {"turnComplete": True},
                                "usageMetadata": {"totalTokenCount": 30},
                            },
                        },
                    ],
                }
            ],
        }
    )
    for cassette in cassettes:
        (folder / f"{cassette['name']}.json").write_text(json.dumps(cassette), "utf-8")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Iterator[Emulator]:
    folder = tmp_path_factory.mktemp("upstream")
    write_upstream(folder)
    emulator = Emulator(store=CassetteStore([folder]), pacing="realtime").start()
    yield emulator
    emulator.stop()


@pytest.fixture
def record(upstream, tmp_path):
    """Start recording proxies into ``tmp_path / 'cassettes'``; stopped at the end."""
    started: list[Emulator] = []

    def start(mode: str = "once", folder: Path | None = None) -> Emulator:
        emulator = recording_emulator(
            folder or tmp_path / "cassettes",
            mode=mode,
            upstream=upstream.base_url,
            upstream_ca=upstream.certificate.cert_file,
            pacing="realtime",
            shared=False,
        )
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def replay(tmp_path):
    started: list[Emulator] = []

    def start(folder: Path | None = None, pacing: str = "realtime") -> Emulator:
        store = CassetteStore([folder or tmp_path / "cassettes"])
        emulator = Emulator(store=store, pacing=pacing).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


_clients: list[genai.Client] = []


def client(emulator: Emulator, key: str = FAKE_KEY) -> genai.Client:
    """A client for ``emulator``, kept alive (the SDK closes a client that is collected)."""
    made = genai.Client(api_key=key, http_options=emulator.http_options())
    _clients.append(made)
    return made


def raw_events(emulator: Emulator, prompt: str) -> list[bytes]:
    """POST a streaming request with httpx; return each SSE event's data bytes."""
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    url = f"{emulator.base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    verify = emulator.certificate.client_context()
    with httpx.Client(verify=verify, timeout=30) as http:
        with http.stream("POST", url, json=body, headers={"x-goog-api-key": FAKE_KEY}) as resp:
            assert resp.status_code == 200
            payload = resp.read()
    events = re.split(rb"\r?\n\r?\n", payload)  # the API frames with CRLF CRLF
    return [e.removeprefix(b"data: ") for e in events if e]


def scan_for_key(folder: Path) -> list[Path]:
    """Every file under ``folder`` whose bytes hold the fake key (any case)."""
    hits = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if FAKE_KEY.encode() in data or FAKE_KEY.lower().encode() in data.lower():
                hits.append(path)
    return hits


def wait_written(proxy: Emulator, count: int = 1) -> None:
    """Wait (at most 10 s) until the proxy has written ``count`` cassettes.

    A Live session's cassette is written when the proxy sees the session end, which
    may be just after the client's ``async with`` has returned.
    """
    for _ in range(200):
        if len(proxy.recorder.written) + len(proxy.recorder.failures) >= count:
            return
        time.sleep(0.05)


def only_cassette(folder: Path):
    files = sorted(folder.glob("*.json"))
    assert len(files) == 1, files
    return load_cassette(files[0])


# -- streaming, non-streaming, errors ----------------------------------------------------------


def assert_follows_pacing(recorded: list[int], wanted: list[int]) -> None:
    """Recorded delays follow the upstream's pacing: by arrival time, within a tolerance.

    Chunk k cannot arrive before the sum of the upstream's first k delays, so the
    running totals are a firm lower bound (5 ms for clock granularity); a busy machine
    can only make them later (up to 1 s here). A single gap may be shorter than the
    upstream's when the chunk before it was late, so gaps are not compared one by one.
    """
    assert len(recorded) == len(wanted)
    total_recorded = total_wanted = 0
    for got, expected in zip(recorded, wanted, strict=True):
        total_recorded += got
        total_wanted += expected
        assert total_wanted - 5 <= total_recorded <= total_wanted + 1000, (recorded, wanted)


def test_a_stream_is_recorded_chunk_by_chunk_and_replays_byte_equal(upstream, record, replay):
    sent_by_upstream = raw_events(upstream, STORY)
    proxy = record("once")
    received = raw_events(proxy, STORY)
    assert received == sent_by_upstream  # streamed through unchanged
    proxy.stop()

    cassette = only_cassette(proxy.recorder.folder)
    assert isinstance(cassette, GenerateCassette)
    assert [c.delay_ms for c in cassette.chunks][0] >= DELAYS[0] - 5
    assert_follows_pacing([c.delay_ms for c in cassette.chunks], DELAYS)

    offline = replay()
    assert raw_events(offline, STORY) == sent_by_upstream
    sdk = client(offline)  # kept alive: the SDK closes a client that is collected
    chunks = list(sdk.models.generate_content_stream(model=MODEL, contents=STORY))
    assert "".join(c.text for c in chunks) == "Once upon a time."
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert scan_for_key(proxy.recorder.folder) == []


def test_a_non_streaming_answer_is_recorded_and_replayed_as_sent(upstream, record, replay):
    url = f"/v1beta/models/{MODEL}:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": PLAIN}]}]}

    def post(emulator: Emulator) -> bytes:
        verify = emulator.certificate.client_context()
        with httpx.Client(verify=verify, timeout=30) as http:
            resp = http.post(emulator.base_url + url, json=body, headers={"x-goog-api-key": "k"})
        assert resp.status_code == 200
        return resp.content

    direct = post(upstream)
    proxy = record("once")
    assert post(proxy) == direct
    cassette = only_cassette(proxy.recorder.folder)
    assert len(cassette.chunks) == 1 and cassette.chunks[0].delay_ms >= 55
    offline = replay()
    assert post(offline) == direct
    answer = client(offline).models.generate_content(model=MODEL, contents=PLAIN)
    assert answer.text == "Plain."


def test_an_upstream_error_is_recorded_without_the_key_and_replays(upstream, record, replay):
    proxy = record("once")
    with pytest.raises(errors.ClientError) as live:
        client(proxy).models.generate_content(model=MODEL, contents=ECHO)
    assert live.value.code == 400
    assert FAKE_KEY in live.value.message  # the client itself gets the answer as sent
    cassette = only_cassette(proxy.recorder.folder)
    assert cassette.error is not None and cassette.error.status == 400
    assert scan_for_key(proxy.recorder.folder) == []  # scrubbed from the error text

    with pytest.raises(errors.ClientError) as offline:
        sdk = client(replay(), key="other")
        list(sdk.models.generate_content_stream(model=MODEL, contents=ECHO))
    assert offline.value.code == 400
    assert offline.value.status == "INVALID_ARGUMENT"
    assert offline.value.message == f"API key {REDACTED} is not allowed for this project."


def test_the_key_never_reaches_a_file(upstream, record, tmp_path):
    proxy = record("new_episodes")
    sdk = client(proxy)
    list(sdk.models.generate_content_stream(model=MODEL, contents=STORY))
    sdk.models.generate_content(model=MODEL, contents=PLAIN)
    with pytest.raises(errors.ClientError):
        sdk.models.generate_content(model=MODEL, contents=ECHO)
    # The key in the query string instead of the header (the upstream answers 404).
    with httpx.Client(verify=proxy.certificate.client_context(), timeout=30) as http:
        http.post(
            f"{proxy.base_url}/v1beta/models/{MODEL}:generateContent?key={FAKE_KEY}",
            json={"contents": [{"parts": [{"text": "Unrecorded upstream too"}]}]},
        )
    folder = proxy.recorder.folder
    assert len(list(folder.glob("*.json"))) == 4
    assert scan_for_key(tmp_path) == []


def test_a_client_that_disconnects_midway_records_nothing(upstream, record):
    proxy = record("once")
    body = {"contents": [{"role": "user", "parts": [{"text": STORY}]}]}
    url = f"{proxy.base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    with httpx.Client(verify=proxy.certificate.client_context(), timeout=30) as http:
        with http.stream("POST", url, json=body, headers={"x-goog-api-key": FAKE_KEY}) as resp:
            next(resp.iter_bytes())  # the first chunk, then hang up
    # The proxy notices when it writes the next chunk; wait for its verdict (bounded).
    wait_written(proxy)
    assert any("disconnected" in f for f in proxy.recorder.failures)
    assert not list(proxy.recorder.folder.glob("*.json"))


def test_an_unreachable_upstream_is_a_502_and_records_nothing(tmp_path):
    proxy = recording_emulator(
        tmp_path / "c", mode="all", upstream="https://127.0.0.1:9", shared=False
    )
    try:
        with pytest.raises(errors.ServerError) as info:
            client(proxy).models.generate_content(model=MODEL, contents=STORY)
        assert info.value.code == 502
        assert "could not reach the upstream" in info.value.message
    finally:
        proxy.stop()
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").rglob("*"))


# -- record modes ---------------------------------------------------------------------------------


def test_mode_none_replays_only_and_names_the_record_command(upstream, record):
    proxy = record("none")
    with pytest.raises(errors.ClientError) as info:
        client(proxy).models.generate_content(model=MODEL, contents=STORY)
    assert info.value.code == 404
    assert "quickstart record NOTEBOOK --cassettes DIR" in info.value.message
    assert "--gemini-record-mode=once" in info.value.message
    assert upstream.requests == [] or all(r.body != STORY for r in upstream.requests)
    assert not list(proxy.recorder.folder.glob("*.json"))


def test_mode_once_records_an_empty_folder_then_only_replays(upstream, record, tmp_path):
    first = record("once")
    sdk = client(first)
    list(sdk.models.generate_content_stream(model=MODEL, contents=STORY))
    first.stop()
    assert len(list((tmp_path / "cassettes").glob("*.json"))) == 1

    second = record("once")
    upstream.requests.clear()
    answer = client(second).models.generate_content(model=MODEL, contents=STORY)
    assert answer.text == "Once upon a time."
    assert upstream.requests == []  # replayed, not forwarded
    with pytest.raises(errors.ClientError) as info:
        client(second).models.generate_content(model=MODEL, contents=PLAIN)
    assert info.value.code == 404
    assert "'new_episodes'" in info.value.message
    assert len(list((tmp_path / "cassettes").glob("*.json"))) == 1


def test_mode_new_episodes_records_what_is_new_and_replays_the_rest(upstream, record, tmp_path):
    first = record("once")
    client(first).models.generate_content(model=MODEL, contents=STORY)
    first.stop()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cassettes").glob("*.json")}

    second = record("new_episodes")
    upstream.requests.clear()
    client(second).models.generate_content(model=MODEL, contents=STORY)
    client(second).models.generate_content(model=MODEL, contents=PLAIN)
    assert [r.body["contents"][0]["parts"][0]["text"] for r in upstream.requests] == [PLAIN]
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cassettes").glob("*.json")}
    assert len(after) == 2
    assert all(after[name] == stamp for name, stamp in before.items())  # untouched


def test_mode_all_records_everything_again(upstream, record, tmp_path):
    first = record("once")
    client(first).models.generate_content(model=MODEL, contents=STORY)
    first.stop()
    (path,) = (tmp_path / "cassettes").glob("*.json")
    data = json.loads(path.read_text())
    data["description"] = "edited by hand"
    path.write_text(json.dumps(data))

    second = record("all")
    upstream.requests.clear()
    client(second).models.generate_content(model=MODEL, contents=STORY)
    assert len(upstream.requests) == 1  # forwarded although a cassette answers it
    assert list((tmp_path / "cassettes").glob("*.json")) == [path]
    assert json.loads(path.read_text())["description"] != "edited by hand"


# -- Live API ----------------------------------------------------------------------------------


async def _live_turn(
    emulator: Emulator,
    key: str = FAKE_KEY,
    *,
    model: str = LIVE_MODEL,
    history: list[types.Content] | None = None,
    as_client_content: bool = False,
) -> list[bytes]:
    """One Live API turn through the SDK, as realtime input text (Live 3.1) or as client
    content (``as_client_content``), after seeding ``history`` if given (with the setup's
    ``historyConfig``); return each message's PCM."""
    config = types.LiveConnectConfig(response_modalities=["AUDIO"])
    if history is not None:
        config.history_config = types.HistoryConfig(initial_history_in_client_content=True)
    pcm: list[bytes] = []
    async with client(emulator, key).aio.live.connect(model=model, config=config) as session:
        if history is not None:
            await session.send_client_content(turns=history, turn_complete=True)
        if as_client_content:
            turn = types.Content(role="user", parts=[types.Part(text=LIVE_INPUT)])
            await session.send_client_content(turns=turn, turn_complete=True)
        else:
            await session.send_realtime_input(text=LIVE_INPUT)  # Live 3.1: text as realtime input
        async for message in session.receive():
            if message.data:
                pcm.append(message.data)
    return pcm


def test_a_live_session_is_recorded_with_its_audio_and_replays(upstream, record, replay):
    direct = asyncio.run(_live_turn(upstream))
    proxy = record("once")
    through = asyncio.run(_live_turn(proxy))
    assert through == direct and len(direct) == 3
    wait_written(proxy)
    cassette = only_cassette(proxy.recorder.folder)
    assert isinstance(cassette, LiveCassette)
    (turn,) = cassette.turns
    assert turn.input == LIVE_INPUT
    assert [m.audio.frames for m in turn.messages if m.audio] == [480, 480, 480]
    assert turn.messages[0].delay_ms >= 35
    wav = proxy.recorder.folder / turn.messages[0].audio.file
    assert wav.parent.name == "audio" and wav.is_file()

    offline = replay()
    assert asyncio.run(_live_turn(offline, key="other")) == direct
    assert scan_for_key(proxy.recorder.folder) == []


#: A conversation so far, seeded as the initial history (Live 3.1: with historyConfig).
SEEDED = [
    types.Content(role="user", parts=[types.Part(text="My name is Ada.")]),
    types.Content(role="model", parts=[types.Part(text="Hello, Ada.")]),
]


def test_a_seeded_history_is_not_recorded_as_a_turn_on_live_3_1(upstream, record, replay):
    # gemini-3.1-flash-live-preview takes clientContent only as the initial history, with
    # no model call (rule live.client_content_only_as_history): it is no turn to replay.
    direct = asyncio.run(_live_turn(upstream, history=SEEDED))
    proxy = record("once")
    assert asyncio.run(_live_turn(proxy, history=SEEDED)) == direct and len(direct) == 3
    wait_written(proxy)
    assert proxy.recorder.failures == []
    cassette = only_cassette(proxy.recorder.folder)
    assert [turn.input for turn in cassette.turns] == [LIVE_INPUT]
    assert list(cassette.setup["historyConfig"].values()) == [True]
    assert "Ada" not in cassette.path.read_text()

    offline = replay()  # replay takes the seeded history as history too
    assert asyncio.run(_live_turn(offline, key="other", history=SEEDED)) == direct


def test_client_content_is_a_recorded_turn_on_a_model_that_answers_it(tmp_path):
    older = "gemini-2.5-flash-native-audio-preview-09-2025"  # without the Live 3.1 rules
    folder = tmp_path / "older-upstream"
    write_upstream(folder)
    live = json.loads((folder / "up_live.json").read_text())
    (folder / "up_live.json").write_text(json.dumps({**live, "model": older}))
    with Emulator(store=CassetteStore([folder]), pacing="fast") as upstream:
        proxy = recording_emulator(
            tmp_path / "cassettes",
            mode="once",
            upstream=upstream.base_url,
            upstream_ca=upstream.certificate.cert_file,
            shared=False,
        )
        try:
            pcm = asyncio.run(_live_turn(proxy, model=older, as_client_content=True))
            wait_written(proxy)
        finally:
            proxy.stop()
    assert len(pcm) == 3
    (turn,) = only_cassette(tmp_path / "cassettes").turns
    assert turn.input == LIVE_INPUT
    assert scan_for_key(tmp_path / "cassettes") == []


def test_a_cassette_that_would_hold_the_key_is_refused(tmp_path, record):
    # The upstream's audio happens to contain the key's bytes: they cannot be scrubbed
    # from PCM, so the session is not written at all.
    folder = tmp_path / "leaky-upstream"
    write_upstream(folder)
    data = (FAKE_KEY.encode() + b"\0").ljust(2880, b"\0")
    with wave.open(str(folder / "audio" / "up.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(24000)
        wav.writeframes(data)
    leaky = Emulator(store=CassetteStore([folder]), pacing="fast").start()
    try:
        proxy = recording_emulator(
            tmp_path / "cassettes",
            mode="once",
            upstream=leaky.base_url,
            upstream_ca=leaky.certificate.cert_file,
            shared=False,
        )
        try:
            pcm = asyncio.run(_live_turn(proxy))
            assert FAKE_KEY.encode() in b"".join(pcm)  # the client got the answer
            wait_written(proxy)
        finally:
            proxy.stop()
    finally:
        leaky.stop()
    assert any("would contain your API key" in f for f in proxy.recorder.failures)
    assert not (tmp_path / "cassettes").exists() or scan_for_key(tmp_path / "cassettes") == []
    assert not list((tmp_path / "cassettes").rglob("*.json"))


def test_base64_of_the_audio_is_not_kept_inline(upstream, record):
    proxy = record("once")
    asyncio.run(_live_turn(proxy))
    wait_written(proxy)
    text = only_cassette(proxy.recorder.folder).path.read_text()
    assert "inlineData" not in text and base64.b64encode(b"\0" * 30).decode() not in text


# -- the recorded error in the cassette schema -----------------------------------------------


def _error_cassette(**error: object) -> dict:
    body = {"error": {"code": 429, "message": "Slow down.", "status": "RESOURCE_EXHAUSTED"}}
    return _generate("e", "Hi", [], error={"status": 429, "body": body, **error})


def test_a_recorded_error_is_strictly_validated():
    from quickstart_helpers.emulator import parse_cassette
    from quickstart_helpers.errors import CassetteError

    assert parse_cassette(_error_cassette()).error.status == 429
    with pytest.raises(
        CassetteError, match="error.status: Input should be greater than or equal to 400"
    ):
        parse_cassette(_error_cassette(status=200))
    with pytest.raises(CassetteError, match="error.colour: Extra inputs are not permitted"):
        parse_cassette(_error_cassette(colour="red"))
    with pytest.raises(CassetteError, match="body.error.message: Field required"):
        parse_cassette(_error_cassette(body={"error": {"code": 429}}))
    both = _error_cassette()
    both["chunks"] = [{"delay_ms": 0, "response": _chunk("x", True)}]
    with pytest.raises(CassetteError, match='"chunks" or an "error", not both'):
        parse_cassette(both)
    with pytest.raises(CassetteError, match="at least one chunk"):
        parse_cassette(_generate("n", "Hi", []))

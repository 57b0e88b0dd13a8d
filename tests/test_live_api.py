"""The real SDK's Live API (``client.aio.live.connect``) against the emulator's TLS WebSocket.

Every reply is written to a WAV file with :func:`quickstart_helpers.wav.wave_file` and
read back with the standard library's ``wave`` and with ``soundfile`` (libsndfile).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile
import websockets
from google import genai
from google.genai import errors, types

from quickstart_helpers.emulator import CassetteStore, Emulator, LiveCassette, shipped_cassette_dir
from quickstart_helpers.emulator._live_wire import MAX_REASON_BYTES, load_audio
from quickstart_helpers.wav import wave_file

from ._store import STORE

KEY = "test-key-must-never-be-recorded"
NARRATION = next(c for c in STORE.cassettes if c.name == "live_narration")
INTERRUPTION = next(c for c in STORE.cassettes if c.name == "live_interruption")
DROPPED = next(c for c in STORE.cassettes if c.name == "live_dropped_connection")
MODEL = NARRATION.model
NARRATOR = NARRATION.setup["systemInstruction"]["parts"][0]["text"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(pacing="fast").start()
    yield emu
    emu.stop()


@pytest.fixture
def client(emulator: Emulator) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=emulator.http_options())


def config(*, transcription: bool = False, **kwargs: object) -> types.LiveConnectConfig:
    return types.LiveConnectConfig(
        response_modalities=["AUDIO"],
        system_instruction=NARRATOR,
        output_audio_transcription=types.AudioTranscriptionConfig() if transcription else None,
        **kwargs,
    )


@dataclass
class Turn:
    """What one client turn received."""

    pcm: bytearray = field(default_factory=bytearray)
    mime_types: set[str] = field(default_factory=set)
    transcript: str = ""
    generation_complete: bool = False
    interrupted: bool = False
    go_away: str | None = None
    usage: types.UsageMetadata | None = None


async def receive_turn(session, path: Path) -> Turn:
    """Write one turn's audio to ``path`` chunk by chunk, as the notebook does."""
    turn = Turn()
    with wave_file(path) as wav:
        async for message in session.receive():
            content = message.server_content
            if content and content.model_turn:
                for part in content.model_turn.parts or []:
                    if part.inline_data:
                        turn.mime_types.add(part.inline_data.mime_type)
                        wav.writeframes(part.inline_data.data)
                        turn.pcm += part.inline_data.data
            if content and content.output_transcription:
                turn.transcript += content.output_transcription.text or ""
            if content and content.generation_complete:
                turn.generation_complete = True
            if content and content.interrupted:
                turn.interrupted = True
            if message.go_away:
                turn.go_away = message.go_away.time_left
            if content and content.turn_complete:
                turn.usage = message.usage_metadata
    return turn


def recorded_frames(cassette: LiveCassette, index: int) -> int:
    return sum(m.audio.frames for m in cassette.turns[index].messages if m.audio)


def recorded_pcm(cassette: LiveCassette, index: int) -> bytes:
    """The PCM a cassette turn sends, read straight from its WAV files."""
    folder = cassette.path.parent  # type: ignore[union-attr]
    out = bytearray()
    for m in cassette.turns[index].messages:
        if m.audio:
            _, pcm = load_audio(folder / m.audio.file)
            out += pcm[m.audio.start * 2 : (m.audio.start + m.audio.frames) * 2]
    return bytes(out)


def assert_wav_holds(path: Path, pcm: bytes) -> None:
    """Both readers see 24 kHz 16-bit mono PCM equal to ``pcm``, of the same duration."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (24_000, 2, 1)
        assert wav.getnframes() == len(pcm) // 2
        assert wav.readframes(wav.getnframes()) == pcm
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (24_000, 1, "PCM_16")
    assert info.duration == pytest.approx(len(pcm) / 2 / 24_000)
    data, _ = soundfile.read(path, dtype="int16")
    assert np.array_equal(data, np.frombuffer(pcm, dtype="<i2"))


def test_send_realtime_input_text_writes_one_wav_per_narration_turn(
    client: genai.Client, emulator: Emulator, tmp_path: Path
) -> None:
    async def run() -> list[Turn]:
        turns = []
        async with client.aio.live.connect(model=MODEL, config=config()) as session:
            for i, turn in enumerate(NARRATION.turns, 1):
                await session.send_realtime_input(text=turn.input)
                turns.append(await receive_turn(session, tmp_path / f"audio_response_{i}.wav"))
        return turns

    before = len(emulator.requests)
    turns = asyncio.run(run())

    assert len(turns) == len(NARRATION.turns) == 5
    for i, turn in enumerate(turns):
        assert turn.pcm == recorded_pcm(NARRATION, i)
        assert len(turn.pcm) == recorded_frames(NARRATION, i) * 2 > 24_000 * 2  # > 1 s
        assert_wav_holds(tmp_path / f"audio_response_{i + 1}.wav", bytes(turn.pcm))
        assert turn.mime_types == {"audio/pcm;rate=24000"}
        assert turn.mime_types.pop() == "audio/pcm;rate=24000"
        assert turn.transcript == ""  # the setup did not ask for a transcription
        assert turn.generation_complete and not turn.interrupted
        assert turn.usage is not None and turn.usage.total_token_count > 0

    received = emulator.requests[before:]
    assert [r.method for r in received] == ["BidiGenerateContent"]
    assert received[0].cassette == "live_narration"
    assert received[0].model == MODEL
    messages = received[0].body
    assert messages[0]["setup"]["model"] == f"models/{MODEL}"
    sent = [m["realtime_input"]["text"] for m in messages[1:]]
    assert sent == [t.input for t in NARRATION.turns]
    assert KEY not in repr(emulator.requests)


def test_send_realtime_input_text_with_output_transcription(
    client: genai.Client, emulator: Emulator, tmp_path: Path
) -> None:
    async def run() -> list[Turn]:
        turns = []
        async with client.aio.live.connect(
            model=MODEL, config=config(transcription=True)
        ) as session:
            for i in (2, 3):
                await session.send_realtime_input(text=NARRATION.turns[i].input)
                turns.append(await receive_turn(session, tmp_path / f"realtime_{i}.wav"))
        return turns

    before = len(emulator.requests)
    turns = asyncio.run(run())
    for turn, i in zip(turns, (2, 3), strict=True):
        assert turn.transcript == NARRATION.turns[i].input
        assert_wav_holds(tmp_path / f"realtime_{i}.wav", recorded_pcm(NARRATION, i))
    body = emulator.requests[before].body
    assert body[0]["setup"]["outputAudioTranscription"] == {}
    assert [m["realtime_input"]["text"] for m in body[1:]] == [
        NARRATION.turns[2].input,
        NARRATION.turns[3].input,
    ]


def test_interrupted_and_go_away_are_delivered(client: genai.Client, tmp_path: Path) -> None:
    async def run() -> tuple[Turn, Turn]:
        async with client.aio.live.connect(model=MODEL, config=config()) as session:
            await session.send_realtime_input(text=INTERRUPTION.turns[0].input)
            first = await receive_turn(session, tmp_path / "interrupted.wav")
            await session.send_realtime_input(text=INTERRUPTION.turns[1].input)
            second = await receive_turn(session, tmp_path / "after.wav")
            return first, second

    first, second = asyncio.run(run())
    assert first.interrupted and not first.generation_complete
    assert first.go_away is None
    assert_wav_holds(tmp_path / "interrupted.wav", recorded_pcm(INTERRUPTION, 0))
    assert len(first.pcm) / 2 / 24_000 == pytest.approx(2.4, abs=0.1)
    assert second.go_away == "10s"
    assert second.generation_complete and not second.interrupted
    assert_wav_holds(tmp_path / "after.wav", recorded_pcm(INTERRUPTION, 1))


def test_a_connection_that_breaks_midway_leaves_a_valid_wav(
    client: genai.Client, tmp_path: Path
) -> None:
    path = tmp_path / "dropped.wav"
    received = bytearray()

    async def run() -> None:
        async with client.aio.live.connect(model=MODEL, config=config()) as session:
            await session.send_realtime_input(text=DROPPED.turns[0].input)
            with wave_file(path) as wav:
                async for message in session.receive():
                    if message.data:
                        wav.writeframes(message.data)
                        received.extend(message.data)

    with pytest.raises(errors.APIError) as caught:
        asyncio.run(run())
    assert caught.value.code == 1006  # abnormal closure: no close frame
    assert len(received) == recorded_frames(DROPPED, 0) * 2 > 0
    assert_wav_holds(path, bytes(received))


def live_error(client: genai.Client, model: str = MODEL, **config_kwargs) -> errors.APIError:
    async def run() -> None:
        async with client.aio.live.connect(model=model, config=config(**config_kwargs)):
            pass

    with pytest.raises(errors.APIError) as caught:
        asyncio.run(run())
    return caught.value


def test_invalid_key_closes_with_1007(emulator: Emulator) -> None:
    bad = genai.Client(api_key="invalid", http_options=emulator.http_options())
    err = live_error(bad)
    assert err.code == 1007
    assert "API key not valid" in str(err)


def test_unknown_model_closes_with_1008(client: genai.Client, emulator: Emulator) -> None:
    err = live_error(client, model="gemini-no-such-live-model")
    assert err.code == 1008
    assert "models/gemini-no-such-live-model is not found" in str(err)
    assert "bidiGenerateContent" in str(err)
    received = emulator.requests[-1]
    assert (received.model, received.cassette) == ("gemini-no-such-live-model", None)


def test_text_modality_is_refused_with_1007(client: genai.Client) -> None:
    async def run() -> None:
        text_config = types.LiveConnectConfig(response_modalities=["TEXT"])
        async with client.aio.live.connect(model=MODEL, config=text_config):
            pass

    with pytest.raises(errors.APIError) as caught:
        asyncio.run(run())
    assert caught.value.code == 1007
    assert "response modalities (TEXT) is not supported" in str(caught.value)
    assert "AUDIO" in str(caught.value)


def test_unmatched_turn_closes_with_1008_and_says_what_to_do(client: genai.Client) -> None:
    async def run() -> None:
        async with client.aio.live.connect(model=MODEL, config=config()) as session:
            await session.send_realtime_input(text="Sing me a song about the sea.")
            async for _ in session.receive():
                pass

    with pytest.raises(errors.APIError) as caught:
        asyncio.run(run())
    reason = str(caught.value.details)
    assert caught.value.code == 1008
    assert "'Sing me a song about the sea.'" in reason
    assert "assets/cassettes/live" in reason and "GEMINI_API_KEY" in reason
    assert len(reason.encode()) <= MAX_REASON_BYTES


def test_other_system_instruction_is_not_replayed(client: genai.Client) -> None:
    async def run() -> None:
        other = types.LiveConnectConfig(
            response_modalities=["AUDIO"], system_instruction="Talk like a pirate."
        )
        async with client.aio.live.connect(model=MODEL, config=other) as session:
            await session.send_realtime_input(text=NARRATION.turns[0].input)
            async for _ in session.receive():
                pass

    with pytest.raises(errors.APIError) as caught:
        asyncio.run(run())
    assert caught.value.code == 1008
    assert "system instruction" in str(caught.value.details)


def test_closing_mid_reply_does_not_wait_for_the_reply(tmp_path: Path) -> None:
    """Realtime pacing: the emulator hears the close frame while it is still replaying."""
    with Emulator(pacing="realtime") as emu:
        client = genai.Client(api_key=KEY, http_options=emu.http_options())
        remaining = sum(m.delay_ms for m in NARRATION.turns[2].messages[1:]) / 1000
        assert remaining > 3.0

        async def run() -> tuple[int, float]:
            async with client.aio.live.connect(model=MODEL, config=config()) as session:
                await session.send_realtime_input(text=NARRATION.turns[2].input)
                with wave_file(tmp_path / "cut.wav") as wav:
                    async for message in session.receive():
                        if message.data:
                            wav.writeframes(message.data)
                            break
                started = time.perf_counter()
            return wav.getnframes(), time.perf_counter() - started

        frames, closing = asyncio.run(run())
        assert frames == 1920  # one 80 ms chunk
        assert closing < remaining / 2
        assert emu.requests[-1].cassette == "live_narration"


# -- the raw wire: camelCase keys, the key in the query string, no key ---------------------------
def live_uri(emulator: Emulator, query: str = "") -> str:
    return (
        f"wss://127.0.0.1:{emulator.port}/ws/google.ai.generativelanguage.v1beta."
        f"GenerativeService.BidiGenerateContent{query}"
    )


SETUP = {
    "setup": {
        "model": f"models/{MODEL}",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "systemInstruction": {"parts": [{"text": NARRATOR}]},
        "outputAudioTranscription": {},
    }
}


async def raw_session(emulator: Emulator, messages: list[dict], *, query: str = "", headers=None):
    """Send ``messages`` after the setup; return the server messages and the close code."""
    ssl = emulator.certificate.client_context()  # type: ignore[union-attr]
    received: list[dict] = []
    async with websockets.connect(
        live_uri(emulator, query), ssl=ssl, additional_headers=headers or {}
    ) as ws:
        await ws.send(json.dumps(SETUP))
        try:
            received.append(json.loads(await ws.recv()))
            for message in messages:
                await ws.send(json.dumps(message))
                while True:
                    reply = json.loads(await ws.recv())
                    received.append(reply)
                    if reply.get("serverContent", {}).get("turnComplete"):
                        break
        except websockets.ConnectionClosed:
            pass
        await ws.close()
        return received, ws.close_code, ws.close_reason


def test_camel_case_keys_and_key_in_query(emulator: Emulator) -> None:
    turn = NARRATION.turns[4]
    messages = [
        {"realtimeInput": {"audioStreamEnd": True}},  # nothing to answer
        {"realtimeInput": {"text": turn.input}},
        {"realtimeInput": {"text": NARRATION.turns[0].input}},
    ]

    async def run():
        ssl = emulator.certificate.client_context()  # type: ignore[union-attr]
        out: list[dict] = []
        async with websockets.connect(live_uri(emulator, f"?key={KEY}"), ssl=ssl) as ws:
            await ws.send(json.dumps(SETUP))
            out.append(json.loads(await ws.recv()))
            await ws.send(json.dumps(messages[0]))
            await ws.send(json.dumps(messages[1]))
            await ws.send(json.dumps(messages[2]))
            completes = 0
            while completes < 2:
                out.append(json.loads(await ws.recv()))
                completes += bool(out[-1].get("serverContent", {}).get("turnComplete"))
        return out

    before = len(emulator.requests)
    out = asyncio.run(run())
    assert out[0] == {"setupComplete": {}}
    audio = [
        base64.b64decode(p["inlineData"]["data"])
        for m in out
        for p in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    ]
    first_turn_end = next(
        i for i, m in enumerate(out) if m.get("serverContent", {}).get("turnComplete")
    )
    first_audio = b"".join(
        base64.b64decode(p["inlineData"]["data"])
        for m in out[:first_turn_end]
        for p in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    )
    assert first_audio == recorded_pcm(NARRATION, 4)
    assert b"".join(audio) == recorded_pcm(NARRATION, 4) + recorded_pcm(NARRATION, 0)
    transcripts = "".join(
        m["serverContent"]["outputTranscription"]["text"]
        for m in out[:first_turn_end]
        if "outputTranscription" in m.get("serverContent", {})
    )
    assert transcripts == turn.input
    assert emulator.requests[before].body[1:] == messages
    assert KEY not in repr(emulator.requests)


def test_missing_key_closes_with_1008(emulator: Emulator) -> None:
    received, code, reason = asyncio.run(raw_session(emulator, []))
    assert received == []
    assert code == 1008
    assert "API Key" in reason


def test_unrecorded_audio_and_video_input_are_refused_with_a_reason(emulator: Emulator) -> None:
    audio = {"audio": {"mimeType": "audio/pcm;rate=16000", "data": "AAAA"}}

    async def speak() -> tuple[int | None, str | None]:
        ssl = emulator.certificate.client_context()  # type: ignore[union-attr]
        headers = {"x-goog-api-key": KEY}
        async with websockets.connect(
            live_uri(emulator, ""), ssl=ssl, additional_headers=headers
        ) as ws:
            await ws.send(json.dumps(SETUP))
            assert json.loads(await ws.recv()) == {"setupComplete": {}}
            await ws.send(json.dumps({"realtimeInput": audio}))  # no answer until the turn ends
            await ws.send(json.dumps({"realtimeInput": {"audioStreamEnd": True}}))
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    code, reason = asyncio.run(speak())
    assert code == 1008
    assert "No cassette recorded this audio (0.0 s)" in reason and "quickstart record" in reason
    video = {"video": {"mimeType": "image/jpeg", "data": "AAAA"}}
    received, code, reason = asyncio.run(
        raw_session(emulator, [{"realtimeInput": video}], headers={"x-goog-api-key": KEY})
    )
    assert code == 1008 and "no video or mediaChunks" in reason and "GEMINI_API_KEY" in reason


def test_unknown_message_is_refused_with_1007(emulator: Emulator) -> None:
    received, code, reason = asyncio.run(
        raw_session(emulator, [{"clientContnet": {}}], headers={"x-goog-api-key": KEY})
    )
    assert code == 1007
    assert 'Unknown name "clientContnet"' in reason


# -- pacing and the cassettes themselves ------------------------------------------------------
def test_realtime_pacing_waits_the_recorded_delays(tmp_path: Path) -> None:
    folder = tmp_path / "cassettes"
    (folder / "audio").mkdir(parents=True)
    pcm = recorded_pcm(NARRATION, 0)[: 1920 * 2 * 3]
    with wave_file(folder / "audio" / "a.wav") as wf:
        wf.writeframes(pcm)
    messages = [
        {"delay_ms": 400, "audio": {"file": "audio/a.wav", "start": i * 1920, "frames": 1920}}
        for i in range(3)
    ] + [{"delay_ms": 0, "message": {"serverContent": {"turnComplete": True}}}]
    cassette = {
        "format": 1,
        "name": "paced",
        "kind": "live",
        "model": MODEL,
        "setup": {"generationConfig": {"responseModalities": ["AUDIO"]}},
        "turns": [{"input": "Pace me.", "messages": messages}],
    }
    (folder / "paced.json").write_text(json.dumps(cassette))

    def elapsed(pacing: str) -> float:
        with Emulator(store=CassetteStore([folder]), pacing=pacing) as emu:
            client = genai.Client(api_key=KEY, http_options=emu.http_options())

            async def run() -> float:
                cfg = types.LiveConnectConfig(response_modalities=["AUDIO"])
                async with client.aio.live.connect(model=MODEL, config=cfg) as session:
                    started = time.perf_counter()
                    await session.send_realtime_input(text="Pace me.")
                    turn = await receive_turn(session, tmp_path / f"{pacing}.wav")
                    assert bytes(turn.pcm) == pcm
                    return time.perf_counter() - started

            return asyncio.run(run())

    assert elapsed("realtime") >= 1.2  # three recorded delays of 400 ms
    assert elapsed("fast") < 1.2


def test_live_cassettes_hold_real_speech_within_their_files() -> None:
    live = [c for c in STORE.cassettes if c.kind == "live"]
    assert {c.name for c in live} >= {
        "live_narration",
        "live_interruption",
        "live_dropped_connection",
    }
    files = set()
    for cassette in live:
        assert cassette.setup["generationConfig"]["responseModalities"] == ["AUDIO"]
        for index, turn in enumerate(cassette.turns):
            for message in turn.messages:
                if message.audio:
                    path = cassette.path.parent / message.audio.file  # type: ignore[union-attr]
                    rate, data = load_audio(path)
                    assert rate == 24_000
                    assert (message.audio.start + message.audio.frames) * 2 <= len(data)
                    files.add(path)
            samples = np.frombuffer(recorded_pcm(cassette, index), dtype="<i2").astype(float)
            assert len(samples) > 24_000  # more than a second of audio per turn
            # Speech, not silence or a steady tone: loud enough, and its loudness varies
            # (syllables and pauses) over 50 ms windows.
            windows = samples[: len(samples) // 1200 * 1200].reshape(-1, 1200)
            loudness = np.sqrt((windows**2).mean(axis=1))
            assert loudness.max() > 1000
            assert loudness.std() / loudness.mean() > 0.3
    for path in files:
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (24_000, 1, "PCM_16")
    total = sum(p.stat().st_size for p in (shipped_cassette_dir() / "live").rglob("*"))
    assert total < 4_000_000


# -- Gemini 3.1 Flash Live rules (docs/emulator-rules.md), each both ways ----------------------
HISTORY = types.HistoryConfig(initial_history_in_client_content=True)
EARLIER = [  # the conversation so far: the first four passages, read aloud
    types.Content(role=role, parts=[types.Part(text=t.input)])
    for t in NARRATION.turns[:4]
    for role in ("user", "model")
]


def closed_with(run) -> errors.APIError:
    with pytest.raises(errors.APIError) as caught:
        asyncio.run(run())
    return caught.value


def test_client_content_seeds_the_initial_history_with_history_config(
    client: genai.Client, emulator: Emulator, tmp_path: Path
) -> None:
    async def run() -> Turn:
        async with client.aio.live.connect(
            model=MODEL, config=config(history_config=HISTORY)
        ) as session:
            await session.send_client_content(turns=EARLIER, turn_complete=True)
            await session.send_realtime_input(text=NARRATION.turns[4].input)
            return await receive_turn(session, tmp_path / "after_history.wav")

    before = len(emulator.requests)
    turn = asyncio.run(run())
    # No answer was replayed for the history: the first reply is the fifth passage's.
    assert bytes(turn.pcm) == recorded_pcm(NARRATION, 4)
    body = emulator.requests[before].body
    # The SDK sends the inner key in snake_case: {"initial_history_in_client_content": true}.
    assert list(body[0]["setup"]["historyConfig"].values()) == [True]
    assert len(body[1]["client_content"]["turns"]) == 8


def test_client_content_without_history_config_closes_with_1007(client: genai.Client) -> None:
    async def run() -> None:
        async with client.aio.live.connect(model=MODEL, config=config()) as session:
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text=NARRATION.turns[0].input)])
            )
            async for _ in session.receive():
                pass

    err = closed_with(run)
    assert (err.code, err.details) == (1007, "Request contains an invalid argument.")


def test_client_content_after_the_conversation_started_closes_with_1007(
    client: genai.Client, tmp_path: Path
) -> None:
    replies: list[Turn] = []

    async def run() -> None:
        async with client.aio.live.connect(
            model=MODEL, config=config(history_config=HISTORY)
        ) as session:
            await session.send_realtime_input(text=NARRATION.turns[0].input)
            replies.append(await receive_turn(session, tmp_path / "first.wav"))
            await session.send_client_content(turns=EARLIER[:2], turn_complete=True)
            async for _ in session.receive():
                pass

    err = closed_with(run)
    assert (err.code, err.details) == (1007, "Request contains an invalid argument.")
    assert bytes(replies[0].pcm) == recorded_pcm(NARRATION, 0)  # the realtime turn was answered


@pytest.fixture
def older_model(tmp_path: Path) -> Iterator[tuple[genai.Client, str]]:
    """An emulator whose narration cassette is recorded for a model without the 3.1 rules."""
    model = "gemini-2.5-flash-native-audio-preview-09-2025"
    folder = tmp_path / "older"
    folder.mkdir()
    recorded = json.loads(NARRATION.path.read_text())  # type: ignore[union-attr]
    recorded["model"] = model
    (folder / "live_narration.json").write_text(json.dumps(recorded))
    (folder / "audio").symlink_to(NARRATION.path.parent / "audio")  # type: ignore[union-attr]
    with Emulator(store=CassetteStore([folder]), pacing="fast") as emu:
        yield genai.Client(api_key=KEY, http_options=emu.http_options()), model


def test_other_models_still_answer_client_content_turns(
    older_model: tuple[genai.Client, str], tmp_path: Path
) -> None:
    client, model = older_model

    async def run() -> Turn:
        async with client.aio.live.connect(model=model, config=config()) as session:
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text=NARRATION.turns[1].input)])
            )
            return await receive_turn(session, tmp_path / "older.wav")

    assert bytes(asyncio.run(run()).pcm) == recorded_pcm(NARRATION, 1)


MEDIA_CHUNK = {"mimeType": "audio/pcm;rate=16000", "data": base64.b64encode(bytes(640)).decode()}


def test_media_chunks_close_with_1007_and_audio_is_not_refused_as_such(emulator: Emulator) -> None:
    _, code, reason = asyncio.run(
        raw_session(
            emulator, [{"realtimeInput": {"mediaChunks": [MEDIA_CHUNK]}}], query=f"?key={KEY}"
        )
    )
    assert code == 1007
    assert reason == "realtime_input.media_chunks is deprecated. Use audio, video, or text instead."
    # The same audio in ``audio``: accepted as input (offline, no recording holds it).
    spoken = {"realtimeInput": {"audio": MEDIA_CHUNK, "audioStreamEnd": True}}
    _, code, reason = asyncio.run(raw_session(emulator, [spoken], query=f"?key={KEY}"))
    assert code == 1008 and "No cassette recorded this audio" in reason


@pytest.mark.filterwarnings("ignore:The `session.send` method is deprecated")
def test_media_chunks_are_not_refused_on_other_models(
    older_model: tuple[genai.Client, str],
) -> None:
    client, model = older_model

    async def run() -> None:
        async with client.aio.live.connect(model=model, config=config()) as session:
            await session.send(input=types.Blob(data=bytes(640), mime_type="audio/pcm;rate=16000"))
            async for _ in session.receive():
                pass

    err = closed_with(run)
    assert err.code == 1008 and "no video or mediaChunks" in str(err.details)


def test_a_null_resumption_handle_is_refused_and_no_handle_starts_a_session(
    client: genai.Client, emulator: Emulator, tmp_path: Path
) -> None:
    async def raw_setup(resumption: dict) -> tuple[int | None, str]:
        ssl = emulator.certificate.client_context()  # type: ignore[union-attr]
        async with websockets.connect(live_uri(emulator, f"?key={KEY}"), ssl=ssl) as ws:
            await ws.send(
                json.dumps({"setup": {**SETUP["setup"], "sessionResumption": resumption}})
            )
            try:
                await ws.recv()
                await ws.recv()
            except websockets.ConnectionClosed:
                pass
        return ws.close_code, ws.close_reason

    code, reason = asyncio.run(raw_setup({"handle": None}))
    assert code == 1008 and "omit the handle" in reason

    # What the SDK sends for SessionResumptionConfig() (and handle=None): {} - a new session.
    async def run() -> str | None:
        resumption = types.SessionResumptionConfig(handle=None)
        async with client.aio.live.connect(
            model=MODEL, config=config(session_resumption=resumption)
        ) as session:
            await session.send_realtime_input(text=NARRATION.turns[0].input)
            await receive_turn(session, tmp_path / "resumable.wav")
            async for message in session.receive():
                if message.session_resumption_update:
                    return message.session_resumption_update.new_handle
        return None

    before = len(emulator.requests)
    assert asyncio.run(run())
    assert emulator.requests[before].body[0]["setup"]["sessionResumption"] == {}


def test_recordings_carry_several_parts_per_event_and_usage_only_messages(
    client: genai.Client,
) -> None:
    async def run() -> list[types.LiveServerMessage]:
        async with client.aio.live.connect(
            model=MODEL, config=config(transcription=True)
        ) as session:
            await session.send_realtime_input(text=NARRATION.turns[1].input)
            return [message async for message in session.receive()]

    messages = asyncio.run(run())
    both = [
        m
        for m in messages
        if m.server_content
        and m.server_content.model_turn
        and m.server_content.output_transcription
    ]
    assert both and all(m.data for m in both)  # audio and its transcript in one event
    usage_only = [m for m in messages if m.server_content is None and m.usage_metadata]
    assert usage_only  # a client that reads message.server_content.model_turn must check
    flags = [
        ("generation" if m.server_content.generation_complete else "turn")
        for m in messages
        if m.server_content
        and (m.server_content.generation_complete or m.server_content.turn_complete)
    ]
    assert flags == ["generation", "turn"]
    final = messages[-1].usage_metadata
    assert final is not None and final.thoughts_token_count and final.thoughts_token_count > 0
    assert final.total_token_count == (
        final.prompt_token_count + final.response_token_count + final.thoughts_token_count
    )

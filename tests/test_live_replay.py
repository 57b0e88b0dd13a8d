"""Live API replays send the cassette's rendered messages, the same bytes every time, and
the WebSocket compression setting.

The wire tests connect with ``websockets`` (the SDK's WebSocket library, which offers
``permessage-deflate``) to a real emulator over TLS.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import wave
from collections.abc import Iterator

import pytest
import websockets

from quickstart_helpers.emulator import (
    CassetteStore,
    Emulator,
    LiveCassette,
    shipped_cassette_dir,
)
from quickstart_helpers.emulator._live_wire import audio_slice, encode_message, render_message
from quickstart_helpers.wav import wave_file

#: Shipped Live cassettes; those with fault directives (goAway, close) end sessions on purpose,
#: so their replays are compared turn by turn in tests/test_faults.py instead.
LIVE = [c for c in CassetteStore().cassettes if isinstance(c, LiveCassette) and not c.faults]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(pacing="fast").start()
    yield emu
    emu.stop()


def rendered(cassette: LiveCassette, turn_index: int, transcription: bool) -> list[bytes]:
    """The frames a turn sends, rendered from scratch, up to a ``break``."""
    frames = []
    for message in cassette.turns[turn_index].messages:
        if message.break_:
            break
        payload = render_message(
            cassette, message, output_transcription=transcription, input_transcription=transcription
        )
        if payload is not None:
            frames.append(encode_message(payload))
    return frames


def uri(emulator: Emulator) -> str:
    return (
        f"wss://127.0.0.1:{emulator.port}/ws/google.ai.generativelanguage.v1beta."
        "GenerativeService.BidiGenerateContent?key=test-key"
    )


async def replay(
    emulator: Emulator, cassette: LiveCassette, transcription: bool
) -> list[list[bytes]]:
    """Send every turn of ``cassette`` in one session; return each turn's frames."""
    setup = {k: v for k, v in cassette.setup.items() if "Transcription" not in k and k != "model"}
    if transcription:
        setup["outputAudioTranscription"] = setup["inputAudioTranscription"] = {}
    ctx = emulator.certificate.client_context()  # type: ignore[union-attr]
    turns: list[list[bytes]] = []
    async with websockets.connect(uri(emulator), ssl=ctx, max_size=None) as ws:
        await ws.send(json.dumps({"setup": {"model": f"models/{cassette.model}", **setup}}))
        assert json.loads(await ws.recv(decode=False)) == {"setupComplete": {}}
        for turn in cassette.turns:
            if turn.audio is not None:  # a spoken turn: its audio in 0.1 s chunks, then the end
                rate, pcm = audio_slice(cassette, turn.audio)
                for start in range(0, len(pcm), 3200):
                    data = base64.b64encode(pcm[start : start + 3200]).decode()
                    audio = {"data": data, "mimeType": f"audio/pcm;rate={rate}"}
                    await ws.send(json.dumps({"realtimeInput": {"audio": audio}}))
            else:
                await ws.send(json.dumps({"realtimeInput": {"text": turn.input}}))
            frames: list[bytes] = []
            turns.append(frames)
            try:
                while True:
                    frame = await ws.recv(decode=False)
                    frames.append(frame)
                    if json.loads(frame).get("serverContent", {}).get("turnComplete"):
                        break
            except websockets.ConnectionClosed:
                return turns  # a cassette ``break``
    return turns


@pytest.mark.parametrize("transcription", [False, True], ids=["audio", "transcription"])
@pytest.mark.parametrize("cassette", LIVE, ids=[c.name for c in LIVE])
def test_every_replay_sends_the_rendered_messages(
    emulator: Emulator, cassette: LiveCassette, transcription: bool
) -> None:
    expected = [rendered(cassette, i, transcription) for i in range(len(cassette.turns))]
    first = asyncio.run(replay(emulator, cassette, transcription))
    second = asyncio.run(replay(emulator, cassette, transcription))
    assert first == second == expected[: len(first)]
    assert len(first) == len(cassette.turns)
    assert sum(map(len, first)) > 10


def test_every_shipped_live_cassette_is_covered() -> None:
    names = {c.name for c in LIVE}
    shipped = {
        json.loads(p.read_text("utf-8"))["name"]
        for p in (shipped_cassette_dir() / "live").glob("*.json")
    }
    assert shipped and shipped <= names


# -- per-message compression -----------------------------------------------------------------
async def negotiated_extensions(emulator: Emulator) -> str | None:
    ctx = emulator.certificate.client_context()  # type: ignore[union-attr]
    cassette = LIVE[0]
    setup = {k: v for k, v in cassette.setup.items() if k != "model"}
    async with websockets.connect(uri(emulator), ssl=ctx) as ws:  # offers permessage-deflate
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        await ws.send(json.dumps({"setup": {"model": f"models/{cassette.model}", **setup}}))
        assert json.loads(await ws.recv(decode=False)) == {"setupComplete": {}}
        return ws.response.headers.get("Sec-WebSocket-Extensions")


def test_no_compression_is_negotiated_by_default(emulator: Emulator) -> None:
    assert emulator.live_compression is False
    assert asyncio.run(negotiated_extensions(emulator)) is None


def test_live_compression_option_accepts_permessage_deflate() -> None:
    with Emulator(pacing="fast", live_compression=True) as emu:
        extensions = asyncio.run(negotiated_extensions(emu))
    assert extensions is not None and extensions.startswith("permessage-deflate")


# -- client messages ------------------------------------------------------------------------
async def exchange(emulator: Emulator, messages: list[dict]) -> tuple[list[list[bytes]], int]:
    """Send the setup of ``live_narration``, then each message, reading each text turn's
    frames. Return the turns' frames and the close code (1000 when the client closed)."""
    cassette = next(c for c in LIVE if c.name == "live_narration")
    setup = {k: v for k, v in cassette.setup.items() if k != "model"}
    ctx = emulator.certificate.client_context()  # type: ignore[union-attr]
    turns: list[list[bytes]] = []
    async with websockets.connect(uri(emulator), ssl=ctx, max_size=None) as ws:
        await ws.send(json.dumps({"setup": {"model": f"models/{cassette.model}", **setup}}))
        assert json.loads(await ws.recv(decode=False)) == {"setupComplete": {}}
        try:
            for message in messages:
                await ws.send(json.dumps(message))
                turns.append([])
                while True:
                    turns[-1].append(frame := await ws.recv(decode=False))
                    if json.loads(frame).get("serverContent", {}).get("turnComplete"):
                        break
        except websockets.ConnectionClosed as closed:
            return turns, closed.rcvd.code if closed.rcvd else 1006
    return turns, 1000


def test_a_turn_sent_again_is_answered_as_the_first_time(emulator: Emulator) -> None:
    cassette = next(c for c in LIVE if c.name == "live_narration")
    whole = {"realtimeInput": {"text": cassette.turns[0].input}}
    turns, code = asyncio.run(exchange(emulator, [whole, whole]))
    assert turns == [rendered(cassette, 0, False)] * 2 and code == 1000


def test_a_refused_message_is_refused_every_time(emulator: Emulator) -> None:
    bad = {"realtimeInput": {"text": "Hello", "textt": True}}
    for _ in range(2):
        assert asyncio.run(exchange(emulator, [bad])) == ([[]], 1007)  # closed, no frame


def test_a_reloaded_cassette_is_rendered_from_its_files_again(tmp_path) -> None:
    """Rendered turns are kept per cassette object: a store loaded again reads the WAV again."""
    narration = next(c for c in LIVE if c.name == "live_narration")
    shutil.copy(narration.path, tmp_path / "live_narration.json")  # type: ignore[arg-type]
    shutil.copytree(narration.path.parent / "audio", tmp_path / "audio")  # type: ignore[union-attr]

    def first_turn() -> list[bytes]:
        with Emulator(store=CassetteStore([tmp_path]), pacing="fast") as emu:
            cassette = next(c for c in emu.store.cassettes if c.name == "live_narration")
            assert isinstance(cassette, LiveCassette)
            replayed = asyncio.run(replay(emu, cassette, False))[0]
            assert replayed == rendered(cassette, 0, False)
            return replayed

    before = first_turn()
    wav = tmp_path / narration.turns[0].messages[0].audio.file  # type: ignore[union-attr]
    with wave.open(str(wav), "rb") as read:
        frames = read.getnframes()
    with wave_file(wav) as wf:
        wf.writeframes(bytes(frames * 2))  # the same length, silent
    after = first_turn()
    assert len(after) == len(before) and after != before

"""The Live API replay's render cache and its WebSocket compression setting.

The wire tests connect with ``websockets`` (the SDK's WebSocket library, which offers
``permessage-deflate``) to a real emulator over TLS.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from quickstart_helpers.emulator import (
    CassetteStore,
    Emulator,
    LiveCassette,
    _live_cache,
    load_cassette,
    shipped_cassette_dir,
)
from quickstart_helpers.emulator._live import encode_message, render_message, render_wire
from quickstart_helpers.emulator._live_cache import LiveRenderCache

#: Shipped Live cassettes; those with fault directives (goAway, close) end sessions on purpose,
#: so their replays are compared turn by turn in tests/test_faults.py instead.
LIVE = [c for c in CassetteStore().cassettes if isinstance(c, LiveCassette) and not c.faults]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(pacing="fast").start()
    yield emu
    emu.stop()


def uncached(cassette: LiveCassette, turn_index: int, transcription: bool) -> list[bytes]:
    """The frames a turn sends, rendered from scratch, up to a ``break``."""
    frames = []
    for message in cassette.turns[turn_index].messages:
        if message.break_:
            break
        payload = render_message(cassette, message, output_transcription=transcription)
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
    setup = {k: v for k, v in cassette.setup.items() if k != "model"}
    if transcription:
        setup["outputAudioTranscription"] = {}
    ctx = emulator.certificate.client_context()  # type: ignore[union-attr]
    turns: list[list[bytes]] = []
    async with websockets.connect(uri(emulator), ssl=ctx, max_size=None) as ws:
        await ws.send(json.dumps({"setup": {"model": f"models/{cassette.model}", **setup}}))
        assert json.loads(await ws.recv(decode=False)) == {"setupComplete": {}}
        for turn in cassette.turns:
            user = {"role": "user", "parts": [{"text": turn.input}]}
            await ws.send(json.dumps({"clientContent": {"turns": [user], "turnComplete": True}}))
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
def test_cached_replay_is_byte_identical_to_uncached_rendering(
    emulator: Emulator, cassette: LiveCassette, transcription: bool
) -> None:
    _live_cache.clear()
    expected = [uncached(cassette, i, transcription) for i in range(len(cassette.turns))]
    first = asyncio.run(replay(emulator, cassette, transcription))  # renders
    second = asyncio.run(replay(emulator, cassette, transcription))  # from the cache
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


def test_transcription_settings_are_cached_apart() -> None:
    cache = LiveRenderCache()
    cassette = next(c for c in LIVE if c.name == "live_narration")
    turn = cassette.turns[0]
    with_text = cache.turn(cassette, turn, output_transcription=True, render=_render(True))
    without = cache.turn(cassette, turn, output_transcription=False, render=_render(False))
    both = [(with_text[i], without[i]) for i in range(len(turn.messages))]
    assert any(b"outputTranscription" in (a or b"") for a, _ in both)
    assert not any(b"outputTranscription" in (b or b"") for _, b in both)
    assert len(cache) == 2


def _render(transcription: bool, cassette: LiveCassette | None = None):
    def render(message):
        return render_wire(render.cassette, message, output_transcription=transcription)

    render.cassette = cassette or next(c for c in LIVE if c.name == "live_narration")
    return render


def _counting(cassette: LiveCassette) -> tuple[list[int], object]:
    calls = [0]

    def render(message):
        calls[0] += 1
        return render_wire(cassette, message, output_transcription=False)

    return calls, render


def test_messages_are_rendered_once_then_reused() -> None:
    cache = LiveRenderCache()
    cassette = next(c for c in LIVE if c.name == "live_narration")
    turn = cassette.turns[1]
    calls, render = _counting(cassette)
    for _ in range(3):
        entry = cache.turn(cassette, turn, output_transcription=False, render=render)
        frames = [entry[i] for i in range(len(entry))]
    assert calls[0] == len(turn.messages)
    assert cache.nbytes == sum(len(f) for f in frames if f)


def copy_cassette(tmp_path: Path, name: str = "live_narration") -> Path:
    source = shipped_cassette_dir() / "live"
    shutil.copytree(source / "audio", tmp_path / "audio")
    shutil.copy(source / f"{name}.json", tmp_path / f"{name}.json")
    return tmp_path / f"{name}.json"


def test_a_reloaded_cassette_or_a_replaced_message_is_rendered_again(tmp_path: Path) -> None:
    path = copy_cassette(tmp_path)
    cache = LiveRenderCache()
    first = load_cassette(path)
    calls, render = _counting(first)
    cache.turn(first, first.turns[0], output_transcription=False, render=render)[0]
    again = cache.turn(first, first.turns[0], output_transcription=False, render=render)
    assert again[0] is not None and calls[0] == 1

    second = load_cassette(path)  # another object, same content
    calls2, render2 = _counting(second)
    entry = cache.turn(second, second.turns[0], output_transcription=False, render=render2)
    assert entry[0] == again[0] and calls2[0] == 1

    messages = second.turns[0].messages
    messages[0] = messages[0].model_copy(
        update={"message": {"goAway": {"timeLeft": "1s"}}, "audio": None}
    )
    entry = cache.turn(second, second.turns[0], output_transcription=False, render=render2)
    assert entry[0] == b'{"goAway":{"timeLeft":"1s"}}'


def test_a_changed_wav_file_is_rendered_again(tmp_path: Path) -> None:
    path = copy_cassette(tmp_path)
    cassette = load_cassette(path)
    assert isinstance(cassette, LiveCassette)
    turn = cassette.turns[0]
    index = next(i for i, m in enumerate(turn.messages) if m.audio is not None)
    cache = LiveRenderCache()
    render = _render(False, cassette)
    before = cache.turn(cassette, turn, output_transcription=False, render=render)[index]
    wav_path = tmp_path / turn.messages[index].audio.file  # type: ignore[union-attr]
    with wave.open(str(wav_path), "rb") as wav:
        params, frames = wav.getparams(), wav.readframes(wav.getnframes())
    with wave.open(str(wav_path), "wb") as wav:
        wav.setparams(params)
        wav.writeframes(bytes(len(frames)) + b"\0\0")  # silence, one frame longer
    after = cache.turn(cassette, turn, output_transcription=False, render=render)[index]
    assert after != before
    assert after == render_wire(cassette, turn.messages[index], output_transcription=False)


def test_memory_is_bounded_and_an_oversized_turn_is_not_stored() -> None:
    cassette = next(c for c in LIVE if c.name == "live_narration")
    sizes = []
    for turn in cassette.turns:
        frames = [render_wire(cassette, m, output_transcription=False) for m in turn.messages]
        sizes.append(sum(len(f) for f in frames if f))
    budget = max(sizes[0], sizes[1]) + 1
    cache = LiveRenderCache(max_bytes=budget)
    for turn in cassette.turns[:3]:
        entry = cache.turn(cassette, turn, output_transcription=False, render=_render(False))
        for i in range(len(entry)):
            assert entry[i] == render_wire(cassette, turn.messages[i], output_transcription=False)
        assert cache.nbytes <= budget
    assert len(cache) < 3  # the least recently used turns were evicted

    tiny = LiveRenderCache(max_bytes=10)
    turn = cassette.turns[0]
    entry = tiny.turn(cassette, turn, output_transcription=False, render=_render(False))
    frames = [entry[i] for i in range(len(entry))]
    assert frames == [render_wire(cassette, m, output_transcription=False) for m in turn.messages]
    assert tiny.nbytes == 0 and len(tiny) == 0


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LiveRenderCache(max_bytes=0)


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


# -- client messages parsed once --------------------------------------------------------------
async def exchange(emulator: Emulator, messages: list[dict]) -> tuple[list[list[bytes]], int]:
    """Send the setup of ``live_narration``, then each message; after each message with
    ``turnComplete``, read that turn's frames. Return the turns' frames and the close code
    (1000 when the client closed)."""
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
                if not message.get("clientContent", {}).get("turnComplete"):
                    continue
                turns.append([])
                while True:
                    turns[-1].append(frame := await ws.recv(decode=False))
                    if json.loads(frame).get("serverContent", {}).get("turnComplete"):
                        break
        except websockets.ConnectionClosed as closed:
            return turns, closed.rcvd.code if closed.rcvd else 1006
    return turns, 1000


def _content(text: str | None, complete: bool) -> dict:
    turns = [] if text is None else [{"role": "user", "parts": [{"text": text}]}]
    return {"clientContent": {"turns": turns, "turnComplete": complete}}


def test_messages_sent_again_are_answered_as_the_first_time(emulator: Emulator) -> None:
    from quickstart_helpers.emulator._live import PARSED_MESSAGES

    PARSED_MESSAGES.clear()
    cassette = next(c for c in LIVE if c.name == "live_narration")
    first_text, second_text = cassette.turns[0].input, cassette.turns[1].input
    whole = _content(first_text, True)
    # The same turn whole, split over two messages, and whole again (from the parse kept).
    messages = [whole, _content(first_text, False), _content(None, True), whole]
    messages += [_content(None, True), _content(second_text, True)]  # an empty turn: refused
    once = asyncio.run(exchange(emulator, messages))
    again = asyncio.run(exchange(emulator, messages))
    assert once == again
    turns, code = once
    expected = uncached(cassette, 0, False)
    assert turns[:3] == [expected] * 3 and code == 1008  # no cassette records an empty turn
    assert len(PARSED_MESSAGES) == 4  # the setup and three distinct client messages


def test_a_refused_message_is_refused_every_time_and_not_kept(emulator: Emulator) -> None:
    from quickstart_helpers.emulator._live import PARSED_MESSAGES

    PARSED_MESSAGES.clear()
    bad = {"clientContent": {"turns": [], "turnComplete": True, "turnCompleet": True}}
    for _ in range(2):
        assert asyncio.run(exchange(emulator, [bad])) == ([[]], 1007)  # closed, no frame
    assert len(PARSED_MESSAGES) == 1  # only the setup


def test_parsed_messages_are_bounded() -> None:
    from quickstart_helpers.emulator._live import ParsedMessages

    parsed = ParsedMessages(max_entries=2, max_chars=10)
    for raw in ("a", "b", "c"):
        assert parsed.add(raw, object()) is not None  # type: ignore[arg-type]
    assert len(parsed) == 2 and parsed.get("a") is None and parsed.get("c") is not None
    assert parsed.add("x" * 11, object()) is None and len(parsed) == 2  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        ParsedMessages(max_entries=0)

"""Conformance of the emulator's Live API: the Python SDK (base URL with and without a
trailing ``/``, so ``//ws/...``), a raw ``websockets`` client (frame type), session
resumption on a second connection, and an ephemeral token from ``auth_tokens.create``
on the constrained endpoint. The JavaScript SDK runs the same cassette in
test_js_sdk.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import warnings

import pytest
import websockets
from google.genai import errors, types

from quickstart_helpers.emulator import Emulator

from . import conformance
from .conformance import KEY, NARRATION, system_text, turn_pcm
from .conformance import sdk_client as client

emulator = conformance.emulator  # the module-scoped emulator of the shipped cassettes


def config(**kwargs) -> types.LiveConnectConfig:
    return types.LiveConnectConfig(
        response_modalities=["AUDIO"], system_instruction=system_text(NARRATION), **kwargs
    )


async def one_turn(session, text: str) -> tuple[bytes, list[types.LiveServerMessage]]:
    await session.send_realtime_input(text=text)
    pcm, messages = b"", []
    async for message in session.receive():
        messages.append(message)
        pcm += message.data or b""
    return pcm, messages


async def resumption_update(session) -> types.LiveServerSessionResumptionUpdate:
    """The message the emulator sends after turnComplete when resumption was asked for."""
    async for message in session.receive():
        if message.session_resumption_update:
            return message.session_resumption_update
    raise AssertionError("no sessionResumptionUpdate")


@pytest.mark.parametrize("slash", [False, True], ids=["base", "base-slash"])
def test_sdk_live_turn_pcm_equals_the_cassette(emulator, slash):
    async def run():
        live = client(emulator, slash=slash).aio.live
        async with live.connect(model=NARRATION.model, config=config()) as session:
            return await one_turn(session, NARRATION.turns[0].input)

    pcm, messages = asyncio.run(run())
    assert pcm == turn_pcm(NARRATION, 0)
    assert messages[-1].server_content.turn_complete
    assert not any(m.session_resumption_update for m in messages)


def test_resumption_handle_continues_the_cassette_on_a_second_connection(emulator):
    async def run():
        live = client(emulator, slash=True).aio.live
        resumable = config(session_resumption=types.SessionResumptionConfig())
        async with live.connect(model=NARRATION.model, config=resumable) as session:
            first, _ = await one_turn(session, NARRATION.turns[0].input)
            update = await resumption_update(session)
        resumed = config(session_resumption=types.SessionResumptionConfig(handle=update.new_handle))
        async with live.connect(model=NARRATION.model, config=resumed) as session:
            second, _ = await one_turn(session, NARRATION.turns[1].input)
            again = await resumption_update(session)
        return first, update, second, again

    first, update, second, again = asyncio.run(run())
    assert update.resumable is True and update.new_handle
    assert first == turn_pcm(NARRATION, 0)
    assert second == turn_pcm(NARRATION, 1)
    assert again.new_handle != update.new_handle
    received = [r for r in emulator.requests if r.method == "BidiGenerateContent"][-1]
    assert received.cassette == NARRATION.name


def test_unknown_resumption_handle_is_refused(emulator):
    async def run():
        live = client(emulator).aio.live
        bad = config(session_resumption=types.SessionResumptionConfig(handle="not-a-handle"))
        async with live.connect(model=NARRATION.model, config=bad) as session:
            await one_turn(session, NARRATION.turns[0].input)

    with pytest.raises(errors.APIError) as info:
        asyncio.run(run())
    assert info.value.code == 1008
    assert "resumption handle" in str(info.value)


def make_token(emu: Emulator, uses: int = 1) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK marks ephemeral tokens experimental
        token = client(emu, api_version="v1alpha").auth_tokens.create(
            config={
                "uses": uses,
                "expire_time": now + dt.timedelta(minutes=30),
                "new_session_expire_time": now + dt.timedelta(minutes=1),
            }
        )
    assert token.name.startswith("auth_tokens/")
    return token.name


def test_ephemeral_token_opens_the_constrained_endpoint_once(emulator):
    name = make_token(emulator)

    async def run():
        live = client(emulator, key=name, slash=True, api_version="v1alpha").aio.live
        async with live.connect(model=NARRATION.model, config=config()) as session:
            return await one_turn(session, NARRATION.turns[2].input)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pcm, _ = asyncio.run(run())
        assert pcm == turn_pcm(NARRATION, 2)
        assert emulator.requests[-1].method == "BidiGenerateContentConstrained"
        with pytest.raises(errors.APIError) as info:
            asyncio.run(run())  # uses=1: the second session is refused
    assert info.value.code == 1008
    assert "no uses left" in str(info.value)


def test_token_from_another_emulator_is_refused(emulator):
    with Emulator(pacing="fast") as other:
        name = make_token(other)

    async def run():
        live = client(emulator, key=name, api_version="v1alpha").aio.live
        async with live.connect(model=NARRATION.model, config=config()) as session:
            await one_turn(session, NARRATION.turns[0].input)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(errors.APIError) as info:
            asyncio.run(run())
    assert "not valid for this emulator" in str(info.value)


def test_server_messages_are_binary_frames_over_a_double_slash_path(emulator):
    ctx = ssl.create_default_context(cafile=str(emulator.certificate.cert_file))
    uri = (
        f"wss://127.0.0.1:{emulator.port}//ws/google.ai.generativelanguage.v1beta."
        f"GenerativeService.BidiGenerateContent?key={KEY}"
    )
    setup = {
        "setup": {
            "model": f"models/{NARRATION.model}",
            "generation_config": {"response_modalities": ["AUDIO"]},
            "systemInstruction": {"parts": [{"text": system_text(NARRATION)}]},
        }
    }

    async def run():
        frames = []
        async with websockets.connect(uri, ssl=ctx) as ws:
            await ws.send(json.dumps(setup))
            frames.append(await ws.recv())
            await ws.send(json.dumps({"realtimeInput": {"text": NARRATION.turns[0].input}}))
            while True:
                frame = await ws.recv()
                frames.append(frame)
                if json.loads(frame).get("serverContent", {}).get("turnComplete"):
                    return frames

    frames = asyncio.run(run())
    assert all(isinstance(f, bytes) for f in frames)  # websockets gives str for text frames
    assert json.loads(frames[0]) == {"setupComplete": {}}
    assert len(frames) > 3

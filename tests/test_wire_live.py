"""The emulator's Live API against public captures of the live API (tests/wire/live/).

A shipped Live recording is replayed over a real TLS WebSocket (a raw ``websockets`` client, so
the frames are seen as sent) and compared with the captures: ``setupComplete`` is an empty
object, every message is a binary frame, a turn ends with ``generationComplete`` then
``turnComplete`` with ``usageMetadata`` beside it, and usage has the real capture's keys in its
order (camelCase, the per-modality details as ``modality``/``tokenCount``). Sources and
licences: tests/wire/live/SOURCES.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from pathlib import Path
from typing import Any

import websockets

from . import conformance
from .conformance import KEY, NARRATION, system_text
from .test_wire_generate import _shape  # keys in order at every level, no values

emulator = conformance.emulator  # the module-scoped emulator of the shipped cassettes

WIRE = Path(__file__).parent / "wire" / "live"


def _camel(key: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)


def _camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def _one_turn(emu) -> list[bytes | str]:
    ctx = ssl.create_default_context(cafile=str(emu.certificate.cert_file))
    uri = (
        f"wss://127.0.0.1:{emu.port}/ws/google.ai.generativelanguage.v1beta."
        f"GenerativeService.BidiGenerateContent?key={KEY}"
    )
    setup = {
        "setup": {
            "model": f"models/{NARRATION.model}",
            "generationConfig": {"responseModalities": ["AUDIO"]},
            "systemInstruction": {"parts": [{"text": system_text(NARRATION)}]},
        }
    }

    async def run() -> list[bytes | str]:
        frames = []
        async with websockets.connect(uri, ssl=ctx, max_size=None) as ws:
            await ws.send(json.dumps(setup))
            frames.append(await ws.recv())
            await ws.send(json.dumps({"realtimeInput": {"text": NARRATION.turns[0].input}}))
            while True:
                frames.append(await ws.recv())
                if json.loads(frames[-1]).get("serverContent", {}).get("turnComplete"):
                    return frames

    return asyncio.run(run())


def test_setup_complete_and_binary_frames_as_the_live_api_sends_them(emulator) -> None:
    frames = _one_turn(emulator)
    assert all(isinstance(f, bytes) for f in frames)  # websockets gives str for text frames
    captured = json.loads((WIRE / "setup_complete.json").read_text())
    assert json.loads(frames[0]) == captured


def test_a_turn_ends_as_the_capture_ends_it(emulator) -> None:
    messages = [json.loads(f) for f in _one_turn(emulator)[1:]]
    captured = [
        _camel_keys(json.loads(line)) for line in (WIRE / "turn_end.jsonl").read_text().splitlines()
    ]
    ours = messages[-len(captured) :]
    for mine, theirs in zip(ours, captured, strict=True):
        assert list(mine) == list(theirs)  # serverContent, then usageMetadata beside it
        assert list(mine["serverContent"]) == list(theirs["serverContent"])
    assert set(ours[-1]["usageMetadata"]) >= set(captured[-1]["usageMetadata"])


def test_usage_has_the_real_keys_in_the_real_order(emulator) -> None:
    captured = json.loads((WIRE / "usage_3.8_live.json").read_text())
    messages = [json.loads(f) for f in _one_turn(emulator)[1:]]
    usages = [m["usageMetadata"] for m in messages if "usageMetadata" in m]
    assert len(usages) >= 2  # a usage-only message midway, and the turn's end
    assert any(set(m) == {"usageMetadata"} for m in messages)  # usage alone, no serverContent
    for usage in usages:
        assert _shape(usage) == _shape(captured)


def test_the_comparison_fails_on_usage_in_another_order() -> None:
    captured = json.loads((WIRE / "usage_3.8_live.json").read_text())
    moved = dict(captured)
    moved["thoughtsTokenCount"] = moved.pop("thoughtsTokenCount")
    reordered = {"thoughtsTokenCount": captured["thoughtsTokenCount"], **captured}
    assert _shape(moved) == _shape(captured)
    assert _shape(reordered) != _shape(captured)

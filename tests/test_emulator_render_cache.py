"""The emulator's SSE and JSON-array events are rendered once per cassette and reused.

Real emulators over real sockets: a replay from the cache sends exactly the bytes of the
first replay, emulators framing differently can share one store, and a chunk replaced
after a replay is sent as it is now.
"""

from __future__ import annotations

import json

import pytest
from google import genai

from quickstart_helpers.emulator import CassetteStore, Emulator, parse_cassette
from quickstart_helpers.emulator._http import framed_chunks, sse_event

from ._sockets import raw_generate_stream

MODEL = "gemini-3.8-flash"
TEXTS = ["First line\nsecond line", " café ✓", "", " the end."]


def _response(text: str, *, last: bool = False) -> dict:
    candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if last:
        candidate["finishReason"] = "STOP"
    return {"candidates": [candidate], "modelVersion": MODEL}


def _cassette(prompt: str = "Render once"):
    return parse_cassette(
        {
            "format": 1,
            "kind": "generate",
            "name": "render_once",
            "model": MODEL,
            "request": {"contents": [{"role": "user", "parts": [{"text": prompt}]}]},
            "chunks": [
                {"delay_ms": 0, "response": _response(t, last=i == len(TEXTS) - 1)}
                for i, t in enumerate(TEXTS)
            ],
        },
        "render_once",
    )


@pytest.fixture
def store():
    store = CassetteStore([])
    store.add(_cassette())
    return store


def _raw(emu: Emulator, *, sse: bool = True, prompt: str = "Render once") -> bytes:
    return raw_generate_stream(emu, MODEL, prompt, sse=sse)


def _sdk_texts(emu: Emulator, prompt: str = "Render once") -> list[str]:
    client = genai.Client(api_key="k", http_options=emu.http_options())
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=prompt))
    return [c.candidates[0].content.parts[0].text or "" for c in chunks]


def test_a_replay_from_the_cache_sends_the_bytes_of_the_first(store):
    with Emulator(store=store, pacing="fast") as emu:
        first, second = _raw(emu), _raw(emu)
        assert _sdk_texts(emu) == TEXTS
    expected = b"".join(sse_event(_response(t, last=i == 3)) for i, t in enumerate(TEXTS))
    assert first == second == expected


def test_emulators_framing_differently_share_one_store(store):
    with (
        Emulator(store=store, pacing="fast") as lf,
        Emulator(store=store, pacing="fast", sse_newline="\r\n", sse_split_json=True) as crlf,
    ):
        for _ in range(2):  # the second round comes from the cache
            plain, split, array = _raw(lf), _raw(crlf), _raw(lf, sse=False)
            assert plain.count(b"data: ") == len(TEXTS) and b"\r\n" not in plain
            assert split.count(b"data: ") > len(TEXTS) and split.endswith(b"\r\n\r\n")
            assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in json.loads(array)]
            assert array.startswith(b"[{") and array.endswith(b"\n]")
            assert _sdk_texts(lf) == _sdk_texts(crlf) == TEXTS


def test_a_chunk_replaced_after_a_replay_is_sent_as_it_is_now(store):
    cassette = store.cassettes[0]
    with Emulator(store=store, pacing="fast") as emu:
        assert _sdk_texts(emu) == TEXTS
        _raw(emu, sse=False)
        cassette.chunks[1].response = _response(" replaced")
        assert _sdk_texts(emu) == [TEXTS[0], " replaced", *TEXTS[2:]]
        array = json.loads(_raw(emu, sse=False))
        assert array[1]["candidates"][0]["content"]["parts"][0]["text"] == " replaced"
        cassette.chunks = cassette.chunks[:2]  # fewer chunks: rendered again
        assert _sdk_texts(emu) == [TEXTS[0], " replaced"]


def test_each_chunk_is_rendered_once_per_framing():
    cassette = _cassette()
    calls = []

    def render(payload):
        calls.append(payload)
        return json.dumps(payload).encode()

    for _ in range(3):
        frame = framed_chunks(cassette, ("test",), render)
        sent = [frame(i) for i in range(len(cassette.chunks))]
    assert len(calls) == len(TEXTS)
    assert sent == [json.dumps(c.response).encode() for c in cassette.chunks]
    framed_chunks(cassette, ("other",), render)(0)
    assert len(calls) == len(TEXTS) + 1

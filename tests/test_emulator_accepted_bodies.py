"""A body the emulator accepted before skips its checks, with the same answers as the first time.

Real emulators over real sockets (httpx): the same bytes again are answered and logged as
the first time, refused bodies are refused every time with the same error JSON, a body
that validation changes is not remembered, a replaced cassette answers at once, and the
memory of accepted bodies stays within its bounds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from quickstart_helpers.emulator import CassetteStore, Emulator, parse_cassette, request_key
from quickstart_helpers.emulator._http import ACCEPTED_BODIES, AcceptedBodies

MODEL = "gemini-3.8-flash"
PROMPT = "Remember this body"
PATH = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
HEADERS = {"x-goog-api-key": "k", "Content-Type": "application/json"}


def _cassette(text: str, name: str = "accepted_body") -> dict:
    candidate = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "index": 0,
        "finishReason": "STOP",
    }
    return {
        "format": 1,
        "kind": "generate",
        "name": name,
        "model": MODEL,
        "request": {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
        "chunks": [{"delay_ms": 0, "response": {"candidates": [candidate]}}],
    }


@pytest.fixture
def emu() -> Iterator[Emulator]:
    ACCEPTED_BODIES.clear()
    store = CassetteStore([])
    store.add(parse_cassette(_cassette("Remembered.")))
    with Emulator(store=store, pacing="fast") as emu:
        yield emu
    ACCEPTED_BODIES.clear()


def _post(emu: Emulator, body: bytes, path: str = PATH) -> httpx.Response:
    assert emu.certificate is not None
    with httpx.Client(verify=emu.certificate.client_context(), timeout=30) as client:
        return client.post(emu.base_url + path, content=body, headers=HEADERS)


def _body(**extra: object) -> bytes:
    return json.dumps(
        {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}], **extra}
    ).encode()


def test_the_same_body_again_gets_the_same_answer_and_log_entry(emu: Emulator) -> None:
    first = _post(emu, _body())
    assert ACCEPTED_BODIES.get((MODEL, _body())) == request_key(MODEL, json.loads(_body()))
    second = _post(emu, _body())
    assert first.status_code == second.status_code == 200
    assert first.content == second.content and b"Remembered." in first.content
    logged = list(emu.requests)
    assert len(logged) == 2 and logged[0] == logged[1]
    assert logged[1].body == json.loads(_body()) and logged[1].cassette == "accepted_body"
    assert logged[0].body is not logged[1].body  # each request logs its own parsed body


@pytest.mark.parametrize(
    ("extra", "status", "text"),
    [
        ({"generationConfg": {}}, 400, 'Unknown name "generationConfg"'),
        ({"generationConfig": {"responseModalities": ["FOO"]}}, 400, "(Modality)"),
        ({"generationConfig": {"responseModalities": ["IMAGE"]}}, 400, "modalities: image"),
    ],
)
def test_a_refused_body_is_refused_every_time(
    emu: Emulator, extra: dict, status: int, text: str
) -> None:
    answers = [_post(emu, _body(**extra)) for _ in range(3)]
    assert {a.status_code for a in answers} == {status}
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert text in answers[0].json()["error"]["message"]
    assert len(ACCEPTED_BODIES) == 0


def test_a_body_that_validation_changes_is_checked_every_time(emu: Emulator) -> None:
    single = json.dumps({"contents": {"role": "user", "parts": {"text": PROMPT}}}).encode()
    for _ in range(2):
        answer = _post(emu, single)
        assert answer.status_code == 200 and b"Remembered." in answer.content
        assert emu.requests[-1].body == json.loads(_body())  # logged with lists
    assert len(ACCEPTED_BODIES) == 0


def test_another_model_or_body_is_checked_again(emu: Emulator) -> None:
    assert _post(emu, _body()).status_code == 200
    other_model = PATH.replace(MODEL, "gemini-other")
    assert _post(emu, _body(), other_model).status_code == 404  # no cassette for it
    assert _post(emu, _body(tools=[])).status_code == 200
    assert len(ACCEPTED_BODIES) == 3


def test_a_cassette_replaced_after_a_remembered_body_answers_at_once(emu: Emulator) -> None:
    assert b"Remembered." in _post(emu, _body()).content
    emu.store.put(parse_cassette(_cassette("Replaced.")))
    assert b"Replaced." in _post(emu, _body()).content


def test_the_memory_keeps_the_newest_bodies_within_its_bounds() -> None:
    bodies = AcceptedBodies(max_entries=2, max_body_bytes=200)
    parsed = json.loads(_body())
    for text in (b"a", b"b", b"c"):
        raw = _body() + b" " * (ord(text) - ord("a"))
        assert bodies.add(MODEL, raw, parsed, parsed) == request_key(MODEL, parsed)
    assert len(bodies) == 2 and bodies.get((MODEL, _body())) is None
    assert bodies.get((MODEL, _body() + b"  ")) is not None
    big = _body() + b" " * 200
    bodies.add(MODEL, big, parsed, parsed)
    assert bodies.get((MODEL, big)) is None and len(bodies) == 2


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        AcceptedBodies(max_entries=0)
    with pytest.raises(ValueError, match="positive"):
        AcceptedBodies(max_body_bytes=0)

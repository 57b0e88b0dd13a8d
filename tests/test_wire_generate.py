"""The emulator's ``streamGenerateContent`` output against public captures of the live API.

Each test streams a shipped recording of the same kind as a capture in ``tests/wire/generate/``
(see its ``SOURCES.md``) from the emulator over a real TLS socket and compares them field by
field: the framing bytes, the keys of every chunk at every level and their order, the usage
fields, ``responseId``/``modelVersion``, where the signature sits, the headers and error
bodies. Where a capture cut a value (``…``) only its structure is compared.
"""

from __future__ import annotations

import json
import re
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from quickstart_helpers.emulator import CassetteStore, Emulator, shipped_cassette_dir

ROOT = Path(__file__).resolve().parent.parent
WIRE = ROOT / "tests" / "wire" / "generate"
SHIPPED = shipped_cassette_dir()
sys.path.insert(0, str(ROOT / "scripts"))

import _authoring as authoring  # noqa: E402


@pytest.fixture(scope="module")
def emulator():
    with Emulator(store=CassetteStore([SHIPPED]), pacing="fast") as emu:
        yield emu


def _post(emu: Emulator, model: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` to streamGenerateContent?alt=sse; return status, headers and raw bytes."""
    request = urllib.request.Request(
        f"{emu.base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse",
        data=json.dumps(body).encode(),
        headers={"x-goog-api-key": "k", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(emu.certificate.cert_file))
    try:
        with urllib.request.urlopen(request, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _replay(emu: Emulator, folder: str, name: str) -> bytes:
    """Stream a shipped recording; check the headers against the captured 200's."""
    capture = json.loads((WIRE / "stream_200_headers.json").read_text("utf-8"))
    cassette = json.loads((SHIPPED / folder / f"{name}.json").read_text("utf-8"))
    status, headers, raw = _post(emu, cassette["model"], cassette["request"])
    assert status == capture["status"]
    assert headers["Content-Type"] == capture["headers"]["Content-Type"]
    return raw


def _events(raw: bytes) -> list[bytes]:
    """Split an SSE body at CRLF CRLF, as the live API frames it (nothing after the last)."""
    assert raw.endswith(b"\r\n\r\n")
    events = raw.split(b"\r\n\r\n")[:-1]
    assert all(e.startswith(b"data: ") and b"\n" not in e for e in events)
    return events


def _shape(value: Any) -> Any:
    """The keys of ``value`` in order at every level (lists by their first item), no values."""
    if isinstance(value, dict):
        return [(key, _shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _parts(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    return chunk["candidates"][0]["content"]["parts"]


def _spacing(event: bytes) -> str:
    """The JSON of an event with strings and numbers blanked: what is left is the layout."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', event.decode("utf-8"))
    return re.sub(r"\b\d+\b", "0", text)


CAPTURE = _events((WIRE / "thinking_stream.sse").read_bytes())
CAPTURED = [json.loads(event[len(b"data: ") :]) for event in CAPTURE]


def test_a_thinking_stream_is_framed_and_shaped_as_the_capture(emulator):
    raw = _replay(emulator, "text", "text_thinking_high")
    ours = [json.loads(event[len(b"data: ") :]) for event in _events(raw)]
    # Framing and JSON layout: ``": "`` after keys, a bare ``,`` between members.
    first_thought = _spacing(_events(raw)[0])
    assert first_thought == _spacing(CAPTURE[0])
    assert _spacing(_events(raw)[-1]) == _spacing(CAPTURE[-1])
    # Keys and their order at every level: a thought, an answer chunk, the signed last chunk.
    thought, answer = ours[0], next(c for c in ours if not _parts(c)[0].get("thought"))
    assert _shape(thought) == _shape(CAPTURED[0])
    assert _shape(answer) == _shape(CAPTURED[1])
    assert _shape(ours[-1]) == _shape(CAPTURED[-1])
    # The signature: an empty text part alone in the last chunk, with the finish reason.
    assert _parts(ours[-1]) == [
        {"text": "", "thoughtSignature": _parts(ours[-1])[0]["thoughtSignature"]}
    ]
    assert all("finishReason" not in c["candidates"][0] for c in ours[:-1])
    assert all("thoughtSignature" not in p for c in ours[:-1] for p in _parts(c))


def test_every_chunk_carries_running_usage_and_one_response_id(emulator):
    chunks = [json.loads(e[6:]) for e in _events(_replay(emulator, "text", "text_thinking_high"))]
    for chunk in chunks + CAPTURED:
        assert {"usageMetadata", "modelVersion", "responseId"} <= set(chunk)
        assert chunk["usageMetadata"]["serviceTier"] == "standard"
    assert len({c["responseId"] for c in chunks}) == 1 == len({c["responseId"] for c in CAPTURED})
    assert re.fullmatch(r"[A-Za-z0-9_-]{23}", chunks[0]["responseId"])
    assert len(CAPTURED[0]["responseId"]) == len(chunks[0]["responseId"])
    usage = [c["usageMetadata"] for c in chunks]
    thoughts = [u for c, u in zip(chunks, usage, strict=True) if _parts(c)[0].get("thought")]
    assert thoughts and all("candidatesTokenCount" not in u for u in thoughts)
    counts = [u["candidatesTokenCount"] for u in usage if "candidatesTokenCount" in u]
    assert counts == sorted(counts) and counts[0] < counts[-1]  # running totals
    assert all(u["thoughtsTokenCount"] > 0 for u in usage if "candidatesTokenCount" in u)


def test_a_stream_without_thinking_ends_as_the_short_capture(emulator):
    captured = [
        json.loads(line[6:]) for line in (WIRE / "short_stream.txt").read_text().split("\n\n")
    ]
    chunks = [json.loads(e[6:]) for e in _events(_replay(emulator, "text", "text_first_stream"))]
    answers = [c for c in chunks if _parts(c)[0].get("text")]
    # Candidate, content and part keys in the capture's order (usage differs: 2.5 vs 3).
    for ours, capture in ((answers[0], captured[0]), (answers[-1], captured[0])):
        assert _shape(ours["candidates"]) == _shape(capture["candidates"])
        assert list(ours) == list(capture)
    assert list(chunks[-1]["candidates"][0]) == list(captured[-1]["candidates"][0])


def test_an_error_before_the_first_chunk_is_sent_as_the_api_sends_it(emulator):
    capture = json.loads((WIRE / "stream_404.json").read_text("utf-8"))
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    status, headers, raw = _post(emulator, "custom-gemini-2.0-flash", body)
    assert status == capture["status"]
    assert headers["Content-Type"] == capture["headers"]["Content-Type"]
    assert not raw.startswith(b"data:")  # a plain JSON body, as in the capture
    error = json.loads(raw)["error"]
    assert set(error) <= set(capture["body"]["error"])
    assert {k: error[k] for k in ("code", "status")} == {
        k: capture["body"]["error"][k] for k in ("code", "status")
    }


def test_a_429_is_the_apis_body_with_its_details(emulator):
    cassette = json.loads((SHIPPED / "faults" / "faults_rate_limited.json").read_text("utf-8"))
    status, headers, raw = _post(emulator, cassette["model"], cassette["request"])
    assert status == 429 and headers["Content-Type"] == "text/event-stream"
    error = json.loads(raw)["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    kinds = [d["@type"].rsplit(".", 1)[-1] for d in error["details"]]
    assert kinds == ["QuotaFailure", "Help", "RetryInfo"]
    assert raw.startswith(b'{\n  "error": {\n    "code": 429,')  # Google's layout


def test_a_function_call_part_carries_its_signature_as_in_the_capture(tmp_path):
    capture = json.loads((WIRE / "function_call.json").read_text("utf-8"))["part"]
    call = {"functionCall": {"name": "customDivide", "args": {"numerator": 10, "denominator": 2}}}
    model = "gemini-3.8-flash"
    request = {"contents": [authoring.text_content("user", "Divide 10 by 2.")]}
    chunks = authoring.stream_chunks(
        [[call]], [0], name="fc", model=model, prompt_tokens=5, answer_tokens=3, thoughts=40
    )
    authoring.write_cassettes(
        tmp_path, [authoring.generate_cassette("fc", "a function call", model, request, chunks)]
    )
    with Emulator(store=CassetteStore([tmp_path]), pacing="fast") as emu:
        status, _, raw = _post(emu, model, request)
    (chunk,) = [json.loads(e[6:]) for e in _events(raw)]
    (part,) = _parts(chunk)
    # The capture's recorder sorted keys, so compare the set of keys, then our order.
    assert set(part) == set(capture) and list(part) == ["functionCall", "thoughtSignature"]
    assert set(part["functionCall"]) == set(capture["functionCall"])
    assert isinstance(part["thoughtSignature"], str) and part["thoughtSignature"]
    assert chunk["candidates"][0]["finishReason"] == "STOP"  # no separate signature chunk

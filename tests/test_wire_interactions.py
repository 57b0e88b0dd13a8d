"""The wire corpus test for the Interactions API: the emulator's stream for a shipped
recording, read as bytes over a real socket, compared field by field with public captures of
the live API (tests/wire/interactions/, sources and licences in SOURCES.md).

Compared: the framing bytes (``event:`` line, ``data:`` line, blank line, LF only), the event
types in order, the keys of every event at every level and their order, where
``metadata.usage`` appears, the ``done`` ending and the content type. Text deltas are
compared as a run (a recording cuts its answer into other pieces than the capture's), and the
emulator's ``event_id`` (absent from the captures) is left out: docs/emulator-rules.md says why.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google import genai

from quickstart_helpers.emulator import Emulator, InteractionsCassette
from quickstart_helpers.emulator._profiles import INTERACTIONS_RULES, PROFILES, RULES

from ._store import STORE

WIRE = Path(__file__).parent / "wire" / "interactions"
B1 = (WIRE / "b1_gemini-2.5-flash_thinking_stream.sse").read_bytes()
B2 = (WIRE / "b2_docs_gemini-3.8-flash_stream.sse").read_bytes().replace(b"\n...\n", b"\n\n")
B2_SHAPES = (WIRE / "b2_docs_event_shapes.sse").read_bytes()
DOCS = Path(__file__).parent.parent / "docs" / "emulator-rules.md"

#: One SSE event as the API frames it: an ``event:`` line, a ``data:`` line, a blank line.
FRAME = re.compile(rb"event: ([^\r\n]+)\ndata: ([^\r\n]*)\n\n")


def cassette(name: str) -> InteractionsCassette:
    found = next(c for c in STORE.cassettes if c.name == name)
    assert isinstance(found, InteractionsCassette)
    return found


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(store=STORE, pacing="fast") as emu:
        yield emu


def stream(emulator: Emulator, name: str) -> httpx.Response:
    """Create the recording's interaction with ``stream: true``; the raw response."""
    recorded = cassette(name)
    ctx = emulator.certificate.client_context()  # type: ignore[union-attr]
    with httpx.Client(verify=ctx, timeout=30) as http:
        return http.post(
            f"{emulator.base_url}/v1beta/interactions",
            headers={"x-goog-api-key": "test", "Accept": "text/event-stream"},
            json={"model": recorded.model, **recorded.request, "stream": True},
        )


def frames(raw: bytes) -> list[tuple[str, Any]]:
    """Split a stream into ``(event line, data JSON)``, checking the framing byte by byte:
    the frames must cover the whole stream, with LF line ends only."""
    assert b"\r" not in raw
    found = list(FRAME.finditer(raw))
    assert b"".join(m.group(0) for m in found) == raw, "bytes outside the API's framing"
    out = []
    for m in found:
        data = m.group(2).decode()
        out.append((m.group(1).decode(), data if data == "[DONE]" else json.loads(data)))
    return out


#: Keys whose values are the same in every stream of this kind (the rest may differ).
SAME = frozenset({"event_type", "type", "status", "object", "service_tier", "modality"})


def shape(value: Any, drop: frozenset[str] = frozenset()) -> Any:
    """The structure of a JSON value: keys in order at every level, scalar types (and the
    values of the keys in :data:`SAME`)."""
    if isinstance(value, dict):
        return [(k, v if k in SAME else shape(v, drop)) for k, v in value.items() if k not in drop]
    if isinstance(value, list):
        return [shape(value[0], drop)] if value else []
    return type(value).__name__


def kind(data: Any) -> str:
    """``event_type``, with the delta's type for a ``step.delta``."""
    if not isinstance(data, dict):
        return data
    delta = data.get("delta", {})
    if delta.get("type") == "thought_signature":
        return f"step.delta thought_signature{'' if delta['signature'] else ' (empty)'}"
    return " ".join(filter(None, [data["event_type"], delta.get("type")]))


def runs(events: list[tuple[str, Any]], usage_apart: bool = True) -> list[tuple[str, Any]]:
    """Events with each run of text deltas kept once (its first), the one that carries
    usage apart unless ``usage_apart`` is false."""
    out: list[tuple[str, Any]] = []
    for name, data in events:
        if out and kind(data) == "step.delta text" == kind(out[-1][1]):
            if not usage_apart or ("metadata" not in data and "metadata" not in out[-1][1]):
                continue
        out.append((name, data))
    return out


def differences(ours: bytes, capture: bytes, drop: frozenset[str] = frozenset()) -> list[str]:
    """Where our stream's events differ from the capture's in type, order or shape."""
    apart = "metadata" not in drop
    mine, theirs = runs(frames(ours), apart), runs(frames(capture), apart)
    problems = []
    if [kind(d) for _, d in mine] != [kind(d) for _, d in theirs]:
        problems.append(
            f"event order: {[kind(d) for _, d in mine]} != {[kind(d) for _, d in theirs]}"
        )
    for (name, data), (their_name, their_data) in zip(mine, theirs, strict=False):
        if name != (data["event_type"] if isinstance(data, dict) else "done"):
            problems.append(f"event line {name!r} is not the data's event_type")
        if name != their_name:
            problems.append(f"event line {name!r} != {their_name!r}")
        ours_shape = shape(data, drop | {"event_id"})
        if ours_shape != shape(their_data, drop):
            problems.append(f"{kind(data)}: {ours_shape} != {shape(their_data, drop)}")
    return problems


def test_b1_the_capture_is_framed_as_the_api_frames_it() -> None:
    events = frames(B1)
    assert events[-1] == ("done", "[DONE]")
    assert B1.endswith(b"event: done\ndata: [DONE]\n\n")


def test_a_thinking_stream_matches_the_real_capture_field_by_field(emulator: Emulator) -> None:
    """B1 (gemini-2.5-flash, thought summaries) against interactions_thoughts."""
    response = stream(emulator, "interactions_thoughts")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"  # as recorded
    assert differences(response.content, B1) == []
    assert response.content.endswith(b"\n\nevent: done\ndata: [DONE]\n\n")


def test_a_stream_without_summaries_matches_the_docs_example(emulator: Emulator) -> None:
    """B2 (the docs page, gemini-3.8-flash) against interactions_event_tour. The page leaves
    ``metadata`` out of its example; the real capture (B1) has it: compared without it."""
    response = stream(emulator, "interactions_event_tour")
    assert differences(response.content, B2, drop=frozenset({"metadata"})) == []


def test_the_comparison_fails_on_a_stream_that_differs() -> None:
    """The comparison can fail: without ``done``, with CRLF, with keys reordered."""
    without_done = B1.removesuffix(b"event: done\ndata: [DONE]\n\n")
    assert differences(without_done, B1)
    with pytest.raises(AssertionError):
        frames(B1.replace(b"\n", b"\r\n"))
    reordered = B1.replace(
        b'{"index":0,"event_type":"step.stop"}', b'{"event_type":"step.stop","index":0}'
    )
    assert differences(reordered, B1) == [
        "step.stop: [('event_type', 'step.stop'), ('index', 'int')] != "
        "[('index', 'int'), ('event_type', 'step.stop')]"
    ]
    assert differences(B1.replace(b'"standard"', b'"flex"'), B1)


def test_usage_rides_where_the_capture_has_it_as_running_totals(emulator: Emulator) -> None:
    events = [d for _, d in frames(stream(emulator, "interactions_thoughts").content)][:-1]
    totals = [e["metadata"]["usage"]["total_tokens"] for e in events if "metadata" in e]
    assert totals == sorted(totals) and len(totals) == 4  # created, summary, signature, text
    completed = events[-1]["interaction"]
    assert completed["usage"] == [e for e in events if "metadata" in e][-1]["metadata"]["usage"]
    assert list(completed)[:6] == ["id", "status", "usage", "created", "updated", "service_tier"]


def test_every_shipped_stream_follows_the_interactions_rules(emulator: Emulator) -> None:
    for recorded in STORE.cassettes:
        if not isinstance(recorded, InteractionsCassette) or recorded.previous:
            continue  # one that continues another is not created alone
        if any(e.break_ for e in recorded.events):
            continue  # the connection drops: test_interactions.py resumes it
        response = stream(emulator, recorded.name)
        events = [d for _, d in frames(response.content)]
        assert events[-1] == "[DONE]" and "metadata" in events[0], recorded.name
        completed = events[-2]["interaction"]
        assert {"usage", "created", "updated", "service_tier"} <= set(completed)
        assert "steps" not in completed
        for i, event in enumerate(events[:-2]):
            following = events[i + 1]
            if event.get("event_type") == "step.delta" and following["event_type"] == "step.stop":
                assert "metadata" in event, f"{recorded.name}: a step's last delta has usage"
            if kind(event) == "step.delta thought_summary":
                assert kind(following) == "step.delta thought_signature (empty)"


def test_ids_have_the_real_form(emulator: Emulator) -> None:
    real = frames(B1)[0][1]["interaction"]["id"]
    ours = frames(stream(emulator, "interactions_thoughts").content)[0][1]["interaction"]["id"]
    for value in (real, ours):
        body = base64.urlsafe_b64decode(value.removeprefix("v1_") + "=")
        assert re.fullmatch(rb"\n\x17([\w-]{23})\x12\x17\1", body), value


def test_function_call_and_image_deltas_have_the_docs_shapes(emulator: Emulator) -> None:
    """Key sets as the docs show them; the function call step also in the docs' key order."""
    docs = {kind(d): d for _, d in frames(B2_SHAPES)}
    call = {kind(d): d for _, d in frames(stream(emulator, "interactions_weather_call").content)}
    image = {kind(d): d for _, d in frames(stream(emulator, "interactions_storyboard").content)}
    for name, ours in (
        ("step.start", call),
        ("step.delta arguments_delta", call),
        ("step.delta image", image),
    ):
        mine, theirs = ours[name], docs[name]
        assert set(mine) - {"event_id", "metadata"} == set(theirs), name
        part = "step" if name == "step.start" else "delta"
        assert set(mine[part]) == set(theirs[part]), name
    assert list(call["step.start"]["step"]) == list(docs["step.start"]["step"])


def test_the_sdk_parses_the_real_capture_and_our_stream_alike(emulator: Emulator) -> None:
    """The SDK's models lack ``metadata.usage``; they keep it as an extra field."""
    client = genai.Client(api_key="test", http_options=emulator.http_options())
    recorded = cassette("interactions_thoughts")
    events = list(client.interactions.create(model=recorded.model, **recorded.request, stream=True))
    created = events[0]
    assert created.model_extra and created.model_extra["metadata"]["usage"]["total_tokens"] > 0
    from google.genai.interactions import InteractionSSEEvent
    from pydantic import TypeAdapter

    adapter = TypeAdapter(InteractionSSEEvent)
    for _, data in frames(B1)[:-1]:
        parsed = adapter.validate_python(data)
        assert type(parsed).__name__ != "UnknownInteractionSSEEvent"


def test_every_profile_holds_the_interactions_rules_and_the_docs_list_them() -> None:
    text = DOCS.read_text("utf-8")
    assert INTERACTIONS_RULES == {r for r in RULES if r.startswith("interactions.")}
    assert len(INTERACTIONS_RULES) >= 5
    for rule_id in INTERACTIONS_RULES:
        assert f"`{rule_id}`" in text
        assert RULES[rule_id].source
        assert all(profile.has(rule_id) for profile in PROFILES)

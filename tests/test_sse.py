"""Unit tests of the SSE framing in quickstart_helpers.sse and the tests' reader (tests/_sse.py).

The expected bytes are written out by hand from the WHATWG rules, so the tests do not
trust the module's own framing; the browser test checks the same frames in Chromium.
"""

from __future__ import annotations

import random

import pytest

from quickstart_helpers.sse import format_event

from ._sse import DONE, ServerSentEvent, iter_events, iter_lines, normalize_newlines

DONE_EVENT = format_event(DONE, event="done")


def parse(raw: bytes, piece: int | None = None) -> list[ServerSentEvent]:
    """Parse a whole stream, optionally fed in pieces of ``piece`` characters."""
    text = raw.decode("utf-8")
    pieces = [text] if piece is None else [text[i : i + piece] for i in range(0, len(text), piece)]
    return list(iter_events(iter_lines(pieces)))


def test_a_one_line_chunk_is_one_data_line() -> None:
    assert format_event("Hello") == b"data: Hello\n\n"


def test_each_line_of_a_multi_line_chunk_gets_its_own_data_line() -> None:
    assert format_event("one\ntwo\nthree") == b"data: one\ndata: two\ndata: three\n\n"


def test_leading_and_trailing_newlines_survive_as_empty_data_lines() -> None:
    raw = format_event("\nmiddle\n\n")
    assert raw == b"data: \ndata: middle\ndata: \ndata: \n\n"
    assert parse(raw) == [ServerSentEvent(data="\nmiddle\n\n")]


@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        ("a\r\nb", b"data: a\ndata: b\n\n"),
        ("a\rb", b"data: a\ndata: b\n\n"),
        ("a\r\n\r\nb\r", b"data: a\ndata: \ndata: b\ndata: \n\n"),
        ("a\n\rb", b"data: a\ndata: \ndata: b\n\n"),  # LF then CR is two line ends
    ],
)
def test_crlf_and_lone_cr_become_lf(chunk: str, expected: bytes) -> None:
    assert format_event(chunk) == expected
    assert parse(expected)[0].data == normalize_newlines(chunk)
    assert "\r" not in parse(expected)[0].data


def test_unicode_is_sent_as_utf8_and_unicode_separators_are_not_line_ends() -> None:
    chunk = "café 日本語 🚀 \u2028 \u2029 \u0085 \x0b end"
    raw = format_event(chunk)
    assert raw == b"data: " + chunk.encode("utf-8") + b"\n\n"
    assert raw.count(b"data:") == 1
    assert parse(raw) == [ServerSentEvent(data=chunk)]


def test_empty_chunk_is_an_event_with_empty_data() -> None:
    raw = format_event("")
    assert raw == b"data: \n\n"
    assert parse(raw) == [ServerSentEvent(data="")]


def test_leading_spaces_and_field_lookalikes_are_kept() -> None:
    chunk = "  indented\ndata: not a field\nevent: nor this\n: nor a comment"
    raw = format_event(chunk)
    assert raw.startswith(b"data:   indented\ndata: data: not a field\n")
    assert parse(raw) == [ServerSentEvent(data=chunk)]


def test_named_error_and_done_events() -> None:
    assert format_event("It broke.\nTry again.", event="error") == (
        b"event: error\ndata: It broke.\ndata: Try again.\n\n"
    )
    assert DONE_EVENT == b"event: done\ndata: [DONE]\n\n"
    assert parse(DONE_EVENT) == [ServerSentEvent(data=DONE, event="done")]


def test_a_chunk_reading_done_is_not_the_done_event() -> None:
    events = parse(format_event("[DONE]") + DONE_EVENT)
    assert [(e.event, e.data) for e in events] == [("message", "[DONE]"), ("done", "[DONE]")]


def test_id_and_retry_fields() -> None:
    raw = b"event: chunk\nid: 7\nretry: 1500\ndata: x\n\n"
    assert parse(raw) == [ServerSentEvent(data="x", event="chunk", id="7", retry_ms=1500)]


@pytest.mark.parametrize(
    "kwargs",
    [{"event": "bad\nname"}, {"event": "bad\rname"}, {"event": "a\0b"}],
)
def test_line_breaks_in_the_event_name_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        format_event("x", **kwargs)


def test_bad_data_type_is_refused() -> None:
    with pytest.raises(TypeError, match="must be a str, not bytes"):
        format_event(b"bytes")  # type: ignore[arg-type]


def test_iter_lines_joins_a_crlf_split_across_pieces() -> None:
    assert list(iter_lines(["a\r", "\nb\r", "c\n", "d"])) == ["a", "b", "c", "d"]
    assert list(iter_lines(["x\r"])) == ["x"]
    assert list(iter_lines(["x\r", "\r\n"])) == ["x", ""]


def test_iter_lines_does_not_split_at_unicode_separators() -> None:
    text = "data: a\u2028b\x85c\n\n"
    assert len(text.splitlines()) > 2  # what str.splitlines (and httpx) would do
    assert list(iter_lines([text])) == ["data: a\u2028b\x85c", ""]


def test_parser_follows_the_standard() -> None:
    text = (
        "\ufeff: a comment line\n"
        "data:no space\n\n"  # the space after the colon is optional
        "event: ping\n\n"  # no data line: not dispatched
        "id: 42\nunknown: field\ndata: a\n\n"
        "data: b\n\n"  # the last id carries over
        "data: unterminated"  # no blank line at the end: dropped
    )
    events = list(iter_events(iter_lines([text])))
    assert events == [
        ServerSentEvent(data="no space"),
        ServerSentEvent(data="a", id="42"),
        ServerSentEvent(data="b", id="42"),
    ]


def test_random_chunks_round_trip_through_any_piece_size() -> None:
    rng = random.Random(6)
    alphabet = ["a", "b", " ", "\n", "\r", "\r\n", "é", "🚀", "\u2028", ":", "data: ", "[DONE]"]
    chunks = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(200)]
    raw = b"".join(format_event(c) for c in chunks) + DONE_EVENT
    for piece in (None, 1, 2, 7, 64):
        events = parse(raw, piece)
        assert [e.data for e in events[:-1]] == [normalize_newlines(c) for c in chunks]
        assert events[-1] == ServerSentEvent(data=DONE, event="done")

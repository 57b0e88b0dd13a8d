"""Server-Sent Events (SSE) framing for relaying model chunks to a browser.

An SSE stream is UTF-8 text of events separated by a blank line. Each event is a few
``field: value`` lines (see the WHATWG HTML standard, "Server-sent events")::

    event: error
    data: first line of the payload
    data: second line of the payload

The browser's ``EventSource`` joins an event's ``data`` lines with ``\\n``, so a chunk
that holds a newline must be split over several ``data:`` lines: writing
``data: {chunk}`` as is would end the field at the first newline and lose or corrupt
the rest. SSE treats CRLF, a lone CR and LF all as line ends, so this module turns
CRLF and CR into LF first: the browser receives the text with LF line ends.

The streams served by :mod:`quickstart_helpers.web` use three kinds of event:

- unnamed (``message``) events: one per model chunk, the chunk's text as the data
  (an empty chunk is an event with empty data);
- ``done``: the last event of a stream that ended well, with the data ``[DONE]``; it
  is a named event so that a chunk whose text is literally ``[DONE]`` cannot end the
  stream early;
- ``error``: the last event of a stream that failed, with a readable message as the
  data;
- comment lines (``: keep-alive``) on a stream idle for a while, which ``EventSource``
  ignores; they keep proxies and the browser from timing the connection out.

:func:`iter_events` parses SSE lines back into :class:`ServerSentEvent` objects the
way ``EventSource`` does, for Python clients (httpx) and tests.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "CONTENT_TYPE",
    "DONE",
    "ServerSentEvent",
    "done_event",
    "error_event",
    "format_event",
    "iter_events",
    "iter_lines",
    "iter_text",
    "normalize_newlines",
    "replace_surrogates",
]

#: The data of the final ``done`` event.
DONE = "[DONE]"

#: ``Content-Type`` of an SSE response.
CONTENT_TYPE = "text/event-stream; charset=utf-8"

_LINE_END = re.compile(r"\r\n|\r|\n")


def normalize_newlines(text: str) -> str:
    """Return ``text`` with CRLF and lone CR line ends turned into LF."""
    return _LINE_END.sub("\n", text)


def _field(name: str, value: str) -> str:
    if _LINE_END.search(value):
        raise ValueError(f"The SSE {name} field cannot hold a line break; got {value!r}.")
    return f"{name}: {value}\n"


def format_event(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,  # noqa: A002 - the SSE field's name
    retry_ms: int | None = None,
    newline: str = "\n",
) -> bytes:
    """Frame one SSE event.

    Each line of ``data`` goes on its own ``data:`` line, after CRLF and CR are turned
    into LF, so ``EventSource`` rebuilds exactly ``normalize_newlines(data)``. Empty
    ``data`` gives ``data: `` (an event with empty data; a browser still dispatches it).

    Args:
        data: The payload, any text (a model chunk, a message, JSON).
        event: Event name; None for an unnamed event, which ``EventSource`` delivers to
            ``onmessage``. Defaults to None.
        id: Event id the browser sends back in ``Last-Event-ID`` when it reconnects.
            Defaults to None (no id line).
        retry_ms: Reconnection delay the browser should use, in milliseconds.
            Defaults to None (no retry line).
        newline: The line ending written, ``"\\n"`` (default) or ``"\\r\\n"``; both are
            valid SSE. The Gemini API emulator uses this framer too.

    Returns:
        The event as UTF-8 bytes, ending with the blank line that dispatches it. A
        lone surrogate (text that has no UTF-8 form) is sent as U+FFFD, so framing
        never fails on it.

    Raises:
        TypeError: ``data`` is not a string.
        ValueError: ``event`` or ``id`` contains a line break (or ``id`` a NUL),
            ``retry_ms`` is negative, or ``newline`` is neither LF nor CRLF.
    """
    if newline not in ("\n", "\r\n"):
        raise ValueError("newline must be '\\n' or '\\r\\n'")
    if not isinstance(data, str):
        raise TypeError(f"SSE data must be a str, not {type(data).__name__}")
    text = ""
    if event is not None:
        text += _field("event", event)
    if id is not None:
        if "\0" in id:
            raise ValueError("The SSE id field cannot hold a NUL character.")
        text += _field("id", id)
    if retry_ms is not None:
        if retry_ms < 0:
            raise ValueError(f"retry_ms must be >= 0, not {retry_ms}")
        text += f"retry: {retry_ms}\n"
    for line in normalize_newlines(data).split("\n"):
        text += f"data: {line}\n"
    text += "\n"
    if newline != "\n":
        text = text.replace("\n", newline)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (e.g. from json.loads("\\ud800"))
        return replace_surrogates(text).encode("utf-8")


def replace_surrogates(text: str) -> str:
    """Return ``text`` with each lone surrogate replaced by U+FFFD.

    A surrogate pair written as two code points (``"\\ud83d\\ude80"``) becomes the
    character it encodes. Text without surrogates comes back unchanged.
    """
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def done_event() -> bytes:
    """Return the final ``done`` event: ``event: done`` and ``data: [DONE]``."""
    return format_event(DONE, event="done")


def error_event(message: str) -> bytes:
    """Return an ``error`` event whose data is ``message`` (readable text)."""
    return format_event(message, event="error")


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event, as ``EventSource`` would deliver it.

    Attributes:
        data: The ``data`` lines joined with ``\\n``.
        event: The event name; ``"message"`` for an unnamed event.
        id: The last event id seen so far in the stream, or ``""``.
        retry_ms: The ``retry`` value given in this event, or None.
    """

    data: str
    event: str = "message"
    id: str = ""
    retry_ms: int | None = None


def iter_text(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode a UTF-8 byte stream read in pieces of any size.

    A network read can end in the middle of a multi-byte character (``é`` is two
    bytes, ``☕`` three): decoding each read on its own then fails or yields
    U+FFFD. An incremental decoder keeps the first bytes until the rest arrive.

    Args:
        chunks: The bytes as read (e.g. ``response.iter_bytes()``).

    Yields:
        Decoded text; feed it to :func:`iter_lines`.

    Raises:
        UnicodeDecodeError: The bytes are not UTF-8, or the stream ends mid-character.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def iter_lines(chunks: Iterable[str]) -> Iterator[str]:
    """Split streamed text into SSE lines, at CRLF, CR or LF only.

    ``str.splitlines`` and httpx's ``iter_lines()`` also split at Unicode separators
    such as U+2028 and U+0085, which SSE treats as ordinary text: a chunk holding one
    would be torn in two. Use this on ``response.iter_text()`` instead.

    Args:
        chunks: Decoded text in pieces of any size; a CRLF may straddle two pieces.

    Yields:
        Each line without its line end. Text after the last line end is yielded last.
    """
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        start = 0
        for match in _LINE_END.finditer(buffer):
            if match.group() == "\r" and match.end() == len(buffer):
                break  # the LF of a CRLF may come in the next piece
            yield buffer[start : match.start()]
            start = match.end()
        buffer = buffer[start:]
    if buffer:
        yield buffer.removesuffix("\r")


def iter_events(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Parse SSE lines into events, following the WHATWG "interpret an event stream".

    Comment lines (``:``) and unknown fields are ignored; one space after the colon is
    removed; an event with no ``data`` line is not dispatched; an event left without
    its closing blank line when the lines end is dropped, as a browser drops it.

    Args:
        lines: The stream's lines without their line ends (e.g. httpx's
            ``response.iter_lines()``).

    Yields:
        Each dispatched :class:`ServerSentEvent`.
    """
    data: list[str] = []
    event = ""
    last_id = ""
    retry: int | None = None
    for index, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        if index == 0:
            line = line.removeprefix("\ufeff")  # a byte order mark is ignored
        if line == "":
            if data:
                yield ServerSentEvent(
                    data="\n".join(data), event=event or "message", id=last_id, retry_ms=retry
                )
            data, event, retry = [], "", None
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)

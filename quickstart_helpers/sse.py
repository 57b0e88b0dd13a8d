"""Server-Sent Events (SSE): frame events, and read them back as a browser does.

An SSE stream is UTF-8 text of events separated by a blank line, each a few
``field: value`` lines (WHATWG HTML standard, "Server-sent events")::

    event: error
    data: first line of the payload
    data: second line of the payload

``EventSource`` joins an event's ``data`` lines with ``\\n``, so a chunk holding a
newline needs one ``data:`` line per line: ``f"data: {chunk}\\n\\n"`` would lose the
rest. CRLF, a lone CR and LF are all line ends in SSE (and nothing else is: not U+2028,
not U+0085, where ``str.splitlines`` and httpx's ``iter_lines`` also split). The relay
ends a good stream with a named ``done`` event (data ``[DONE]``, so a chunk reading
``[DONE]`` cannot end it early) and a failed one with an ``error`` event.
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
]

DONE = "[DONE]"
CONTENT_TYPE = "text/event-stream; charset=utf-8"
_LINE_END = re.compile(r"\r\n|\r|\n")


def normalize_newlines(text: str) -> str:
    """Return ``text`` with CRLF and lone CR line ends turned into LF."""
    return _LINE_END.sub("\n", text)


def format_event(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,  # noqa: A002 - the SSE field's name
    retry_ms: int | None = None,
) -> bytes:
    """Frame one SSE event as UTF-8 bytes, ending with the blank line that dispatches it.

    Each line of ``data`` (CRLF and CR read as LF) gets its own ``data:`` line, so
    ``EventSource`` rebuilds ``normalize_newlines(data)``; ``""`` is an event with empty
    data. ``event`` names it (None: an unnamed ``message``), ``id`` is what the browser
    sends back in ``Last-Event-ID``, ``retry_ms`` its reconnection delay. A lone
    surrogate is sent as U+FFFD.

    Raises:
        TypeError: ``data`` is not a string.
        ValueError: ``event`` or ``id`` holds a line break (or ``id`` a NUL), or
            ``retry_ms`` is negative.
    """
    if not isinstance(data, str):
        raise TypeError(f"SSE data must be a str, not {type(data).__name__}")
    fields = [("event", event), ("id", id)]
    for name, value in fields:
        if value is not None and (_LINE_END.search(value) or "\0" in value):
            raise ValueError(f"The SSE {name} field cannot hold a line break or NUL: {value!r}.")
    if retry_ms is not None and retry_ms < 0:
        raise ValueError(f"retry_ms must be >= 0, not {retry_ms}")
    fields.append(("retry", None if retry_ms is None else str(retry_ms)))
    text = "".join(f"{name}: {value}\n" for name, value in fields if value is not None)
    text += "".join(f"data: {line}\n" for line in normalize_newlines(data).split("\n")) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from json.loads('"\\ud800"')
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def done_event() -> bytes:
    """Return the final ``done`` event: ``event: done`` and ``data: [DONE]``."""
    return format_event(DONE, event="done")


def error_event(message: str) -> bytes:
    """Return an ``error`` event whose data is ``message`` (readable text)."""
    return format_event(message, event="error")


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: ``data`` lines joined with ``\\n``, its name (``"message"``
    when unnamed), the last ``id`` seen in the stream, and this event's ``retry``."""

    data: str
    event: str = "message"
    id: str = ""
    retry_ms: int | None = None


def iter_text(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode UTF-8 bytes read in pieces of any size (a read may end mid-character)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    for chunk in chunks:
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def iter_lines(chunks: Iterable[str]) -> Iterator[str]:
    """Split streamed text into SSE lines, at CRLF, CR or LF only (a CRLF may straddle
    two pieces); use it on httpx's ``response.iter_text()`` rather than ``iter_lines()``."""
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
    """Parse SSE lines into events, as the WHATWG "interpret an event stream" says.

    Comments (``:``) and unknown fields are ignored, one space after the colon is
    removed, an event with no ``data`` line is not dispatched, and an event left without
    its closing blank line at the end is dropped, as a browser drops it.
    """
    data: list[str] = []
    event, last_id, retry = "", "", None
    for index, raw in enumerate(lines):
        line = raw.rstrip("\r\n").removeprefix("\ufeff" if index == 0 else "")
        if not line:
            if data:
                yield ServerSentEvent("\n".join(data), event or "message", last_id, retry)
            data, event, retry = [], "", None
            continue
        name, colon, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)

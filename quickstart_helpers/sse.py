"""Server-Sent Events (SSE): frame events, and read them back as a browser does.

An event is a few ``field: value`` lines and a blank line (WHATWG HTML, "Server-sent
events"). ``EventSource`` joins an event's ``data:`` lines with a newline, so a chunk
holding newlines needs one ``data:`` line per line (``f"data: {chunk}\\n\\n"`` would
lose the rest). CRLF, CR and LF are SSE's only line ends: not U+2028 or U+0085, where
``str.splitlines`` and httpx's ``iter_lines`` also split. A relay ends a stream with a
named ``done`` event, ``format_event(DONE, event="done")`` (so a chunk reading ``[DONE]``
cannot end it), or an ``error`` event whose data is readable text.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

DONE = "[DONE]"
_LINE_END = re.compile(r"\r\n|\r|\n")


def normalize_newlines(text: str) -> str:
    """Return ``text`` with CRLF and lone CR line ends turned into LF."""
    return _LINE_END.sub("\n", text)


def format_event(data: str, *, event: str | None = None) -> bytes:
    """Frame one event as UTF-8 bytes: a ``data:`` line per line of ``data`` (so
    ``EventSource`` rebuilds ``normalize_newlines(data)``), named ``event`` (None: a
    ``message``). A lone surrogate is sent as U+FFFD."""
    if not isinstance(data, str):
        raise TypeError(f"SSE data must be a str, not {type(data).__name__}")
    if event is not None and (_LINE_END.search(event) or "\0" in event):
        raise ValueError(f"The SSE event field cannot hold a line break or NUL: {event!r}.")
    text = "" if event is None else f"event: {event}\n"
    text += "".join(f"data: {line}\n" for line in normalize_newlines(data).split("\n")) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from json.loads('"\\ud800"')
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


@dataclass(frozen=True)
class ServerSentEvent:
    """One event as dispatched: ``id`` is the last one seen in the stream."""

    data: str
    event: str = "message"
    id: str = ""
    retry_ms: int | None = None


def iter_text(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode UTF-8 bytes read in pieces of any size (a read may end mid-character)."""
    return codecs.iterdecode(chunks, "utf-8")


def iter_lines(chunks: Iterable[str]) -> Iterator[str]:
    """Split streamed text into lines at CRLF, CR or LF only (a CRLF may straddle two
    pieces): use it on httpx's ``iter_text()``, not its ``iter_lines()``."""
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
    """Parse lines into events as WHATWG's "interpret an event stream": comments and
    unknown fields ignored, an event without ``data`` or its closing blank line dropped."""
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

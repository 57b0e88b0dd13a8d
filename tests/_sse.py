"""Read SSE back as a browser does, to check what the emulator and the relay send.

WHATWG HTML, "Server-sent events": CRLF, CR and LF are the only line ends (not U+2028 or
U+0085, where ``str.splitlines`` and httpx's ``iter_lines`` also split); an event's ``data:``
lines are joined with a newline. The framing is ``quickstart_helpers.sse.format_event``.
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

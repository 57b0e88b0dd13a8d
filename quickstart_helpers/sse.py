"""Server-Sent Events (SSE) framing, as the Interactions API's streams are sent.

An event is a few ``field: value`` lines and a blank line (WHATWG HTML, "Server-sent
events"). ``EventSource`` joins an event's ``data:`` lines with a newline, so a chunk
holding newlines needs one ``data:`` line per line (``f"data: {chunk}\\n\\n"`` would
lose the rest). CRLF, CR and LF are SSE's only line ends: not U+2028 or U+0085. A stream
ends with a named ``done`` event, ``format_event("[DONE]", event="done")``, so a chunk
reading ``[DONE]`` cannot end it. The tests read streams back with ``tests/_sse.py``.
"""

from __future__ import annotations

import re

_LINE_END = re.compile(r"\r\n|\r|\n")


def format_event(data: str, *, event: str | None = None) -> bytes:
    """Frame one event as UTF-8 bytes: a ``data:`` line per line of ``data`` (its CRLF and
    CR line ends come back as LF in ``EventSource``), named ``event`` (None: a ``message``).
    A lone surrogate is sent as U+FFFD."""
    if not isinstance(data, str):
        raise TypeError(f"SSE data must be a str, not {type(data).__name__}")
    if event is not None and (_LINE_END.search(event) or "\0" in event):
        raise ValueError(f"The SSE event field cannot hold a line break or NUL: {event!r}.")
    text = "" if event is None else f"event: {event}\n"
    text += "".join(f"data: {line}\n" for line in _LINE_END.split(data)) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from json.loads('"\\ud800"')
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()

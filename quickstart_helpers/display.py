"""Render a stream of chunks as one Markdown output that updates in place (printed on a terminal).

Each update re-sends the whole text: updating on every chunk would send data growing with the
square of the stream's length (about 400 MB for 10,000 chunks) and can overflow the kernel's
output channel. So updates come at most :data:`MAX_UPDATES_PER_SECOND` times a second, and
once more at the end, and the text is joined only for an update: the cost stays linear.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import settings
from .errors import StreamInterrupted

#: Most display updates a second (plus a final one): a frame every 50 ms looks fluid, and
#: a 10,000-chunk stream costs about what printing it does (see ``benchmarks/``).
MAX_UPDATES_PER_SECOND = 20


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel; IPython is not imported here."""
    ipython = sys.modules.get("IPython")
    return getattr(ipython and ipython.get_ipython(), "kernel", None) is not None


class UpdateThrottle:
    """Allows an update at most :data:`MAX_UPDATES_PER_SECOND` times a second, the first at once."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.interval, self.clock, self.last = 1.0 / MAX_UPDATES_PER_SECOND, clock, -math.inf

    def ready(self) -> bool:
        """Whether an update may be sent now; if so, it counts as sent."""
        now = self.clock()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True


def chunk_text(chunk: Any, *, thought: bool = False) -> str:
    """A chunk's answer text (a ``str`` is returned as is): its first candidate's text
    parts, without the SDK's warning for other parts; with ``thought=True``, its thoughts."""
    if isinstance(chunk, str):
        return "" if thought else chunk
    return "".join(p.text for p in chunk.parts or [] if p.text and bool(p.thought) == thought)


def add_explanation(err: BaseException) -> BaseException:
    """Add :func:`~quickstart_helpers._api_errors.explain_api_error` to ``err`` as a note."""
    from ._api_errors import explain_api_error

    note = explain_api_error(err)
    if hasattr(err, "add_note") and note not in getattr(err, "__notes__", []):
        err.add_note(note)
    return err


class LiveMarkdown:
    """Growing text: a Markdown display updated in place in Jupyter, printed elsewhere.

    :meth:`add` appends a piece and updates the display when the throttle allows (the
    display is made with the first text, so a refused request leaves no empty output);
    :meth:`finish` sends the last update or ends the line. With ``thoughts=True`` the
    text is a quoted "Thoughts" block (on a terminal, a line starting ``Thinking:``).
    """

    def __init__(
        self, clock: Any = time.monotonic, *, thoughts: bool = False, notebook: bool | None = None
    ) -> None:
        self.thoughts, self.throttle = thoughts, UpdateThrottle(clock=clock)
        self.notebook = in_notebook() if notebook is None else notebook
        self.pieces: list[str] = []
        self.handle: Any = None
        self.stale = False  # text added since the last update

    @property
    def text(self) -> str:
        self.pieces[:] = ["".join(self.pieces)] if self.pieces else []
        return self.pieces[0] if self.pieces else ""

    def add(self, piece: str) -> None:
        if not piece:
            return
        if not self.notebook:
            lead = "Thinking: " if self.thoughts and not self.pieces else ""
            print(lead + piece, end="", flush=True)
        self.pieces.append(piece)
        self.stale = True
        if self.notebook and (self.throttle.ready() or self.handle is None):
            self._update()

    def _update(self) -> None:
        text = self.text
        if self.thoughts:
            text = "> **Thoughts**\n>\n> " + text.replace("\n", "\n> ")
        # What display(Markdown(text)) sends, without running IPython's formatters.
        bundle = {"text/markdown": text, "text/plain": "<IPython.core.display.Markdown object>"}
        if self.handle is None:
            from IPython.display import display

            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle.update(bundle, raw=True)
        self.stale = False

    def finish(self) -> None:
        if self.notebook and self.stale:
            self._update()
        elif not self.notebook and self.pieces:
            end = "\n\n" if self.thoughts else "" if self.text.endswith("\n") else "\n"
            print(end, end="", flush=True)


def _frames(typewriter: float | None) -> tuple[int, float]:
    """(characters per frame, pause after each) for a typewriter speed in characters a
    second: at most MAX_UPDATES_PER_SECOND frames a second; whole chunks and no pause
    without a typewriter or under ``$QUICKSTART_PACING=fast``."""
    if typewriter is not None and typewriter <= 0:
        raise ValueError(
            f"typewriter must be a positive number of characters per second, not {typewriter}"
        )
    if not typewriter or settings.pacing() == "fast":
        return sys.maxsize, 0.0
    step = math.ceil(typewriter / MAX_UPDATES_PER_SECOND)
    return step, step / typewriter


def stream_markdown(
    chunks: Iterable[Any],
    *,
    typewriter: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    thoughts: bool = False,
) -> str:
    """Render ``chunks`` (the SDK's, or strings) as one Markdown output updated in place;
    return the answer's text (never its thought parts).

    ``typewriter`` reveals the text at that many characters a second, as chat widgets do (no
    pauses under ``$QUICKSTART_PACING=fast``); ``thoughts=True`` shows thought parts in a
    block above the answer. ``sleep`` and ``clock`` are the pause and the throttle's time.
    A stream that breaks after a chunk raises :class:`StreamInterrupted` (``text``: what
    arrived, still on screen); a refused request raises the SDK's own error, with a note.
    """
    step, pause = _frames(typewriter)
    answer = LiveMarkdown(clock)
    thinking = LiveMarkdown(clock, thoughts=True) if thoughts else None
    received = 0
    try:
        for chunk in chunks:
            received += 1
            text = chunk_text(chunk)
            if thinking is not None:
                thinking.add(chunk_text(chunk, thought=True))
                if text:  # the answer starts below the thoughts
                    thinking.finish()
                    thinking = None
            for start in range(0, len(text), step):
                answer.add(text[start : start + step])
                if pause:
                    sleep(pause)
    except Exception as exc:
        if received == 0:
            add_explanation(exc)
            raise  # refused: the API's own error, not a broken stream
        raise StreamInterrupted(answer.text, exc) from exc
    finally:  # also on KeyboardInterrupt: what arrived stays on screen
        if thinking is not None:
            thinking.finish()
        answer.finish()
    return answer.text

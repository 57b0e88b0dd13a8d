"""Render a stream of chunks as one Markdown output that updates in place.

In Jupyter the text appears in one ``display`` output, updated as chunks arrive; on a
terminal it is printed as it arrives. Either way the full text is returned.

Updates are throttled: each one re-sends the whole Markdown, so updating on every chunk
would send data growing with the square of the stream's length (about 400 MB for 10,000
chunks) and can overflow the kernel's output channel. The display is made with the
first text, updated at most :data:`MAX_UPDATES_PER_SECOND` times a second, and once more
at the end if the last update did not show everything. The text is kept as a list of
pieces joined only for an update, so the cost stays linear in the stream's length.

Thought parts (``ThinkingConfig(include_thoughts=True)``) are never part of the answer:
they are skipped, or with ``thoughts=True`` shown in their own display above the answer
(a quoted "Thoughts" block; on a terminal a line starting ``Thinking:``).

An error before the first chunk (the API refused the request, e.g. a bad key) is the
API's own error, re-raised with a note that explains it; an error after at least one
chunk is a broken stream, raised as :class:`StreamInterrupted` with the partial text.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

from . import settings
from .errors import StreamInterrupted
from .paths import in_notebook_kernel as in_notebook

#: Most display updates per second while a stream arrives (plus one final update): a frame
#: every 50 ms looks fluid, and a 10,000-chunk stream then costs about what printing it
#: does (see ``benchmarks/``).
MAX_UPDATES_PER_SECOND = 20


class UpdateThrottle:
    """Allows an update at most ``rate`` times a second: the first at once, each next one
    ``1 / rate`` seconds after the last allowed. ``clock`` is for tests."""

    def __init__(
        self, rate: float = MAX_UPDATES_PER_SECOND, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of updates per second, not {rate}")
        self.interval = 1.0 / rate
        self.clock = clock
        self.last: float | None = None

    def ready(self) -> bool:
        """Return whether an update may be sent now; if so, count it as sent."""
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        return True


def _text(chunk: Any, thought: bool) -> str:
    if isinstance(chunk, str):
        return "" if thought else chunk
    candidates = getattr(chunk, "candidates", None) or []
    if not candidates or candidates[0].content is None:
        return ""
    parts = candidates[0].content.parts or []
    return "".join(p.text for p in parts if p.text and bool(p.thought) == thought)


def chunk_text(chunk: Any) -> str:
    """Return a chunk's answer text: its first candidate's text parts, thoughts and inline
    data skipped (without the SDK's warning); a ``str`` is returned as is."""
    return _text(chunk, thought=False)


def thought_text(chunk: Any) -> str:
    """Return a chunk's thought-summary text: its text parts with ``thought`` set."""
    return _text(chunk, thought=True)


def add_explanation(err: BaseException) -> BaseException:
    """Add :func:`~quickstart_helpers.errors.explain_api_error` to ``err`` as a note
    (shown under the traceback), unless it is there already; return ``err``."""
    from .errors import explain_api_error

    note = explain_api_error(err)
    if hasattr(err, "add_note") and note not in getattr(err, "__notes__", []):
        err.add_note(note)
    return err


class LiveMarkdown:
    """Growing text: one Markdown display updated in place in Jupyter, printed elsewhere.

    ``add`` appends a piece and updates the display when the throttle allows; ``finish``
    sends the last update (or, on a terminal, ends the line). With ``thoughts=True`` the
    text is shown as a quoted "Thoughts" block (``Thinking: ...`` on a terminal).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        thoughts: bool = False,
        notebook: bool | None = None,
    ) -> None:
        self.thoughts = thoughts
        self.notebook = in_notebook() if notebook is None else notebook
        self.throttle = UpdateThrottle(clock=clock)
        self.pieces: list[str] = []
        self.handle: Any = None
        self.stale = False  # text added since the last update
        self.finished = False

    @property
    def text(self) -> str:
        """Everything added so far."""
        if len(self.pieces) > 1:
            self.pieces[:] = ["".join(self.pieces)]
        return self.pieces[0] if self.pieces else ""

    def add(self, piece: str) -> None:
        if not piece:
            return
        if not self.notebook:
            lead = "Thinking: " if self.thoughts and not self.pieces else ""
            sys.stdout.write(lead + piece)
            sys.stdout.flush()
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
        if self.finished:
            return
        self.finished = True
        if self.notebook and self.stale:
            self._update()
        elif not self.notebook and self.pieces:
            end = "\n\n" if self.thoughts else "" if self.pieces[-1].endswith("\n") else "\n"
            sys.stdout.write(end)
            sys.stdout.flush()


def _frame_size(typewriter: float | None) -> tuple[int, float]:
    """Return (characters per frame, pause after each) for a typewriter speed in
    characters a second; frames come at most MAX_UPDATES_PER_SECOND times a second.
    No typewriter, or ``$QUICKSTART_PACING=fast``: whole chunks, no pause."""
    if typewriter is not None and typewriter <= 0:
        raise ValueError(
            f"typewriter must be a positive number of characters a second, not {typewriter}"
        )
    if not typewriter or settings.pacing() == "fast":
        return sys.maxsize, 0.0
    step = max(1, math.ceil(typewriter / MAX_UPDATES_PER_SECOND))
    return step, step / typewriter


def _show(chunk: Any, answer: LiveMarkdown, thinking: LiveMarkdown | None, step: int):
    """Show one chunk: its thoughts, then its answer a frame of ``step`` characters at a
    time, yielding after each frame (where the typewriter pauses)."""
    text = chunk_text(chunk)
    if thinking is not None:
        thinking.add(thought_text(chunk))
        if text:
            thinking.finish()  # the answer starts below the thoughts
    for start in range(0, len(text), step):
        answer.add(text[start : start + step])
        yield


def stream_markdown(
    chunks: Iterable[Any],
    *,
    typewriter: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    thoughts: bool = False,
) -> str:
    """Render a stream into one Markdown output that updates in place; return its text.

    Args:
        chunks: ``GenerateContentResponse`` chunks (e.g. from
            ``client.models.generate_content_stream``) or strings.
        typewriter: Reveal the text at this many characters a second, as chat widgets
            do; None (the default) shows each chunk whole. No pauses under
            ``$QUICKSTART_PACING=fast``.
        sleep: The pause function; ``clock`` the throttle's time source (for tests).
        thoughts: Show thought parts in their own display above the answer (False:
            skip them). They are never in the returned text.

    Raises:
        StreamInterrupted: The stream broke after at least one chunk; the partial text
            stays on screen and is the exception's ``text``, the error its ``__cause__``.
        google.genai.errors.APIError: The request was refused before the first chunk
            (e.g. a bad key): the SDK's own error, with a note that explains it.
        ValueError: ``typewriter`` is not positive.
    """
    step, pause = _frame_size(typewriter)
    answer = LiveMarkdown(clock)
    thinking = LiveMarkdown(clock, thoughts=True) if thoughts else None
    received = 0
    try:
        for chunk in chunks:
            received += 1
            for _frame in _show(chunk, answer, thinking, step):
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


async def astream_markdown(
    chunks: AsyncIterable[Any],
    *,
    typewriter: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    thoughts: bool = False,
) -> str:
    """Async twin of :func:`stream_markdown` for ``client.aio`` streams (same errors)."""
    step, pause = _frame_size(typewriter)
    answer = LiveMarkdown(clock)
    thinking = LiveMarkdown(clock, thoughts=True) if thoughts else None
    received = 0
    try:
        async for chunk in chunks:
            received += 1
            for _frame in _show(chunk, answer, thinking, step):
                if pause:
                    await asyncio.sleep(pause)
    except Exception as exc:
        if received == 0:
            add_explanation(exc)
            raise
        raise StreamInterrupted(answer.text, exc) from exc
    finally:
        if thinking is not None:
            thinking.finish()
        answer.finish()
    return answer.text

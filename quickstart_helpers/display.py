"""Render a stream of chunks as one Markdown output that updates in place.

In Jupyter the text appears in a single ``display`` output that is updated as chunks
arrive (``update_display_data`` messages); on a terminal it is printed as it arrives.
Both return the full text.

Display updates are coalesced: each update re-sends the whole Markdown, so updating on
every chunk would send data growing with the square of the stream's length (about
400 MB for 10,000 chunks) and can overflow the kernel's output channel, which then
drops messages. The display is created with the first text and then updated at most
:data:`MAX_UPDATES_PER_SECOND` times a second (chunks arriving in between are shown by
the next update), and once more at the end with the whole text if the last update did
not show all of it. The text is kept in a list of pieces joined only when an update is
sent, so the cost stays linear in the stream's length.

Under ``QUICKSTART_PACING=fast`` (``quickstart run --pacing fast``, ``quickstart
refresh``, the tests) the typewriter effect does not pause: the text is shown as it
arrives.

Thought parts (``ThinkingConfig(include_thoughts=True)``) are never part of the answer:
they are skipped, or with ``thoughts=True`` shown apart, in their own display above
the answer (a quoted "Thoughts" block, throttled the same way; on a terminal, a line
marked ``Thinking:`` before the answer).

Errors: an error before the first chunk (the API refused the request, e.g. a bad key)
is the API's own error, re-raised as is with a note that explains it; only an error
after at least one chunk is a broken stream, raised as :class:`StreamInterrupted`.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from typing import Any

from . import settings
from .errors import StreamInterrupted

__all__ = [
    "MAX_UPDATES_PER_SECOND",
    "StreamInterrupted",
    "UpdateThrottle",
    "add_explanation",
    "astream_markdown",
    "chunk_text",
    "in_notebook",
    "stream_markdown",
    "thought_text",
    "typewriter_pauses",
]

#: Most display updates per second while a stream arrives (plus one final update).
#: 20 keeps the text visibly fluid (a frame every 50 ms, the typewriter's frame rate
#: too) while a 10,000-chunk stream costs about as much as printing it (see
#: ``benchmarks/``); more updates cost kernel time and output bandwidth for no visible gain.
MAX_UPDATES_PER_SECOND = 20


class UpdateThrottle:
    """Decides when a display may be updated: at most ``rate`` times a second.

    The first request is always allowed; later ones only once ``1 / rate`` seconds
    have passed since the last allowed one. Callers send a final update themselves.

    Args:
        rate: Most updates per second. Defaults to :data:`MAX_UPDATES_PER_SECOND`.
        clock: Monotonic time source in seconds (for tests). Defaults to
            ``time.monotonic``.

    Raises:
        ValueError: ``rate`` is not positive.
    """

    def __init__(
        self, rate: float = MAX_UPDATES_PER_SECOND, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of updates per second, not {rate}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        """Return whether an update may be sent now; if so, count it as sent."""
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True


def typewriter_pauses() -> bool:
    """Return whether the typewriter effect pauses: not when ``$QUICKSTART_PACING`` is ``fast``."""
    return settings.pacing() != "fast"


def add_explanation(err: BaseException) -> BaseException:
    """Attach a one-paragraph explanation (what went wrong, what to do) to an error.

    The explanation is :func:`quickstart_helpers._api_errors.explain_api_error`, added as an
    exception note (shown under the traceback; Python 3.11 and later) unless the error
    already carries it.

    Args:
        err: The exception, usually a ``google.genai.errors.APIError``.

    Returns:
        ``err`` itself.
    """
    from ._api_errors import explain_api_error

    note = explain_api_error(err)
    if hasattr(err, "add_note") and note not in (getattr(err, "__notes__", None) or []):
        err.add_note(note)
    return err


def chunk_text(chunk: Any) -> str:
    """Return the text of one chunk.

    Args:
        chunk: A ``GenerateContentResponse`` (its first candidate's text parts are
            joined; thought parts and non-text parts such as inline data are skipped,
            with no warning) or a ``str`` (returned as is).
    """
    if isinstance(chunk, str):
        return chunk
    candidates = getattr(chunk, "candidates", None) or []
    if not candidates or candidates[0].content is None:
        return ""
    parts = candidates[0].content.parts or []
    return "".join(p.text for p in parts if p.text and not getattr(p, "thought", False))


def thought_text(chunk: Any) -> str:
    """Return the thought-summary text of one chunk: its text parts with ``thought`` set.

    Args:
        chunk: A ``GenerateContentResponse`` (a ``str`` has no thoughts: ``""``).
    """
    candidates = getattr(chunk, "candidates", None) or []
    if isinstance(chunk, str) or not candidates or candidates[0].content is None:
        return ""
    parts = candidates[0].content.parts or []
    return "".join(p.text for p in parts if p.text and getattr(p, "thought", False))


def in_notebook() -> bool:
    """Return whether the code runs in a Jupyter kernel (rich displays are shown)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


#: The ``text/plain`` form of an ``IPython.display.Markdown`` output.
_MARKDOWN_PLAIN = "<IPython.core.display.Markdown object>"


class _Renderer:
    """Shows growing text: a Markdown display in Jupyter, stdout elsewhere.

    The pieces shown so far are kept in a list (joined only for a display update or
    when ``text`` is read), so appending stays linear at any length. In Jupyter the
    display is created with the first text, so a request refused before any text
    leaves no empty output behind.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, notebook: bool | None = None
    ) -> None:
        self._pieces: list[str] = []
        self._length = 0  # characters in _pieces
        self._shown = 0  # characters in the display (Jupyter only)
        self._throttle = UpdateThrottle(clock=clock)
        self.chunks = 0
        self.handle = None
        self.notebook = in_notebook() if notebook is None else notebook

    def _markdown(self, text: str) -> str:
        """Return the Markdown shown for ``text``."""
        return text

    def _bundle(self, text: str) -> dict[str, str]:
        # What display(Markdown(text)) sends, without running IPython's formatters.
        return {"text/markdown": self._markdown(text), "text/plain": _MARKDOWN_PLAIN}

    def _write(self, piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    @property
    def text(self) -> str:
        """Everything received so far."""
        if len(self._pieces) > 1:
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    def show(self, piece: str) -> None:
        """Append ``piece``: print it, or update the display if the throttle allows."""
        if not piece:
            return
        self._pieces.append(piece)
        self._length += len(piece)
        if not self.notebook:
            self._write(piece)
            return
        if self._throttle.ready() or self.handle is None:
            self._update()

    def _update(self) -> None:
        text = self.text
        if self.handle is None:
            from IPython.display import display

            self.handle = display(self._bundle(text), raw=True, display_id=True)
        else:
            self.handle.update(self._bundle(text), raw=True)
        self._shown = len(text)

    def finish(self) -> None:
        """Show the whole text: a final display update, or a closing newline."""
        if self.notebook:
            if self._length > self._shown:
                self._update()
        elif self._pieces and not self._pieces[-1].endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()


class _Thoughts(_Renderer):
    """Shows thought summaries apart from the answer: a quoted Markdown "Thoughts" block
    in Jupyter (created with the first thought, so above the answer's display; throttled
    like it), ``Thinking: ...`` and a blank line before the answer on a terminal."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.closed = False

    def _markdown(self, text: str) -> str:
        quoted = text.replace("\n", "\n> ")
        return f"> **Thoughts**\n>\n> {quoted}"

    def _write(self, piece: str) -> None:
        if self._length == len(piece):  # the first piece
            piece = "Thinking: " + piece
        super()._write(piece)

    def finish(self) -> None:
        """Show all thoughts once (a final display update, or a blank line)."""
        if self.closed:
            return
        self.closed = True
        if self.notebook:
            super().finish()
        elif self._pieces:
            sys.stdout.write("\n\n")
            sys.stdout.flush()


def _frames(text: str, typewriter: float | None) -> Iterator[tuple[str, float]]:
    """Yield (piece, pause-seconds) pairs revealing ``text`` at ``typewriter`` chars/s.

    Frames come at most :data:`MAX_UPDATES_PER_SECOND` times a second, so every frame
    passes the display throttle. Without a typewriter (or under fast pacing) the text
    is one frame with no pause.
    """
    if not typewriter or not typewriter_pauses():
        yield text, 0.0
        return
    step = max(1, math.ceil(typewriter / MAX_UPDATES_PER_SECOND))
    pause = step / typewriter
    for start in range(0, len(text), step):
        yield text[start : start + step], pause


def _check_typewriter(typewriter: float | None) -> None:
    if typewriter is not None and typewriter <= 0:
        raise ValueError(
            f"typewriter must be a positive number of characters per second, not {typewriter}"
        )


def _split_thoughts(chunk: Any, thinking: _Thoughts | None) -> str:
    """Show a chunk's thoughts (when asked for) and return its answer text.

    The thoughts are finished when the answer's first text arrives, so on a terminal
    the answer starts on its own line.
    """
    text = chunk_text(chunk)
    if thinking is not None:
        thinking.show(thought_text(chunk))
        if text:
            thinking.finish()
    return text


def _finish(renderer: _Renderer, thinking: _Thoughts | None) -> None:
    if thinking is not None:
        thinking.finish()
    renderer.finish()


def stream_markdown(
    chunks: Iterable[Any],
    *,
    typewriter: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    thoughts: bool = False,
) -> str:
    """Render a stream into one Markdown output that updates in place; return its text.

    In Jupyter the output is updated at most :data:`MAX_UPDATES_PER_SECOND` times a
    second and once more at the end with the whole text.

    Args:
        chunks: ``GenerateContentResponse`` chunks (e.g. from
            ``client.models.generate_content_stream``) or strings.
        typewriter: Reveal the text at most this many characters per second, like a
            chat widget's simulated stream. None (the default) shows each chunk whole.
            Ignored (no pauses) when ``$QUICKSTART_PACING`` is ``fast``.
        sleep: The pause function (for tests). Defaults to ``time.sleep``.
        clock: Monotonic time source for the update throttle (for tests). Defaults to
            ``time.monotonic``.
        thoughts: Show thought parts (``include_thoughts=True``) in their own display
            above the answer. False (the default) skips them. Either way they are not
            part of the answer or of the returned text.

    Returns:
        The full text of the stream (the answer, without thoughts).

    Raises:
        StreamInterrupted: The stream raised after at least one chunk; the partial text
            stays on screen and is in the exception's ``text``. The original error is
            its ``__cause__``.
        google.genai.errors.APIError: The request was refused before the first chunk
            (for example a bad key): the SDK's own error, with an explanation note.
        ValueError: ``typewriter`` is not positive.
    """
    _check_typewriter(typewriter)
    renderer = _Renderer(clock)
    thinking = _Thoughts(clock) if thoughts else None
    try:
        for chunk in chunks:
            renderer.chunks += 1
            text = _split_thoughts(chunk, thinking)
            for piece, pause in _frames(text, typewriter):
                renderer.show(piece)
                if pause:
                    sleep(pause)
    except Exception as exc:
        _finish(renderer, thinking)
        if renderer.chunks == 0:
            add_explanation(exc)
            raise  # refused before the first chunk: the API's own error, not a broken stream
        raise StreamInterrupted(renderer.text, exc) from exc
    except BaseException:  # KeyboardInterrupt: leave the partial text on screen
        _finish(renderer, thinking)
        raise
    _finish(renderer, thinking)
    return renderer.text


async def astream_markdown(
    chunks: AsyncIterable[Any],
    *,
    typewriter: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    thoughts: bool = False,
) -> str:
    """Async twin of :func:`stream_markdown` for ``client.aio`` streams.

    Args:
        chunks: An async iterable of chunks or strings, e.g. the result of
            ``await client.aio.models.generate_content_stream(...)``.
        typewriter: Characters per second, or None to show each chunk whole.
            Ignored (no pauses) when ``$QUICKSTART_PACING`` is ``fast``.
        clock: Monotonic time source for the update throttle (for tests).
        thoughts: Show thought parts apart, above the answer (see :func:`stream_markdown`).

    Returns:
        The full text of the stream (the answer, without thoughts).

    Raises:
        StreamInterrupted: The stream raised after at least one chunk; ``text`` holds
            the partial text.
        google.genai.errors.APIError: The request was refused before the first chunk:
            the SDK's own error, with an explanation note.
        ValueError: ``typewriter`` is not positive.
    """
    _check_typewriter(typewriter)
    renderer = _Renderer(clock)
    thinking = _Thoughts(clock) if thoughts else None
    try:
        async for chunk in chunks:
            renderer.chunks += 1
            text = _split_thoughts(chunk, thinking)
            for piece, pause in _frames(text, typewriter):
                renderer.show(piece)
                if pause:
                    await asyncio.sleep(pause)
    except Exception as exc:
        _finish(renderer, thinking)
        if renderer.chunks == 0:
            add_explanation(exc)
            raise  # refused before the first chunk: the API's own error, not a broken stream
        raise StreamInterrupted(renderer.text, exc) from exc
    except BaseException:  # KeyboardInterrupt, cancellation: leave the partial text
        _finish(renderer, thinking)
        raise
    _finish(renderer, thinking)
    return renderer.text

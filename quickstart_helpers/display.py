"""Render a stream of chunks as one Markdown output that updates in place.

In Jupyter the text appears in a single ``display`` output that is updated as chunks
arrive (``update_display_data`` messages); on a terminal it is printed as it arrives.
Both return the full text.

Display updates are coalesced: each update re-sends the whole Markdown, so updating on
every chunk would send data growing with the square of the stream's length (about
400 MB for 10,000 chunks) and can overflow the kernel's output channel, which then
drops messages. The display is updated at most :data:`MAX_UPDATES_PER_SECOND` times a
second (chunks arriving in between are shown by the next update), and always once more
at the end with the whole text. The text is kept in a list of pieces joined only when
an update is sent, so the cost stays linear in the stream's length.

Under ``QUICKSTART_PACING=fast`` (``quickstart run --pacing fast``, ``quickstart
refresh``, the tests) the typewriter effect does not pause: the text is shown as it
arrives.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from typing import Any

__all__ = [
    "MAX_UPDATES_PER_SECOND",
    "StreamInterrupted",
    "UpdateThrottle",
    "astream_markdown",
    "chunk_text",
    "in_notebook",
    "stream_markdown",
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
    return os.environ.get("QUICKSTART_PACING", "").strip().lower() != "fast"


class StreamInterrupted(RuntimeError):
    """A stream failed midway. ``text`` holds everything that arrived before it broke.

    Attributes:
        text: The partial text, already rendered.
    """

    def __init__(self, text: str, cause: BaseException) -> None:
        super().__init__(
            f"The stream broke after {len(text)} characters ({type(cause).__name__}: {cause}). "
            "The partial text is kept in .text; retry the request to get the whole answer."
        )
        self.text = text


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
    when ``text`` is read), so appending stays linear at any length.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._pieces: list[str] = []
        self._throttle = UpdateThrottle(clock=clock)
        self.handle = None
        if in_notebook():
            from IPython.display import display

            self.handle = display(self._bundle(""), raw=True, display_id=True)

    @staticmethod
    def _bundle(text: str) -> dict[str, str]:
        # What display(Markdown(text)) sends, without running IPython's formatters.
        return {"text/markdown": text, "text/plain": _MARKDOWN_PLAIN}

    @property
    def text(self) -> str:
        """Everything shown so far."""
        if len(self._pieces) > 1:
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    def show(self, piece: str) -> None:
        """Append ``piece``: print it, or update the display if the throttle allows."""
        if not piece:
            return
        self._pieces.append(piece)
        if self.handle is None:
            sys.stdout.write(piece)
            sys.stdout.flush()
            return
        if self._throttle.ready():
            self._update()

    def _update(self) -> None:
        self.handle.update(self._bundle(self.text), raw=True)

    def finish(self) -> None:
        """Show the whole text: a final display update, or a closing newline."""
        if self.handle is not None:
            self._update()
        elif self._pieces and not self._pieces[-1].endswith("\n"):
            sys.stdout.write("\n")
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


def stream_markdown(
    chunks: Iterable[Any],
    *,
    typewriter: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
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

    Returns:
        The full text of the stream.

    Raises:
        StreamInterrupted: The stream raised midway; the partial text stays on screen
            and is in the exception's ``text``. The original error is its ``__cause__``.
        ValueError: ``typewriter`` is not positive.
    """
    _check_typewriter(typewriter)
    renderer = _Renderer(clock)
    try:
        for chunk in chunks:
            for piece, pause in _frames(chunk_text(chunk), typewriter):
                renderer.show(piece)
                if pause:
                    sleep(pause)
    except Exception as exc:
        renderer.finish()
        raise StreamInterrupted(renderer.text, exc) from exc
    except BaseException:  # KeyboardInterrupt: leave the partial text on screen
        renderer.finish()
        raise
    renderer.finish()
    return renderer.text


async def astream_markdown(
    chunks: AsyncIterable[Any],
    *,
    typewriter: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Async twin of :func:`stream_markdown` for ``client.aio`` streams.

    Args:
        chunks: An async iterable of chunks or strings, e.g. the result of
            ``await client.aio.models.generate_content_stream(...)``.
        typewriter: Characters per second, or None to show each chunk whole.
            Ignored (no pauses) when ``$QUICKSTART_PACING`` is ``fast``.
        clock: Monotonic time source for the update throttle (for tests).

    Returns:
        The full text of the stream.

    Raises:
        StreamInterrupted: The stream raised midway; ``text`` holds the partial text.
        ValueError: ``typewriter`` is not positive.
    """
    _check_typewriter(typewriter)
    renderer = _Renderer(clock)
    try:
        async for chunk in chunks:
            for piece, pause in _frames(chunk_text(chunk), typewriter):
                renderer.show(piece)
                if pause:
                    await asyncio.sleep(pause)
    except Exception as exc:
        renderer.finish()
        raise StreamInterrupted(renderer.text, exc) from exc
    except BaseException:  # KeyboardInterrupt, cancellation: leave the partial text
        renderer.finish()
        raise
    renderer.finish()
    return renderer.text

"""Render a stream of chunks as one Markdown output that updates in place.

In Jupyter the text appears in a single ``display`` output that is updated as each
chunk arrives (``update_display_data`` messages); on a terminal it is printed as it
arrives. Both return the full text.

Thought parts (``ThinkingConfig(include_thoughts=True)``) are never part of the answer:
they are skipped, or with ``thoughts=True`` shown apart, in their own display above
the answer (a quoted "Thoughts" block; on a terminal, lines before the answer).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

from .errors import StreamInterrupted

__all__ = [
    "StreamInterrupted",
    "astream_markdown",
    "chunk_text",
    "in_notebook",
    "stream_markdown",
    "thought_text",
]

#: Updates per second while the typewriter reveals text.
_FRAMES_PER_SECOND = 30


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


class _Renderer:
    """Shows growing text: a Markdown display in Jupyter, stdout elsewhere."""

    def __init__(self) -> None:
        self.text = ""
        self.shown = 0
        self.handle = None
        if in_notebook():
            from IPython.display import Markdown, display

            self._markdown = Markdown
            self.handle = display(Markdown(""), display_id=True)

    def show(self, upto: int) -> None:
        if upto <= self.shown:
            return
        if self.handle is not None:
            self.handle.update(self._markdown(self.text[:upto]))
        else:
            sys.stdout.write(self.text[self.shown : upto])
            sys.stdout.flush()
        self.shown = upto

    def finish(self) -> None:
        self.show(len(self.text))
        if self.handle is None and self.text and not self.text.endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()


class _Thoughts:
    """Shows thought summaries apart from the answer: a quoted Markdown block in Jupyter,
    lines marked ``Thinking:`` on a terminal. Created before the answer's display so it
    sits above it."""

    def __init__(self) -> None:
        self.text = ""
        self.closed = False
        self.handle = None
        if in_notebook():
            from IPython.display import Markdown, display

            self._markdown = Markdown
            self.handle = display(Markdown(""), display_id=True)

    def add(self, text: str) -> None:
        if not text:
            return
        if self.handle is not None:
            self.text += text
            quoted = self.text.replace("\n", "\n> ")
            self.handle.update(self._markdown(f"> **Thoughts**\n>\n> {quoted}"))
            return
        if not self.text:
            sys.stdout.write("Thinking: ")
        self.text += text
        sys.stdout.write(text)
        sys.stdout.flush()

    def close(self) -> None:
        """End the thoughts on a terminal (a blank line before the answer)."""
        if not self.closed and self.handle is None and self.text:
            sys.stdout.write("\n\n")
            sys.stdout.flush()
        self.closed = True


def _steps(renderer: _Renderer, typewriter: float | None) -> Iterable[tuple[int, float]]:
    """Yield (reveal-up-to, pause-seconds) pairs for the text not yet shown."""
    end = len(renderer.text)
    if not typewriter:
        yield end, 0.0
        return
    step = max(1, round(typewriter / _FRAMES_PER_SECOND))
    pause = step / typewriter
    for upto in range(renderer.shown + step, end + step, step):
        yield min(upto, end), pause


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
    thoughts: bool = False,
) -> str:
    """Render a stream into one Markdown output that updates in place; return its text.

    Args:
        chunks: ``GenerateContentResponse`` chunks (e.g. from
            ``client.models.generate_content_stream``) or strings.
        typewriter: Reveal the text at most this many characters per second, like a
            chat widget's simulated stream. None (the default) shows each chunk whole.
        sleep: The pause function (for tests). Defaults to ``time.sleep``.
        thoughts: Show thought parts (``include_thoughts=True``) in their own display
            above the answer. False (the default) skips them. Either way they are not
            part of the answer or of the returned text.

    Returns:
        The full text of the stream (the answer, without thoughts).

    Raises:
        StreamInterrupted: The stream raised midway; the partial text stays on screen
            and is in the exception's ``text``. The original error is its ``__cause__``.
        ValueError: ``typewriter`` is not positive.
    """
    _check_typewriter(typewriter)
    thinking = _Thoughts() if thoughts else None
    renderer = _Renderer()
    try:
        for chunk in chunks:
            text = chunk_text(chunk)
            if thinking is not None:
                thinking.add(thought_text(chunk))
                if text:
                    thinking.close()
            renderer.text += text
            for upto, pause in _steps(renderer, typewriter):
                renderer.show(upto)
                if pause:
                    sleep(pause)
    except Exception as exc:
        renderer.finish()
        raise StreamInterrupted(renderer.text, exc) from exc
    renderer.finish()
    return renderer.text


async def astream_markdown(
    chunks: AsyncIterable[Any], *, typewriter: float | None = None, thoughts: bool = False
) -> str:
    """Async twin of :func:`stream_markdown` for ``client.aio`` streams.

    Args:
        chunks: An async iterable of chunks or strings, e.g. the result of
            ``await client.aio.models.generate_content_stream(...)``.
        typewriter: Characters per second, or None to show each chunk whole.
        thoughts: Show thought parts apart, above the answer (see :func:`stream_markdown`).

    Returns:
        The full text of the stream.

    Raises:
        StreamInterrupted: The stream raised midway; ``text`` holds the partial text.
        ValueError: ``typewriter`` is not positive.
    """
    _check_typewriter(typewriter)
    thinking = _Thoughts() if thoughts else None
    renderer = _Renderer()
    try:
        async for chunk in chunks:
            text = chunk_text(chunk)
            if thinking is not None:
                thinking.add(thought_text(chunk))
                if text:
                    thinking.close()
            renderer.text += text
            for upto, pause in _steps(renderer, typewriter):
                renderer.show(upto)
                if pause:
                    await asyncio.sleep(pause)
    except Exception as exc:
        renderer.finish()
        raise StreamInterrupted(renderer.text, exc) from exc
    renderer.finish()
    return renderer.text

"""Render a stream of chunks as one Markdown output that updates in place.

In Jupyter the text appears in a single ``display`` output that is updated as each
chunk arrives (``update_display_data`` messages); on a terminal it is printed as it
arrives. Both return the full text.

Errors: an error before the first chunk (the API refused the request, e.g. a bad key)
is the API's own error, re-raised as is with a note that explains it; only an error
after at least one chunk is a broken stream, raised as :class:`StreamInterrupted`.
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
    "add_explanation",
    "astream_markdown",
    "chunk_text",
    "in_notebook",
    "stream_markdown",
]

#: Updates per second while the typewriter reveals text.
_FRAMES_PER_SECOND = 30


def add_explanation(err: BaseException) -> BaseException:
    """Attach a one-paragraph explanation (what went wrong, what to do) to an error.

    The explanation is :func:`quickstart_helpers.errors.explain_api_error`, added as an
    exception note (shown under the traceback; Python 3.11 and later) unless the error
    already carries it.

    Args:
        err: The exception, usually a ``google.genai.errors.APIError``.

    Returns:
        ``err`` itself.
    """
    from .errors import explain_api_error

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
        self.chunks = 0
        self.handle = None
        self.notebook = in_notebook()

    def show(self, upto: int) -> None:
        if upto <= self.shown:
            return
        if self.notebook:
            from IPython.display import Markdown, display

            # The display is made with the first text, so a refused request leaves no
            # empty output behind.
            if self.handle is None:
                self.handle = display(Markdown(self.text[:upto]), display_id=True)
            else:
                self.handle.update(Markdown(self.text[:upto]))
        else:
            sys.stdout.write(self.text[self.shown : upto])
            sys.stdout.flush()
        self.shown = upto

    def finish(self) -> None:
        self.show(len(self.text))
        if not self.notebook and self.text and not self.text.endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()


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
) -> str:
    """Render a stream into one Markdown output that updates in place; return its text.

    Args:
        chunks: ``GenerateContentResponse`` chunks (e.g. from
            ``client.models.generate_content_stream``) or strings.
        typewriter: Reveal the text at most this many characters per second, like a
            chat widget's simulated stream. None (the default) shows each chunk whole.
        sleep: The pause function (for tests). Defaults to ``time.sleep``.

    Returns:
        The full text of the stream.

    Raises:
        StreamInterrupted: The stream raised after at least one chunk; the partial text
            stays on screen and is in the exception's ``text``. The original error is
            its ``__cause__``.
        google.genai.errors.APIError: The request was refused before the first chunk
            (for example a bad key): the SDK's own error, with an explanation note.
        ValueError: ``typewriter`` is not positive.
    """
    _check_typewriter(typewriter)
    renderer = _Renderer()
    try:
        for chunk in chunks:
            renderer.chunks += 1
            renderer.text += chunk_text(chunk)
            for upto, pause in _steps(renderer, typewriter):
                renderer.show(upto)
                if pause:
                    sleep(pause)
    except Exception as exc:
        renderer.finish()
        if renderer.chunks == 0:
            add_explanation(exc)
            raise  # refused before the first chunk: the API's own error, not a broken stream
        raise StreamInterrupted(renderer.text, exc) from exc
    renderer.finish()
    return renderer.text


async def astream_markdown(chunks: AsyncIterable[Any], *, typewriter: float | None = None) -> str:
    """Async twin of :func:`stream_markdown` for ``client.aio`` streams.

    Args:
        chunks: An async iterable of chunks or strings, e.g. the result of
            ``await client.aio.models.generate_content_stream(...)``.
        typewriter: Characters per second, or None to show each chunk whole.

    Returns:
        The full text of the stream.

    Raises:
        StreamInterrupted: The stream raised after at least one chunk; ``text`` holds
            the partial text.
        google.genai.errors.APIError: The request was refused before the first chunk:
            the SDK's own error, with an explanation note.
        ValueError: ``typewriter`` is not positive.
    """
    _check_typewriter(typewriter)
    renderer = _Renderer()
    try:
        async for chunk in chunks:
            renderer.chunks += 1
            renderer.text += chunk_text(chunk)
            for upto, pause in _steps(renderer, typewriter):
                renderer.show(upto)
                if pause:
                    await asyncio.sleep(pause)
    except Exception as exc:
        renderer.finish()
        if renderer.chunks == 0:
            add_explanation(exc)
            raise  # refused before the first chunk: the API's own error, not a broken stream
        raise StreamInterrupted(renderer.text, exc) from exc
    renderer.finish()
    return renderer.text

"""Every part of every chunk: text and inline images streamed together.

Image-capable models (``responseModalities`` ``["TEXT", "IMAGE"]``) stream text parts
and ``inlineData`` image parts interleaved, sometimes several parts in one chunk.
Reading ``chunk.text`` or ``parts[0]`` alone loses images; these helpers walk every
part in order, save each image as ``{stem}_{index}.{ext}``, show text as it arrives
and images as small previews, and count what arrived.

Text display: in Jupyter each run of text between two images is one Markdown output
(captions such as ``**Panel 1:**`` render in bold), created with the run's first text
and updated in place at most :data:`~quickstart_helpers.display.MAX_UPDATES_PER_SECOND`
times a second plus once at its end, like :func:`~quickstart_helpers.display.stream_markdown`.
Elsewhere (a terminal, a script) the text is printed as it arrives, Markdown and all.

Unknown MIME types: inline data whose MIME type is not in :data:`IMAGE_EXTENSIONS`
(PNG, JPEG, WebP) is still saved, as ``{stem}_{index}.bin``, with an
:class:`UnknownMimeTypeWarning` naming the type, so nothing that arrived is lost.
:func:`extension_for` itself raises ``ValueError`` for such a type.
"""

from __future__ import annotations

import io
import sys
import time
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from .display import LiveMarkdown, add_explanation, in_notebook
from .errors import PartsStreamInterrupted

__all__ = [
    "FALLBACK_EXTENSION",
    "IMAGE_EXTENSIONS",
    "PREVIEW_SIZE",
    "PartsStreamInterrupted",
    "PartsSummary",
    "StreamedPart",
    "UnknownMimeTypeWarning",
    "aiter_parts",
    "astream_parts",
    "extension_for",
    "image_filename",
    "image_size",
    "iter_parts",
    "preview_image",
    "save_inline_data",
    "stream_parts",
]

#: File extension for each image MIME type the API returns.
IMAGE_EXTENSIONS: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
}

#: Extension of inline data whose MIME type is not in :data:`IMAGE_EXTENSIONS`.
FALLBACK_EXTENSION = "bin"

#: Longest side, in pixels, of the previews shown in a notebook.
PREVIEW_SIZE = 320


class UnknownMimeTypeWarning(UserWarning):
    """Inline data had a MIME type with no known extension; it was saved as ``.bin``."""


def _bare_mime(mime_type: str) -> str:
    """``"Image/PNG; foo=1"`` -> ``"image/png"``."""
    return mime_type.split(";", 1)[0].strip().lower()


def extension_for(mime_type: str) -> str:
    """Return the file extension (no dot) for an image MIME type.

    Args:
        mime_type: E.g. ``"image/png"``; case and parameters (``; ...``) are ignored.

    Returns:
        ``"png"``, ``"jpeg"`` or ``"webp"``.

    Raises:
        ValueError: The MIME type is not one of :data:`IMAGE_EXTENSIONS`.
    """
    try:
        return IMAGE_EXTENSIONS[_bare_mime(mime_type)]
    except KeyError:
        known = ", ".join(IMAGE_EXTENSIONS)
        raise ValueError(
            f"No file extension is known for the MIME type {mime_type!r}; "
            f"the known image types are {known}. Add it to IMAGE_EXTENSIONS if it is one."
        ) from None


def _check_stem(stem: str) -> None:
    if not stem or "/" in stem or "\\" in stem or stem in (".", ".."):
        raise ValueError(
            f"stem must be a plain file name prefix such as 'storyboard', not {stem!r}; "
            "pass the folder separately."
        )


def image_filename(stem: str, index: int, mime_type: str) -> str:
    """Return ``{stem}_{index}.{ext}``, the name an inline image is saved under.

    Args:
        stem: File name prefix, e.g. ``"storyboard"``.
        index: The image's 1-based position in the stream.
        mime_type: The image's MIME type, e.g. ``"image/jpeg"``.

    Raises:
        ValueError: ``stem`` is empty or holds a path separator, ``index`` is below 1,
            or the MIME type is unknown (see :func:`extension_for`).
    """
    _check_stem(stem)
    if index < 1:
        raise ValueError(f"index counts images from 1, not {index}.")
    return f"{stem}_{index}.{extension_for(mime_type)}"


def save_inline_data(
    data: bytes, mime_type: str, folder: str | Path, stem: str, index: int
) -> Path:
    """Write one inline data part to ``folder/{stem}_{index}.{ext}``.

    An existing file of that name is replaced. Unknown MIME types are saved with the
    ``.bin`` extension and an :class:`UnknownMimeTypeWarning`.

    Args:
        data: The decoded bytes (``part.inline_data.data``).
        mime_type: The part's MIME type.
        folder: Destination folder; created if missing.
        stem: File name prefix.
        index: 1-based position of the part among the stream's inline data parts.

    Returns:
        The path written.

    Raises:
        ValueError: ``stem`` or ``index`` is not valid (see :func:`image_filename`).
    """
    _check_stem(stem)
    if index < 1:
        raise ValueError(f"index counts parts from 1, not {index}.")
    try:
        name = image_filename(stem, index, mime_type)
    except ValueError:
        name = f"{stem}_{index}.{FALLBACK_EXTENSION}"
        warnings.warn(
            f"Inline data {index} has the MIME type {mime_type!r}, which has no known "
            f"extension; its {len(data)} bytes were saved as {name}. Rename the file "
            "if you know its format.",
            UnknownMimeTypeWarning,
            stacklevel=2,
        )
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class StreamedPart:
    """One part of one chunk, with where it came from.

    Attributes:
        chunk: 0-based index of the chunk that carried the part.
        candidate: 0-based index of the candidate within the chunk.
        position: 0-based index of the part among all parts of the stream.
        part: The SDK's ``google.genai.types.Part``.
    """

    chunk: int
    candidate: int
    position: int
    part: Any

    @property
    def text(self) -> str | None:
        """The part's text, or None for a non-text part."""
        return self.part.text

    @property
    def thought(self) -> bool:
        """Whether the model marked the part as a thought (reasoning, not answer)."""
        return bool(getattr(self.part, "thought", False))

    @property
    def mime_type(self) -> str | None:
        """The inline data's MIME type, or None."""
        inline = self.part.inline_data
        return inline.mime_type if inline is not None else None

    @property
    def data(self) -> bytes | None:
        """The inline data's decoded bytes, or None."""
        inline = self.part.inline_data
        return inline.data if inline is not None else None

    @property
    def kind(self) -> Literal["text", "image", "inline_data", "other"]:
        """``"text"``, ``"image"`` (inline data ``image/*``), ``"inline_data"`` or ``"other"``."""
        if self.part.text is not None:
            return "text"
        if self.part.inline_data is not None:
            return (
                "image" if _bare_mime(self.mime_type or "").startswith("image/") else "inline_data"
            )
        return "other"


def _chunk_parts(chunk: Any, chunk_index: int, start: int) -> list[StreamedPart]:
    found: list[StreamedPart] = []
    for c, candidate in enumerate(getattr(chunk, "candidates", None) or []):
        content = candidate.content
        for part in (content.parts if content is not None else None) or []:
            found.append(StreamedPart(chunk_index, c, start + len(found), part))
    return found


def iter_parts(chunks: Iterable[Any]) -> Iterator[StreamedPart]:
    """Yield every part of every candidate of every chunk, in arrival order.

    Args:
        chunks: ``GenerateContentResponse`` chunks, e.g. from
            ``client.models.generate_content_stream(...)``.
    """
    position = 0
    for chunk_index, chunk in enumerate(chunks):
        for streamed in _chunk_parts(chunk, chunk_index, position):
            position += 1
            yield streamed


async def aiter_parts(chunks: AsyncIterable[Any]) -> AsyncIterator[StreamedPart]:
    """Async twin of :func:`iter_parts` for ``client.aio`` streams."""
    position = 0
    chunk_index = 0
    async for chunk in chunks:
        for streamed in _chunk_parts(chunk, chunk_index, position):
            position += 1
            yield streamed
        chunk_index += 1


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return ``(width, height)`` in pixels of encoded image bytes, or None if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def preview_image(data: bytes, mime_type: str, *, max_size: int = PREVIEW_SIZE) -> Any:
    """Return a small ``IPython.display.Image`` preview of an encoded image.

    The image is scaled down (never up) so its longest side is at most ``max_size``
    pixels, then re-encoded: JPEG stays JPEG (quality 80), anything else becomes PNG
    (reduced to 256 colours when it has no transparency). A preview of a 640×480
    panel is a few KB to about 15 KB, which keeps notebooks small.

    Args:
        data: The encoded image (PNG, JPEG, WebP or any format Pillow reads).
        mime_type: The image's MIME type.
        max_size: Longest side of the preview in pixels. Defaults to 320.

    Raises:
        ValueError: ``data`` is not an image Pillow can read, or ``max_size`` < 1.
    """
    from IPython.display import Image as IPythonImage
    from PIL import Image, UnidentifiedImageError

    if max_size < 1:
        raise ValueError(f"max_size must be a positive number of pixels, not {max_size}.")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"The {mime_type} inline data is not a readable image: {exc}") from exc
    image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if _bare_mime(mime_type) == "image/jpeg":
        image.convert("RGB").save(buffer, "JPEG", quality=80, optimize=True)
        fmt = "jpeg"
    else:
        if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
            image = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
        image.save(buffer, "PNG", optimize=True)
        fmt = "png"
    return IPythonImage(data=buffer.getvalue(), format=fmt)


class PartsSummary(BaseModel):
    """What a mixed text and image stream delivered.

    Attributes:
        chunks: Chunks received.
        text_parts: Text parts (answer and thought).
        thought_parts: Text parts the model marked as thoughts (not printed).
        image_parts: Inline data parts with an ``image/*`` MIME type.
        other_parts: Other parts: non-image inline data, function calls, etc.
        text_characters: Characters of answer text (thoughts excluded).
        image_bytes: Decoded bytes of all image parts.
        mime_types: Count of inline data parts per MIME type, in arrival order.
        files: Files saved, one per inline data part, in arrival order.
        finish_reason: The last ``finishReason`` received (e.g. ``"STOP"``), or None.
        text: The answer text (thoughts excluded), as it arrived.
    """

    chunks: int = 0
    text_parts: int = 0
    thought_parts: int = 0
    image_parts: int = 0
    other_parts: int = 0
    text_characters: int = 0
    image_bytes: int = 0
    mime_types: dict[str, int] = Field(default_factory=dict)
    files: list[Path] = Field(default_factory=list)
    finish_reason: str | None = None
    text: str = ""

    def describe(self) -> str:
        """Return the summary as short lines of plain text (file names, not paths)."""
        mimes = ", ".join(f"{m} × {n}" for m, n in self.mime_types.items()) or "none"
        files = ", ".join(p.name for p in self.files) or "none"
        text_line = f"Text parts:  {self.text_parts} ({self.text_characters:,} characters"
        if self.thought_parts:
            text_line += f", {self.thought_parts} thought parts"
        lines = [
            f"Chunks:      {self.chunks}",
            text_line + ")",
            f"Image parts: {self.image_parts} ({self.image_bytes:,} bytes)",
        ]
        if self.other_parts:
            lines.append(f"Other parts: {self.other_parts}")
        lines += [
            f"MIME types:  {mimes}",
            f"Files:       {files}",
            f"Finish:      {self.finish_reason or 'none'}",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


class _PartsRenderer:
    """Counts, saves and shows parts one at a time.

    A run of text parts (up to the next inline data part or the end) is shown by one
    :class:`~quickstart_helpers.display._Renderer`: a Markdown display in Jupyter,
    stdout elsewhere.
    """

    def __init__(
        self,
        folder: str | Path,
        stem: str,
        show: bool,
        preview_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_stem(stem)
        if preview_size < 1:
            raise ValueError(
                f"preview_size must be a positive number of pixels, not {preview_size}."
            )
        self.folder = Path(folder)
        self.stem = stem
        self.show = show
        self.preview_size = preview_size
        self.notebook = in_notebook()
        self.summary = PartsSummary()
        self._clock = clock
        self._text_parts: list[str] = []
        self._run: LiveMarkdown | None = None  # shows the current run of text

    def _show_text(self, text: str) -> None:
        if not self.show or not text:
            return
        if self._run is None:
            self._run = LiveMarkdown(self._clock, notebook=self.notebook)
        self._run.add(text)

    def _end_text(self) -> None:
        """Show the whole run of text (final display update, or a closing newline)."""
        if self._run is not None:
            self._run.finish()
            self._run = None

    def chunk(self, chunk: Any, index: int) -> None:
        self.summary.chunks = index + 1
        for candidate in getattr(chunk, "candidates", None) or []:
            if candidate.finish_reason is not None:
                reason = candidate.finish_reason
                self.summary.finish_reason = getattr(reason, "value", None) or str(reason)

    def part(self, streamed: StreamedPart) -> None:
        summary = self.summary
        kind = streamed.kind
        if kind == "text":
            summary.text_parts += 1
            if streamed.thought:
                summary.thought_parts += 1
                return
            text = streamed.text or ""
            self._text_parts.append(text)
            summary.text_characters += len(text)
            self._show_text(text)
            return
        if kind == "other":
            summary.other_parts += 1
            return
        data = streamed.data or b""
        mime = streamed.mime_type or "application/octet-stream"
        summary.mime_types[mime] = summary.mime_types.get(mime, 0) + 1
        if kind == "image":
            summary.image_parts += 1
            summary.image_bytes += len(data)
        else:
            summary.other_parts += 1
        path = save_inline_data(data, mime, self.folder, self.stem, len(summary.files) + 1)
        summary.files.append(path)
        if not self.show:
            return
        size = image_size(data) if kind == "image" else None
        dims = f"{size[0]}×{size[1]} px, " if size else ""
        self._end_text()
        print(f"[{path.name}: {mime}, {dims}{len(data):,} bytes]", flush=True)
        if self.notebook and size is not None:
            from IPython.display import display

            display(preview_image(data, mime, max_size=self.preview_size))

    def finish(self) -> None:
        self.summary.text = "".join(self._text_parts)
        self._end_text()
        if self.show:
            sys.stdout.flush()


def stream_parts(
    chunks: Iterable[Any],
    *,
    folder: str | Path,
    stem: str = "image",
    show: bool = True,
    preview_size: int = PREVIEW_SIZE,
    clock: Callable[[], float] = time.monotonic,
) -> PartsSummary:
    """Show, save and count every part of a text and image stream, as it arrives.

    Text is shown as it arrives: in Jupyter as Markdown, one output per run of text
    between images, updated in place (throttled); elsewhere printed as is. Each inline
    data part is saved as
    ``folder/{stem}_{index}.{ext}`` (index from 1 in arrival order; see
    :func:`save_inline_data`), announced with a line giving its file name, MIME type,
    pixel size and byte count, and in Jupyter shown as a preview at most
    ``preview_size`` pixels on its longest side (see :func:`preview_image`).

    Args:
        chunks: ``GenerateContentResponse`` chunks from ``generate_content_stream``.
        folder: Where to save inline data; created if missing.
        stem: File name prefix. Defaults to ``"image"``.
        show: Show text, image captions and previews. Defaults to True.
        preview_size: Longest side of previews in pixels. Defaults to 320.
        clock: Monotonic time source for the display throttle (for tests). Defaults
            to ``time.monotonic``.

    Returns:
        The :class:`PartsSummary` of what arrived.

    Raises:
        PartsStreamInterrupted: The stream raised midway; what arrived is kept (files
            saved, text shown) and is in the exception's ``summary``; the original
            error is its ``__cause__``. An error before the first chunk (such as the
            SDK's ``google.genai.errors.APIError`` for a refused request) is raised
            as is, with a note that explains it.
        ValueError: ``stem`` or ``preview_size`` is not valid.
    """
    renderer = _PartsRenderer(folder, stem, show, preview_size, clock)
    position = 0
    try:
        for index, chunk in enumerate(chunks):
            renderer.chunk(chunk, index)
            for streamed in _chunk_parts(chunk, index, position):
                position += 1
                renderer.part(streamed)
    except Exception as exc:
        renderer.finish()
        if renderer.summary.chunks == 0:
            add_explanation(exc)
            raise  # refused before the first chunk: the API's own error, not a broken stream
        raise PartsStreamInterrupted(renderer.summary, exc) from exc
    except BaseException:  # KeyboardInterrupt, cancellation: leave what arrived on screen
        renderer.finish()
        raise
    renderer.finish()
    return renderer.summary


async def astream_parts(
    chunks: AsyncIterable[Any],
    *,
    folder: str | Path,
    stem: str = "image",
    show: bool = True,
    preview_size: int = PREVIEW_SIZE,
    clock: Callable[[], float] = time.monotonic,
) -> PartsSummary:
    """Async twin of :func:`stream_parts` for ``client.aio`` streams.

    Args:
        chunks: The result of ``await client.aio.models.generate_content_stream(...)``.
        folder: Where to save inline data; created if missing.
        stem: File name prefix. Defaults to ``"image"``.
        show: Show text, image captions and previews. Defaults to True.
        preview_size: Longest side of previews in pixels. Defaults to 320.
        clock: Monotonic time source for the display throttle (for tests).

    Returns:
        The :class:`PartsSummary` of what arrived.

    Raises:
        PartsStreamInterrupted: The stream raised midway; ``summary`` holds what arrived.
            An error before the first chunk is raised as is, with an explanation note.
        ValueError: ``stem`` or ``preview_size`` is not valid.
    """
    renderer = _PartsRenderer(folder, stem, show, preview_size, clock)
    position = 0
    index = 0
    try:
        async for chunk in chunks:
            renderer.chunk(chunk, index)
            for streamed in _chunk_parts(chunk, index, position):
                position += 1
                renderer.part(streamed)
            index += 1
    except Exception as exc:
        renderer.finish()
        if renderer.summary.chunks == 0:
            add_explanation(exc)
            raise  # refused before the first chunk: the API's own error, not a broken stream
        raise PartsStreamInterrupted(renderer.summary, exc) from exc
    except BaseException:  # KeyboardInterrupt, cancellation: leave what arrived on screen
        renderer.finish()
        raise
    renderer.finish()
    return renderer.summary

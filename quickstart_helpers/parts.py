"""Every part of every chunk: text and inline images streamed together.

Image models stream text and ``inline_data`` image parts interleaved, sometimes several in
one chunk, so ``chunk.text`` or ``parts[0]`` alone loses images: :func:`stream_parts` walks
every part of every chunk in order.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from .display import LiveMarkdown, add_explanation, in_notebook
from .errors import PartsStreamInterrupted

if TYPE_CHECKING:
    import PIL.Image
    from google.genai import types

#: File extension of each image MIME type the API returns.
IMAGE_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}

#: Longest side, in pixels, of the previews shown in a notebook.
PREVIEW_SIZE = 320


class UnknownMimeTypeWarning(UserWarning):
    """Inline data had a MIME type with no known extension; it was saved as ``.bin``."""


def _bare_mime(mime_type: str) -> str:
    return mime_type.split(";", 1)[0].strip().lower()  # "Image/PNG; x=1" -> "image/png"


def save_inline_data(
    data: bytes, mime_type: str, folder: str | Path, stem: str, index: int
) -> Path:
    """Write one inline data part to ``folder/{stem}_{index}.{ext}``, the extension from
    :data:`IMAGE_EXTENSIONS`; another MIME type is saved as ``.bin`` with a warning."""
    extension = IMAGE_EXTENSIONS.get(_bare_mime(mime_type))
    path = Path(folder) / f"{stem}_{index}.{extension or 'bin'}"
    if extension is None:
        why = f"{mime_type!r} has no known file extension: its data was saved as {path.name}."
        warnings.warn(why, UnknownMimeTypeWarning, stacklevel=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _parts(chunk: types.GenerateContentResponse) -> list[types.Part]:
    candidates = chunk.candidates or []
    return [p for c in candidates if c.content for p in c.content.parts or []]


def open_image(data: bytes) -> PIL.Image.Image | None:
    """The image ``data`` encodes, fully read with Pillow, or None if it is not readable."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return image


def preview_image(image: PIL.Image.Image, mime_type: str) -> Any:
    """An ``IPython.display.Image`` at most :data:`PREVIEW_SIZE` pixels a side (never scaled
    up): JPEG stays JPEG (quality 80), others become PNG (256 colours when opaque), so the
    notebook stays small."""
    from IPython.display import Image as IPythonImage
    from PIL import Image

    image.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if _bare_mime(mime_type) == "image/jpeg":
        image.convert("RGB").save(buffer, "JPEG", quality=80, optimize=True)
        return IPythonImage(data=buffer.getvalue(), format="jpeg")
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        image = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    image.save(buffer, "PNG", optimize=True)
    return IPythonImage(data=buffer.getvalue(), format="png")


class PartsSummary(BaseModel):
    """What a mixed stream delivered. ``text_parts`` count thoughts too (not shown,
    counted apart); ``other_parts`` are non-image inline data, function calls...;
    ``mime_types`` counts inline data parts per type; ``text`` is the answer."""

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

    def __str__(self) -> str:
        """The summary as short lines of plain text (file names, not paths)."""
        thoughts = f", {self.thought_parts} thought parts" if self.thought_parts else ""
        lines = [
            f"Chunks:      {self.chunks}",
            f"Text parts:  {self.text_parts} ({self.text_characters:,} characters{thoughts})",
            f"Image parts: {self.image_parts} ({self.image_bytes:,} bytes)",
            f"Other parts: {self.other_parts}" if self.other_parts else "",
            "MIME types:  "
            + (", ".join(f"{m} × {n}" for m, n in self.mime_types.items()) or "none"),
            f"Files:       {', '.join(p.name for p in self.files) or 'none'}",
            f"Finish:      {self.finish_reason or 'none'}",
        ]
        return "\n".join(line for line in lines if line)


class _Parts:
    """Counts, saves and shows the parts of one stream, one at a time."""

    def __init__(self, folder: str | Path, stem: str, show: bool, clock: Any) -> None:
        if not stem or "/" in stem or "\\" in stem or stem in (".", ".."):
            raise ValueError(f"stem must be a plain file name prefix (e.g. 'board'), not {stem!r}.")
        self.folder, self.stem, self.show, self.clock = folder, stem, show, clock
        self.notebook = in_notebook()
        self.summary = PartsSummary()
        self.pieces: list[str] = []  # the answer's text, joined at the end (linear)
        self.run: LiveMarkdown | None = None  # shows the current run of text

    def chunk(self, chunk: types.GenerateContentResponse) -> None:
        self.summary.chunks += 1
        for candidate in chunk.candidates or []:
            if candidate.finish_reason is not None:
                self.summary.finish_reason = candidate.finish_reason.value
        for part in _parts(chunk):
            self.part(part)

    def part(self, part: types.Part) -> None:
        summary = self.summary
        if part.text is not None:
            summary.text_parts += 1
            if part.thought:
                summary.thought_parts += 1
                return
            self.pieces.append(part.text)
            summary.text_characters += len(part.text)
            if self.show and part.text:
                self.run = self.run or LiveMarkdown(self.clock, notebook=self.notebook)
                self.run.add(part.text)
            return
        if part.inline_data is None:
            summary.other_parts += 1
            return
        data = part.inline_data.data or b""
        mime = part.inline_data.mime_type or "application/octet-stream"
        summary.mime_types[mime] = summary.mime_types.get(mime, 0) + 1
        is_image = _bare_mime(mime).startswith("image/")
        if is_image:
            summary.image_parts += 1
            summary.image_bytes += len(data)
        else:
            summary.other_parts += 1
        path = save_inline_data(data, mime, self.folder, self.stem, len(summary.files) + 1)
        summary.files.append(path)
        if not self.show:
            return
        self.end_text()
        image = open_image(data) if is_image else None
        pixels = f"{image.width}×{image.height} px, " if image else ""
        print(f"[{path.name}: {mime}, {pixels}{len(data):,} bytes]", flush=True)
        if self.notebook and image is not None:
            from IPython.display import display

            display(preview_image(image, mime))

    def end_text(self) -> None:
        """Show the whole run of text (a final display update, or the end of the line)."""
        if self.run is not None:
            self.run.finish()
            self.run = None

    def finish(self) -> PartsSummary:
        self.end_text()
        self.summary.text = "".join(self.pieces)
        return self.summary


def stream_parts(
    chunks: Iterable[types.GenerateContentResponse],
    *,
    folder: str | Path,
    stem: str = "image",
    show: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> PartsSummary:
    """Show, save and count every part of a text and image stream, as it arrives.

    Each inline data part is saved in ``folder`` (:func:`save_inline_data`: nothing is lost).
    With ``show``, each run of text between two images is shown as it arrives (in Jupyter as
    one Markdown output, throttled like ``stream_markdown``), each file gets a line (name,
    MIME type, pixels, bytes) and, in Jupyter, a preview at most :data:`PREVIEW_SIZE` pixels a
    side. ``clock`` is the throttle's time. A stream that breaks midway raises
    :class:`PartsStreamInterrupted`, whose ``summary`` keeps what arrived; an error before the
    first chunk (a refused request) is raised as is, with a note that explains it.
    """
    parts = _Parts(folder, stem, show, clock)
    try:
        for chunk in chunks:
            parts.chunk(chunk)
    except Exception as exc:
        if parts.summary.chunks == 0:
            add_explanation(exc)
            raise  # refused: the API's own error, not a broken stream
        raise PartsStreamInterrupted(parts.finish(), exc) from exc
    finally:  # also on KeyboardInterrupt: what arrived stays on screen
        parts.finish()
    return parts.summary

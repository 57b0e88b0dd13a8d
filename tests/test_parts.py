"""Unit tests of quickstart_helpers.parts: file names, saving, showing, the summary."""

from __future__ import annotations

import io
import sys
import warnings

import pytest
from google.genai import types
from PIL import Image

from quickstart_helpers import parts
from quickstart_helpers._api_errors import explain_api_error
from quickstart_helpers.display import MAX_UPDATES_PER_SECOND
from quickstart_helpers.parts import (
    PartsStreamInterrupted,
    UnknownMimeTypeWarning,
    open_image,
    preview_image,
    save_inline_data,
    stream_parts,
)

from ._kernel import execute_cells


def encoded(fmt: str, size: tuple[int, int] = (64, 48), colour=(200, 40, 40)) -> bytes:
    """Encode a small real image with Pillow."""
    buffer = io.BytesIO()
    image = Image.new("RGB", size, colour)
    for x in range(0, size[0], 4):  # a few stripes so it is not one flat colour
        image.paste((20, 20, 160), (x, 0, x + 1, size[1]))
    image.save(buffer, fmt)
    return buffer.getvalue()


PNG = encoded("PNG")
JPEG = encoded("JPEG", (80, 60))


def chunk(*items: types.Part, finish: str | None = None) -> types.GenerateContentResponse:
    """A real SDK chunk with the given parts in its first candidate."""
    candidate = types.Candidate(
        content=types.Content(role="model", parts=list(items)),
        index=0,
        finish_reason=finish,
    )
    return types.GenerateContentResponse(candidates=[candidate])


def text(value: str, *, thought: bool = False) -> types.Part:
    return types.Part(text=value, thought=thought or None)


def blob(data: bytes, mime: str) -> types.Part:
    return types.Part(inline_data=types.Blob(data=data, mime_type=mime))


def mixed_stream() -> list[types.GenerateContentResponse]:
    return [
        chunk(text("Intro. ")),
        chunk(text("Panel 1"), blob(PNG, "image/png")),
        chunk(blob(JPEG, "image/jpeg"), text("Panel 2")),
        chunk(text("The end."), finish="STOP"),
    ]


# -- MIME types and file names -----------------------------------------------------------
@pytest.mark.parametrize(
    ("mime", "ext"),
    [
        ("image/png", "png"),
        ("image/jpeg", "jpeg"),
        ("image/webp", "webp"),
        ("IMAGE/PNG", "png"),
        ("image/jpeg; quality=high", "jpeg"),
        (" image/webp ", "webp"),
    ],
)
def test_the_extension_comes_from_the_mime_type(tmp_path, mime: str, ext: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert save_inline_data(PNG, mime, tmp_path, "x", 1).name == f"x_1.{ext}"


@pytest.mark.parametrize("mime", ["image/gif", "image/jpg", "audio/pcm;rate=24000", "", "png"])
def test_an_unknown_mime_type_is_saved_as_bin(tmp_path, mime: str) -> None:
    with pytest.warns(UnknownMimeTypeWarning, match="no known file extension"):
        assert save_inline_data(PNG, mime, tmp_path, "x", 1).name == "x_1.bin"


def test_saved_file_names(tmp_path) -> None:
    names = [
        save_inline_data(PNG, "image/png", tmp_path, "storyboard", 1).name,
        save_inline_data(JPEG, "image/jpeg", tmp_path, "panel", 12).name,
        save_inline_data(PNG, "image/webp", tmp_path, "x", 3).name,
    ]
    assert names == ["storyboard_1.png", "panel_12.jpeg", "x_3.webp"]


# -- saving ----------------------------------------------------------------------------
def test_save_inline_data_writes_the_bytes(tmp_path) -> None:
    path = save_inline_data(JPEG, "image/jpeg", tmp_path / "new" / "folder", "shot", 2)
    assert path == tmp_path / "new" / "folder" / "shot_2.jpeg"
    assert path.read_bytes() == JPEG
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (80, 60)


def test_save_inline_data_unknown_type_is_kept_as_bin_with_a_warning(tmp_path) -> None:
    gif = encoded("GIF")
    with pytest.warns(UnknownMimeTypeWarning, match=r"'image/gif'.*saved as img_1\.bin"):
        path = save_inline_data(gif, "image/gif", tmp_path, "img", 1)
    assert path.name == "img_1.bin"
    assert path.read_bytes() == gif


# -- every part of every chunk -----------------------------------------------------------
def test_chunks_without_content_are_counted_and_skipped(tmp_path) -> None:
    empty = [
        types.GenerateContentResponse(),
        types.GenerateContentResponse(candidates=[types.Candidate(index=0)]),
        chunk(text("a")),
    ]
    summary = stream_parts(empty, folder=tmp_path, show=False)
    assert (summary.chunks, summary.text_parts, summary.text) == (3, 1, "a")


def test_function_calls_and_audio_count_as_other_parts(tmp_path) -> None:
    call = types.Part(function_call=types.FunctionCall(name="f", args={}))
    pcm = blob(b"\0\0", "audio/pcm;rate=24000")
    with pytest.warns(UnknownMimeTypeWarning):
        summary = stream_parts([chunk(call, pcm)], folder=tmp_path, show=False)
    assert (summary.other_parts, summary.image_parts, len(summary.files)) == (2, 0, 1)


# -- streaming, saving and counting --------------------------------------------------------
def test_stream_parts_saves_every_image_and_counts(tmp_path) -> None:
    summary = stream_parts(mixed_stream(), folder=tmp_path, stem="board", show=False)
    assert [p.name for p in summary.files] == ["board_1.png", "board_2.jpeg"]
    assert [p.read_bytes() for p in summary.files] == [PNG, JPEG]
    assert summary.chunks == 4
    assert summary.text_parts == 4
    assert summary.image_parts == 2
    assert summary.image_bytes == len(PNG) + len(JPEG)
    assert summary.mime_types == {"image/png": 1, "image/jpeg": 1}
    assert summary.text == "Intro. Panel 1Panel 2The end."
    assert summary.text_characters == len(summary.text)
    assert summary.finish_reason == "STOP"


def test_stream_parts_prints_text_and_one_line_per_image_in_order(tmp_path, capsys) -> None:
    stream_parts(mixed_stream(), folder=tmp_path, stem="board")
    out = capsys.readouterr().out
    assert out == (
        "Intro. Panel 1\n"
        f"[board_1.png: image/png, 64×48 px, {len(PNG):,} bytes]\n"
        f"[board_2.jpeg: image/jpeg, 80×60 px, {len(JPEG):,} bytes]\n"
        "Panel 2The end.\n"
    )


class _FakeJupyter:
    """Stands in for ``IPython.display.display``: records what a notebook would show.

    ``events`` lists ``("markdown", text, display_number)`` for each Markdown display
    or update and ``("image", format, size)`` for each image preview, in order.
    """

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.displays = 0

    def display(self, obj, raw: bool = False, display_id: bool = False):
        if raw:  # a Markdown bundle, updated in place through the returned handle
            assert display_id and obj["text/plain"] == "<IPython.core.display.Markdown object>"
            self.displays += 1
            return _FakeHandle(self, self.displays, obj)
        self.events.append(("image", obj.format, Image.open(io.BytesIO(obj.data)).size))
        return None


class _FakeHandle:
    def __init__(self, jupyter: _FakeJupyter, number: int, bundle: dict) -> None:
        self.jupyter, self.number = jupyter, number
        self.update(bundle, raw=True)

    def update(self, bundle: dict, raw: bool = False) -> None:
        assert raw
        self.jupyter.events.append(("markdown", bundle["text/markdown"], self.number))


@pytest.fixture
def jupyter(monkeypatch) -> _FakeJupyter:
    """Make stream_parts believe it runs in Jupyter; record what it displays."""
    import IPython.display

    fake = _FakeJupyter()
    monkeypatch.setattr(parts, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", fake.display)
    return fake


def test_stream_parts_displays_a_preview_per_image_in_a_notebook(tmp_path, jupyter) -> None:
    stream_parts(mixed_stream(), folder=tmp_path)  # small images: shown at their own size
    assert [e[1:] for e in jupyter.events if e[0] == "image"] == [
        ("png", (64, 48)),
        ("jpeg", (80, 60)),
    ]


def test_stream_parts_shows_each_run_of_text_as_one_markdown_output_in_a_notebook(
    tmp_path, jupyter, capsys
) -> None:
    stream = [
        chunk(text("Here is the **storyboard**.\n\n")),
        chunk(text("**Panel 1:** a cat"), blob(PNG, "image/png")),
        chunk(text("**Panel 2:** a "), text("storm")),
        chunk(text(" at sea."), finish="STOP"),
    ]
    summary = stream_parts(stream, folder=tmp_path, stem="board", clock=lambda: 0.0)
    # Markdown, not printed text: the asterisks reach Jupyter's Markdown renderer.
    assert jupyter.events == [
        ("markdown", "Here is the **storyboard**.\n\n", 1),
        ("markdown", "Here is the **storyboard**.\n\n**Panel 1:** a cat", 1),
        ("image", "png", (64, 48)),
        ("markdown", "**Panel 2:** a ", 2),
        ("markdown", "**Panel 2:** a storm at sea.", 2),
    ]
    # stdout holds only the line naming the saved image.
    assert capsys.readouterr().out == f"[board_1.png: image/png, 64×48 px, {len(PNG):,} bytes]\n"
    assert (
        summary.text
        == "Here is the **storyboard**.\n\n**Panel 1:** a cat**Panel 2:** a storm at sea."
    )


def test_stream_parts_markdown_updates_are_throttled_in_a_notebook(tmp_path, jupyter) -> None:
    now = [0.0]

    def source():
        for i in range(1000):  # a text part every millisecond: 1 s of stream
            now[0] = i / 1000
            yield chunk(text(f"{i} "))

    summary = stream_parts(source(), folder=tmp_path, clock=lambda: now[0])
    shown = [e[1] for e in jupyter.events]
    assert jupyter.displays == 1
    assert len(shown) == MAX_UPDATES_PER_SECOND + 1  # throttled, then the whole text
    assert shown[-1] == summary.text == "".join(f"{i} " for i in range(1000))


def test_stream_parts_broken_stream_in_a_notebook_shows_the_partial_text(tmp_path, jupyter) -> None:
    def broken():
        yield chunk(text("kept "))
        yield chunk(text("too"))
        raise ConnectionError("connection reset")

    with pytest.raises(PartsStreamInterrupted):
        stream_parts(broken(), folder=tmp_path, clock=lambda: 0.0)
    assert jupyter.events[-1] == ("markdown", "kept too", 1)


def test_stream_parts_in_a_jupyter_kernel_stores_markdown_captions(tmp_path) -> None:
    """A real kernel (nbclient): each caption is a text/markdown output, in stream order."""
    cells = execute_cells(
        "import io\n"
        "from google.genai import types\n"
        "from PIL import Image\n"
        "from quickstart_helpers.parts import stream_parts\n"
        "png = io.BytesIO()\n"
        "Image.new('RGB', (40, 30), (200, 40, 40)).save(png, 'PNG')\n"
        "def chunk(*parts):\n"
        "    content = types.Content(role='model', parts=list(parts))\n"
        "    candidate = types.Candidate(content=content)\n"
        "    return types.GenerateContentResponse(candidates=[candidate])\n"
        "blob = types.Blob(data=png.getvalue(), mime_type='image/png')\n"
        "image = types.Part(inline_data=blob)\n"
        "stream = [\n"
        "    chunk(types.Part(text='**Panel 1:** ')),\n"
        "    chunk(types.Part(text='a cat'), image),\n"
        "    chunk(types.Part(text='**The end.**')),\n"
        "]\n"
        f"summary = stream_parts(stream, folder={str(tmp_path)!r}, stem='board')",
    )
    outputs = cells[0].outputs
    size = (tmp_path / "board_1.png").stat().st_size
    shown = [(o.output_type, sorted(o.get("data", {})) or o.get("text")) for o in outputs]
    assert shown == [
        ("display_data", ["text/markdown", "text/plain"]),
        ("stream", f"[board_1.png: image/png, 40×30 px, {size:,} bytes]\n"),
        ("display_data", ["image/png", "text/plain"]),
        ("display_data", ["text/markdown", "text/plain"]),
    ]
    assert outputs[0].data["text/markdown"] == "**Panel 1:** a cat"
    assert outputs[3].data["text/markdown"] == "**The end.**"


def test_stream_parts_prints_markdown_as_is_outside_jupyter(tmp_path, capsys) -> None:
    stream = [chunk(text("**Panel 1:** a cat")), chunk(blob(PNG, "image/png"))]
    stream_parts(stream, folder=tmp_path, stem="board")
    assert capsys.readouterr().out == (
        f"**Panel 1:** a cat\n[board_1.png: image/png, 64×48 px, {len(PNG):,} bytes]\n"
    )


def test_stream_parts_thoughts_are_counted_not_printed(tmp_path, capsys) -> None:
    stream = [chunk(text("planning the panels", thought=True)), chunk(text("Answer."))]
    summary = stream_parts(stream, folder=tmp_path)
    assert capsys.readouterr().out == "Answer.\n"
    assert (summary.text_parts, summary.thought_parts, summary.text) == (2, 1, "Answer.")
    assert "1 thought parts" in str(summary)


def test_stream_parts_keeps_non_image_inline_data(tmp_path, capsys) -> None:
    stream = [chunk(blob(b"\x01\x02\x03", "application/x-custom"))]
    with pytest.warns(UnknownMimeTypeWarning):
        summary = stream_parts(stream, folder=tmp_path, stem="data")
    assert (summary.image_parts, summary.other_parts) == (0, 1)
    assert summary.files[0].name == "data_1.bin"
    assert summary.files[0].read_bytes() == b"\x01\x02\x03"
    assert summary.mime_types == {"application/x-custom": 1}
    assert "[data_1.bin: application/x-custom, 3 bytes]" in capsys.readouterr().out


def test_stream_parts_broken_stream_keeps_what_arrived(tmp_path) -> None:
    def broken():
        yield from mixed_stream()[:2]
        raise ConnectionError("connection reset")

    with pytest.raises(PartsStreamInterrupted, match="after 2 chunks") as caught:
        stream_parts(broken(), folder=tmp_path, show=False)
    summary = caught.value.summary
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert summary.text == "Intro. Panel 1"
    assert [p.read_bytes() for p in summary.files] == [PNG]


def test_stream_parts_error_before_the_first_chunk_is_raised_as_is(tmp_path) -> None:
    def refused():
        raise PermissionError("request refused")
        yield  # pragma: no cover - makes this a generator

    with pytest.raises(PermissionError, match="request refused") as info:
        stream_parts(refused(), folder=tmp_path)
    if sys.version_info >= (3, 11):
        assert info.value.__notes__ == [explain_api_error(info.value)]


@pytest.mark.parametrize("stem", ["", "a/b", "a\\b", ".."])
def test_stream_parts_rejects_a_bad_stem_before_reading(tmp_path, stem: str) -> None:
    consumed = []

    def source():
        consumed.append(True)
        yield chunk(text("x"))

    with pytest.raises(ValueError, match="stem must be a plain file name prefix"):
        stream_parts(source(), folder=tmp_path, stem=stem)
    assert consumed == []


def test_the_summary_lists_counts_and_file_names(tmp_path) -> None:
    summary = stream_parts(mixed_stream(), folder=tmp_path, stem="b", show=False)
    described = str(summary)
    assert "Chunks:      4" in described
    assert "Text parts:  4 (29 characters)" in described
    assert f"Image parts: 2 ({len(PNG) + len(JPEG):,} bytes)" in described
    assert "MIME types:  image/png × 1, image/jpeg × 1" in described
    assert "Files:       b_1.png, b_2.jpeg" in described
    assert str(tmp_path) not in described  # file names only: deterministic output


# -- previews ------------------------------------------------------------------------------
def test_preview_image_scales_down_and_keeps_jpeg() -> None:
    big = encoded("JPEG", (1024, 768))
    preview = preview_image(open_image(big), "image/jpeg")
    assert preview.format == "jpeg"
    assert Image.open(io.BytesIO(preview.data)).size == (320, 240)


def test_preview_image_never_scales_up_and_makes_png() -> None:
    preview = preview_image(open_image(PNG), "image/webp")
    assert preview.format == "png"
    assert Image.open(io.BytesIO(preview.data)).size == (64, 48)


def test_open_image() -> None:
    assert open_image(JPEG).size == (80, 60)
    assert open_image(b"nope") is None
    assert open_image(PNG[: len(PNG) // 2]) is None  # cut short: not a readable image


def test_an_unreadable_image_is_saved_without_size_or_preview(tmp_path, jupyter, capsys) -> None:
    stream_parts([chunk(blob(b"not an image", "image/png"))], folder=tmp_path, stem="x")
    assert capsys.readouterr().out == "[x_1.png: image/png, 12 bytes]\n"
    assert jupyter.events == []
    assert (tmp_path / "x_1.png").read_bytes() == b"not an image"


def test_no_warning_for_known_types(tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stream_parts(mixed_stream(), folder=tmp_path, show=False)

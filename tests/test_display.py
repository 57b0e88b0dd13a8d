"""stream_markdown: terminal rendering, typewriter pacing, broken streams, Jupyter updates."""

from __future__ import annotations

import asyncio
import sys

import nbformat
import pytest
from google.genai import errors, types
from nbclient import NotebookClient

from quickstart_helpers.display import (
    StreamInterrupted,
    astream_markdown,
    chunk_text,
    stream_markdown,
)
from quickstart_helpers.errors import explain_api_error


def _response(*parts):
    return types.GenerateContentResponse(
        candidates=[types.Candidate(content=types.Content(role="model", parts=list(parts)))]
    )


def test_chunk_text_reads_text_parts_and_skips_others():
    chunk = _response(
        types.Part(text="thinking", thought=True),
        types.Part(text="Hello "),
        types.Part(inline_data=types.Blob(mime_type="image/png", data=b"\x89PNG")),
        types.Part(text="world"),
    )
    assert chunk_text(chunk) == "Hello world"
    assert chunk_text("plain") == "plain"
    assert chunk_text(types.GenerateContentResponse()) == ""


def test_terminal_rendering_prints_as_it_arrives_and_returns_the_text(capsys):
    text = stream_markdown([_response(types.Part(text="# Title\n")), "Body"])
    assert text == "# Title\nBody"
    assert capsys.readouterr().out == "# Title\nBody\n"


def test_typewriter_reveals_at_the_given_rate(capsys):
    pauses: list[float] = []
    text = stream_markdown(["x" * 60, "y" * 30], typewriter=30, sleep=pauses.append)
    assert text == "x" * 60 + "y" * 30
    # 30 characters per second, one character per frame: 90 pauses of 1/30 s.
    assert len(pauses) == 90
    assert sum(pauses) == pytest.approx(3.0)
    assert capsys.readouterr().out == text + "\n"


def test_typewriter_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        stream_markdown(["a"], typewriter=0)


def test_a_broken_stream_raises_with_the_partial_text(capsys):
    def chunks():
        yield "Half an "
        yield "answer"
        raise ConnectionError("peer closed connection")

    with pytest.raises(StreamInterrupted) as info:
        stream_markdown(chunks())
    assert info.value.text == "Half an answer"
    assert isinstance(info.value.__cause__, ConnectionError)
    assert "Half an answer" in capsys.readouterr().out


def _refused():
    raise errors.ClientError(
        400, {"error": {"code": 400, "message": "Bad request", "status": "INVALID_ARGUMENT"}}
    )
    yield  # pragma: no cover - makes this a generator


def test_an_error_before_the_first_chunk_is_the_apis_own_error_explained(capsys):
    with pytest.raises(errors.ClientError) as info:
        stream_markdown(_refused())
    assert not isinstance(info.value, StreamInterrupted)
    if sys.version_info >= (3, 11):
        assert info.value.__notes__ == [explain_api_error(info.value)]
    assert capsys.readouterr().out == ""


def test_an_empty_chunk_then_an_error_is_a_broken_stream(capsys):
    def chunks():
        yield types.GenerateContentResponse()  # a chunk without text still arrived
        raise ConnectionError("peer closed connection")

    with pytest.raises(StreamInterrupted, match="after 0 characters") as info:
        stream_markdown(chunks())
    assert info.value.text == ""


def test_async_error_before_the_first_chunk_is_raised_as_is():
    async def refused():
        raise errors.ServerError(
            503, {"error": {"code": 503, "message": "Overloaded", "status": "UNAVAILABLE"}}
        )
        yield  # pragma: no cover

    with pytest.raises(errors.ServerError, match="Overloaded"):
        asyncio.run(astream_markdown(refused()))


def test_async_twin():
    async def chunks():
        for piece in ("a", "b", "c"):
            yield piece

    assert asyncio.run(astream_markdown(chunks(), typewriter=1000)) == "abc"


def test_in_jupyter_one_display_is_updated_to_the_full_text():
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "from quickstart_helpers.display import stream_markdown\n"
            "text = stream_markdown(['**Hello**', ' stream', 'ing'], typewriter=200)"
        )
    )
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    outputs = nb.cells[0].outputs
    assert len(outputs) == 1
    assert outputs[0].output_type == "display_data"
    assert outputs[0].data["text/markdown"] == "**Hello** streaming"


def test_in_jupyter_a_refused_request_leaves_no_empty_output():
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "from quickstart_helpers.display import stream_markdown\n"
            "def refused():\n"
            "    raise ValueError('refused')\n"
            "    yield\n"
            "try:\n"
            "    stream_markdown(refused())\n"
            "except ValueError as err:\n"
            "    print(type(err).__name__)"
        )
    )
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["stream"]
    assert outputs[0].text == "ValueError\n"

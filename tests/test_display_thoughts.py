"""stream_markdown with thought parts (include_thoughts=True): never mixed into the answer."""

from __future__ import annotations

import asyncio

import nbformat
from google.genai import types
from nbclient import NotebookClient

from quickstart_helpers.display import astream_markdown, stream_markdown, thought_text


def _response(*parts: types.Part) -> types.GenerateContentResponse:
    return types.GenerateContentResponse(
        candidates=[types.Candidate(content=types.Content(role="model", parts=list(parts)))]
    )


STREAM = [
    _response(types.Part(text="**Counting** the r", thought=True)),
    _response(types.Part(text="'s one by one.", thought=True)),
    _response(types.Part(text="There are three ")),
    _response(types.Part(text="r's.")),
]


def test_thought_text_reads_only_thought_parts() -> None:
    chunk = _response(types.Part(text="plan", thought=True), types.Part(text="answer"))
    assert thought_text(chunk) == "plan"
    assert thought_text("plain") == ""
    assert thought_text(types.GenerateContentResponse()) == ""


def test_thoughts_are_skipped_by_default(capsys) -> None:
    assert stream_markdown(STREAM) == "There are three r's."
    assert capsys.readouterr().out == "There are three r's.\n"


def test_thoughts_shown_apart_on_a_terminal(capsys) -> None:
    assert stream_markdown(STREAM, thoughts=True) == "There are three r's."
    assert capsys.readouterr().out == (
        "Thinking: **Counting** the r's one by one.\n\nThere are three r's.\n"
    )


def test_async_twin_shows_thoughts_apart(capsys) -> None:
    async def chunks():
        for chunk in STREAM:
            yield chunk

    assert asyncio.run(astream_markdown(chunks(), thoughts=True)) == "There are three r's."
    assert capsys.readouterr().out.startswith("Thinking: **Counting**")


def test_in_jupyter_thoughts_get_their_own_display_above_the_answer() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "from google.genai import types\n"
            "from quickstart_helpers.display import stream_markdown\n"
            "def r(text, thought=None):\n"
            "    part = types.Part(text=text, thought=thought)\n"
            "    content = types.Content(role='model', parts=[part])\n"
            "    candidate = types.Candidate(content=content)\n"
            "    return types.GenerateContentResponse(candidates=[candidate])\n"
            "text = stream_markdown([r('Plan\\nstep', True), r('Ans'), r('wer')], thoughts=True)"
        )
    )
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "display_data"]
    assert outputs[0].data["text/markdown"] == "> **Thoughts**\n>\n> Plan\n> step"
    assert outputs[1].data["text/markdown"] == "Answer"

"""stream_markdown with thought parts (include_thoughts=True): never mixed into the answer."""

from __future__ import annotations

from google.genai import types

from quickstart_helpers.display import chunk_text, stream_markdown

from ._kernel import execute_cells


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


def test_chunk_text_reads_only_thought_parts_with_thought_true() -> None:
    chunk = _response(types.Part(text="plan", thought=True), types.Part(text="answer"))
    assert chunk_text(chunk, thought=True) == "plan"
    assert chunk_text("plain", thought=True) == ""
    assert chunk_text(types.GenerateContentResponse(), thought=True) == ""


def test_thoughts_are_skipped_by_default(capsys) -> None:
    assert stream_markdown(STREAM) == "There are three r's."
    assert capsys.readouterr().out == "There are three r's.\n"


def test_thoughts_shown_apart_on_a_terminal(capsys) -> None:
    assert stream_markdown(STREAM, thoughts=True) == "There are three r's."
    assert capsys.readouterr().out == (
        "Thinking: **Counting** the r's one by one.\n\nThere are three r's.\n"
    )


def test_in_jupyter_thoughts_get_their_own_display_above_the_answer() -> None:
    cells = execute_cells(
        "from google.genai import types\n"
        "from quickstart_helpers.display import stream_markdown\n"
        "def r(text, thought=None):\n"
        "    part = types.Part(text=text, thought=thought)\n"
        "    content = types.Content(role='model', parts=[part])\n"
        "    candidate = types.Candidate(content=content)\n"
        "    return types.GenerateContentResponse(candidates=[candidate])\n"
        "text = stream_markdown([r('Plan\\nstep', True), r('Ans'), r('wer')], thoughts=True)",
    )
    outputs = cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "display_data"]
    assert outputs[0].data["text/markdown"] == "> **Thoughts**\n>\n> Plan\n> step"
    assert outputs[1].data["text/markdown"] == "Answer"


def test_in_jupyter_thought_updates_are_throttled_like_the_answer(monkeypatch) -> None:
    from quickstart_helpers import display as display_module
    from quickstart_helpers.display import MAX_UPDATES_PER_SECOND

    shown: list[tuple[int, str]] = []  # (display number, Markdown), in order

    class Handle:
        def __init__(self, number: int) -> None:
            self.number = number

        def update(self, obj, raw: bool = False) -> None:
            shown.append((self.number, obj["text/markdown"]))

    def display(obj, raw: bool = False, display_id: bool = False) -> Handle:
        handle = Handle(len({n for n, _ in shown}))
        handle.update(obj, raw)
        return handle

    monkeypatch.setattr(display_module, "in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", display)
    now = [0.0]

    def chunks():
        for i in range(1000):  # a thought chunk every millisecond: 1 s of thinking
            now[0] = i / 1000
            yield _response(types.Part(text=f"{i} ", thought=True))
        now[0] = 1.0
        yield _response(types.Part(text="Done."))

    assert stream_markdown(chunks(), thoughts=True, clock=lambda: now[0]) == "Done."
    thoughts = [md for n, md in shown if n == 0]
    answer = [md for n, md in shown if n == 1]
    whole = "".join(f"{i} " for i in range(1000))
    # The thoughts display: created first, 19 throttled updates in 1 s, then a final one
    # with every thought, sent before the answer's display is made.
    assert len(thoughts) == MAX_UPDATES_PER_SECOND + 1
    assert thoughts[-1] == f"> **Thoughts**\n>\n> {whole}"
    assert shown.index((0, thoughts[-1])) < shown.index((1, answer[0]))
    assert answer == ["Done."]

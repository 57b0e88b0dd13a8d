"""stream_markdown: terminal rendering, typewriter pacing, broken streams, Jupyter updates."""

from __future__ import annotations

import sys

import pytest
from google.genai import errors, types

from quickstart_helpers import display as display_module
from quickstart_helpers._api_errors import explain_api_error
from quickstart_helpers.display import (
    MAX_UPDATES_PER_SECOND,
    StreamInterrupted,
    UpdateThrottle,
    chunk_text,
    stream_markdown,
)

from ._kernel import execute_cells


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


def test_typewriter_reveals_at_the_given_rate(capsys, monkeypatch):
    monkeypatch.setenv("QUICKSTART_PACING", "realtime")
    pauses: list[float] = []
    text = stream_markdown(["x" * 60, "y" * 30], typewriter=30, sleep=pauses.append)
    assert text == "x" * 60 + "y" * 30
    # 30 characters per second in frames of at most 1/20 s: 2 characters a frame,
    # 45 pauses of 1/15 s.
    assert MAX_UPDATES_PER_SECOND == 20
    assert pauses == [pytest.approx(1 / 15)] * 45
    assert sum(pauses) == pytest.approx(3.0)
    assert capsys.readouterr().out == text + "\n"


def test_typewriter_frames_never_come_faster_than_the_update_rate(monkeypatch):
    monkeypatch.setenv("QUICKSTART_PACING", "realtime")
    for rate in (1, 19, 20, 21, 50, 600, 800, 10_000):
        pauses: list[float] = []
        stream_markdown(["z" * 1000], typewriter=rate, sleep=pauses.append)
        assert pauses, rate
        assert min(pauses) >= 1 / MAX_UPDATES_PER_SECOND - 1e-12, rate


def test_typewriter_does_not_pause_under_fast_pacing(capsys, monkeypatch):
    monkeypatch.setenv("QUICKSTART_PACING", "fast")
    pauses: list[float] = []
    text = stream_markdown(["x" * 60, "y" * 30], typewriter=30, sleep=pauses.append)
    assert text == "x" * 60 + "y" * 30
    assert pauses == []
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


def test_in_jupyter_one_display_is_updated_to_the_full_text():
    cells = execute_cells(
        "from quickstart_helpers.display import stream_markdown\n"
        "text = stream_markdown(['**Hello**', ' stream', 'ing'], typewriter=200)",
    )
    outputs = cells[0].outputs
    assert len(outputs) == 1
    assert outputs[0].output_type == "display_data"
    assert outputs[0].data["text/markdown"] == "**Hello** streaming"


def test_throttle_allows_the_first_update_then_one_per_interval():
    now = [100.0]
    throttle = UpdateThrottle(clock=lambda: now[0])
    allowed = []
    for _ in range(100):  # 1 s of requests, one every 10 ms
        allowed.append(throttle.ready())
        now[0] += 0.01
    assert allowed[0] is True
    assert sum(allowed) == 20
    # The allowed requests are 50 ms apart (every fifth one).
    assert [i for i, ok in enumerate(allowed) if ok] == list(range(0, 100, 5))


def test_throttle_never_allows_two_updates_at_the_same_instant():
    throttle = UpdateThrottle(clock=lambda: 5.0)
    assert [throttle.ready() for _ in range(1000)].count(True) == 1


class _FakeHandle:
    """A display handle; ``updates`` lists the Markdown of the display and its updates."""

    def __init__(self) -> None:
        self.updates: list[str] = []
        self.displays = 0

    def display(self, obj, raw: bool = False, display_id: bool = False) -> _FakeHandle:
        assert display_id
        self.displays += 1
        self.update(obj, raw)
        return self

    def update(self, obj, raw: bool = False) -> None:
        assert raw and obj["text/plain"] == "<IPython.core.display.Markdown object>"
        self.updates.append(obj["text/markdown"])


def _notebook_renderer(monkeypatch) -> _FakeHandle:
    """Make stream_markdown believe it runs in Jupyter; return the display it updates."""
    handle = _FakeHandle()
    monkeypatch.setattr(display_module, "in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", handle.display)
    return handle


def test_display_updates_are_throttled_and_the_last_one_holds_the_whole_text(monkeypatch):
    handle = _notebook_renderer(monkeypatch)
    now = [0.0]

    def chunks():
        for i in range(1000):  # a chunk every millisecond: 1 s of stream
            now[0] = i / 1000
            yield f"{i} "

    text = stream_markdown(chunks(), clock=lambda: now[0])
    assert text == "".join(f"{i} " for i in range(1000))
    # One display and 19 throttled updates in 1 s, then the final one.
    assert handle.displays == 1
    assert len(handle.updates) == MAX_UPDATES_PER_SECOND + 1
    assert handle.updates[-1] == text
    # Each update shows a prefix of the text, growing.
    assert all(text.startswith(u) for u in handle.updates)
    assert [len(u) for u in handle.updates] == sorted(len(u) for u in handle.updates)


def test_a_broken_stream_in_jupyter_gets_a_final_update_with_the_partial_text(monkeypatch):
    handle = _notebook_renderer(monkeypatch)

    def chunks():
        yield "kept "
        yield "too"
        raise ConnectionError("reset")

    with pytest.raises(StreamInterrupted):
        stream_markdown(chunks(), clock=lambda: 0.0)
    assert handle.displays == 1
    assert handle.updates == ["kept ", "kept too"]


def test_in_jupyter_the_display_is_made_with_the_first_text_and_not_sent_twice(monkeypatch):
    handle = _notebook_renderer(monkeypatch)
    assert stream_markdown(["", "whole answer"], clock=lambda: 0.0) == "whole answer"
    # No display for the empty chunk; no final update repeating what is shown.
    assert handle.displays == 1
    assert handle.updates == ["whole answer"]


def test_in_jupyter_a_10000_chunk_stream_ends_with_the_whole_text():
    cells = execute_cells(
        "from quickstart_helpers.display import stream_markdown\n"
        "text = stream_markdown(f'chunk {i}\\n' for i in range(10_000))",
        "len(text)",
        timeout=120,
    )
    outputs = cells[0].outputs
    expected = "".join(f"chunk {i}\n" for i in range(10_000))
    assert [o.output_type for o in outputs] == ["display_data"]
    assert outputs[0].data["text/markdown"] == expected
    assert cells[1].outputs[0].data["text/plain"] == str(len(expected))


def test_in_jupyter_a_refused_request_leaves_no_empty_output():
    cells = execute_cells(
        "from quickstart_helpers.display import stream_markdown\n"
        "def refused():\n"
        "    raise ValueError('refused')\n"
        "    yield\n"
        "try:\n"
        "    stream_markdown(refused())\n"
        "except ValueError as err:\n"
        "    print(type(err).__name__)",
    )
    outputs = cells[0].outputs
    assert [o.output_type for o in outputs] == ["stream"]
    assert outputs[0].text == "ValueError\n"

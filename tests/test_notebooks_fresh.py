"""Each stored notebook is its canonical offline execution, checked on nbval's execution.

nbval executes every notebook once (``pytest notebooks/``); ``conftest.py`` then checks
that same execution more strictly than nbval (execution counts, output types, images),
with ``tests/notebook_compare.py``. These tests run nbval on a small notebook to show
that the strict check catches what nbval alone lets through.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import nbformat
import pytest
from PIL import Image

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


def _png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _cell(source: str, count: int | None, *outputs: dict) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.execution_count = count
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def _tagged(cell: nbformat.NotebookNode, *tags: str) -> nbformat.NotebookNode:
    cell.metadata["tags"] = list(tags)
    return cell


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def _display(data: dict, kind: str = "display_data") -> dict:
    out = {"output_type": kind, "data": data, "metadata": {}}
    if kind == "execute_result":
        out["execution_count"] = None
    return out


@pytest.fixture
def checked(pytester: pytest.Pytester):
    """Run nbval (with this repository's hooks) on a notebook; return each cell's outcome."""

    def run(*cells: nbformat.NotebookNode) -> dict[str, str]:
        nb = nbformat.v4.new_notebook()
        nb.cells = list(cells)
        nbformat.write(nb, pytester.path / "sample.ipynb")
        result = pytester.runpytest_inprocess(
            "--nbval", "--nbval-current-env", "-p", "no:cacheprovider", "-p", "no:randomly"
        )
        outcomes = {}
        for report in result.reprec.getreports("pytest_runtest_logreport"):
            if report.when == "call":
                outcomes[report.nodeid.split("::")[-1]] = (
                    "passed" if report.passed else str(report.longrepr)
                )
        return outcomes

    return run


def test_the_canonical_check_catches_what_nbval_lets_through(checked):
    red, blue = _png("red"), _png("blue")
    outcomes = checked(
        _cell("print('one')", 1, _stream("one\n")),
        # A different image: nbval skips PNG payloads.
        _cell(
            f"from IPython.display import Image, display\ndisplay(Image(data={red!r}))",
            2,
            _display(
                {
                    "image/png": base64.b64encode(blue).decode(),
                    "text/plain": "<IPython.core.display.Image object>",
                }
            ),
        ),
        # A stale execution count: nbval does not compare counts.
        _cell("print('three')", 7, _stream("three\n")),
        # A display stored where an execution result comes: nbval skips the output type.
        _cell("6 * 7", 4, _display({"text/plain": "42"})),
        # Updated in place: the last payload is the stored one.
        _cell(
            "handle = display('first', display_id=True)\nhandle.update('last')",
            5,
            _display({"text/plain": "'last'"}),
        ),
        _cell("", None),
        _cell("6 * 7", 6, _display({"text/plain": "42"}, "execute_result")),
        # nbval's nbval-ignore-output tag: outputs not compared, the count still is.
        _tagged(_cell("print('fresh')", 7, _stream("stored\n")), "nbval-ignore-output"),
        _tagged(_cell("print('fresh')", 3, _stream("stored\n")), "nbval-ignore-output"),
    )
    assert outcomes["Cell 0"] == "passed"
    assert "outputs differ" in outcomes["Cell 1"]
    assert "canonical offline execution" in outcomes["Cell 1"]
    assert "execution count 7 stored, 3 in a fresh" in outcomes["Cell 2"]
    assert "outputs differ" in outcomes["Cell 3"]
    assert outcomes["Cell 4"] == "passed"
    assert outcomes["Cell 5"] == "passed"
    assert outcomes["Cell 6"] == "passed"
    assert outcomes["Cell 7"] == "passed"
    assert "execution count 3 stored, 8 in a fresh" in outcomes["Cell 8"]
    assert "outputs differ" not in outcomes["Cell 8"]

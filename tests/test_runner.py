"""`quickstart run`, `quickstart refresh` and `quickstart emulator` as a user runs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat

from quickstart_helpers._runner import format_summary
from quickstart_helpers.cli import main

from .notebook_compare import differences


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A test notebook")] + [
        nbformat.v4.new_code_cell(s) for s in sources
    ]
    nbformat.write(nb, path)
    return path


def test_run_executes_writes_copies_and_outputs_and_summarises(tmp_path, capsys):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    _notebook(
        notebooks / "a.ipynb",
        "from quickstart_helpers.client import make_client\nclient = make_client()",
        "from quickstart_helpers.paths import output_dir\n"
        "(output_dir('a') / 'made.txt').write_text('hi')\nprint('wrote')",
    )
    _notebook(notebooks / "b.ipynb", "print(6 * 7)")
    out = tmp_path / "out"
    code = main(["run", str(notebooks), "--output", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    executed = nbformat.read(out / "a.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"].startswith("Mode: offline")
    assert (out / "a" / "made.txt").read_text() == "hi"
    assert (out / "a.kernel.log").is_file()
    assert nbformat.read(out / "b.ipynb", as_version=4).cells[1].outputs[0]["text"] == "42\n"
    assert re.search(r"a\.ipynb\s+2\s+\d+\.\d\s+offline\s+ok", printed)
    assert re.search(r"b\.ipynb\s+1\s+\d+\.\d\s+offline\s+ok", printed)


def test_run_names_the_failing_cell_and_exits_non_zero(tmp_path, capsys):
    path = _notebook(
        tmp_path / "broken.ipynb", "x = 1", "raise ValueError('bad sample rate')", "print('never')"
    )
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.ipynb cell 3: ValueError: bad sample rate" in captured.err
    assert "FAILED at cell 3" in captured.out
    assert (tmp_path / "out" / "broken.ipynb").exists()


def test_run_refuses_a_missing_notebook(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.ipynb"), "--no-progress"]) == 2
    assert "is not a notebook" in capsys.readouterr().err


def test_live_run_without_a_key_says_how_to_set_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _notebook(tmp_path / "n.ipynb", "1")
    assert main(["run", str(path), "--mode", "live", "--no-progress"]) == 2
    assert "GEMINI_API_KEY" in capsys.readouterr().err


def test_refresh_stores_the_canonical_execution(tmp_path):
    path = _notebook(tmp_path / "r.ipynb", "print('one')", "print('two')")
    assert main(["refresh", str(path)]) == 0
    stored = nbformat.read(path, as_version=4)
    assert [c.execution_count for c in stored.cells[1:]] == [1, 2]
    assert stored.cells[2].outputs[0]["text"] == "two\n"
    fresh = nbformat.read(path, as_version=4)
    fresh.cells[2].outputs[0]["text"] = "changed\n"
    assert differences(stored, fresh) != []
    assert differences(stored, nbformat.read(path, as_version=4)) == []


def test_summary_table_lists_each_notebook():
    from quickstart_helpers._runner import NotebookResult

    table = format_summary(
        [
            NotebookResult(Path("01.ipynb"), Path("x"), 12, 3.04, "offline"),
            NotebookResult(Path("02.ipynb"), Path("y"), 4, 1.0, "live", 4, "ValueError: x"),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["notebook", "cells", "seconds", "mode", "status"]
    assert lines[2].split() == ["01.ipynb", "12", "3.0", "offline", "ok"]
    assert lines[3].split() == ["02.ipynb", "4", "1.0", "live", "FAILED", "at", "cell", "4"]


def test_emulator_command_serves_an_unmodified_client(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("QUICKSTART_MODE",)}
    server = subprocess.Popen(
        [sys.executable, "-m", "quickstart_helpers.cli", "emulator", "--pacing", "fast"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        exports: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while len(exports) < 3 and time.monotonic() < deadline:
            line = server.stdout.readline()
            match = re.match(r"export (\w+)=(.*)", line.strip())
            if match:
                exports[match[1]] = match[2]
        assert set(exports) == {"GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY", "SSL_CERT_FILE"}
        program = textwrap.dedent(
            """
            from google import genai
            client = genai.Client()
            prompt = "Give me four tips for writing clear prompts, as a numbered list."
            for chunk in client.models.generate_content_stream(
                model="gemini-2.5-flash", contents=prompt
            ):
                print(repr(chunk.text))
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", program],
            env={**env, **exports},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 8
        assert lines[0] == repr("1. **Say what you want")
    finally:
        server.terminate()
        server.wait(10)

"""`quickstart run`, `quickstart refresh` and `quickstart emulator` as a user runs them."""

from __future__ import annotations

import ast
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
from quickstart_helpers.emulator import Emulator

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


BAD_KEY_CLIENT = (
    "from quickstart_helpers.client import make_client\n"
    "bad_client = make_client(api_key='invalid', quiet=True)"
)
EXPLAINED = (
    "from google.genai import errors\n"
    "from quickstart_helpers.errors import explain_api_error\n"
    "try:\n"
    "    bad_client.models.generate_content(model='gemini-2.5-flash', contents='Hi')\n"
    "except errors.APIError as err:\n"
    "    print(explain_api_error(err))"
)
WEB_CHAT = (
    "import httpx\n"
    "from quickstart_helpers.sse import iter_lines\n"
    "from quickstart_helpers.web import SAMPLE_QUESTION, ChatServer\n"
    "with ChatServer(bad_client) as server:\n"
    "    with httpx.stream('GET', server.url + 'chat/stream',\n"
    "                      params={'message': SAMPLE_QUESTION}, timeout=60) as r:\n"
    "        for line in iter_lines(r.iter_text()):\n"
    "            print(repr(line))"
)


def _tag(path: Path, cell: int, tag: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells[cell - 1].metadata["tags"] = [tag]
    nbformat.write(nb, path)


def test_run_fails_a_cell_that_shows_an_api_error_instead_of_raising(tmp_path, capsys):
    path = _notebook(tmp_path / "swallow.ipynb", BAD_KEY_CLIENT, EXPLAINED, "print('never')")
    out = tmp_path / "out"
    code = main(["run", str(path), "--output", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert (
        "swallow.ipynb cell 3: ClientError 400 INVALID_ARGUMENT (API_KEY_INVALID) was shown "
        "instead of raised" in captured.err
    )
    assert "expect-api-error" in captured.err
    assert re.search(r"swallow\.ipynb\s+2\s+\d+\.\d\s+offline\s+FAILED at cell 3", captured.out)
    executed = nbformat.read(out / "swallow.ipynb", as_version=4)
    assert "rejected the API key" in executed.cells[2].outputs[0]["text"]
    assert executed.cells[3].outputs == []  # execution stopped at the failing cell
    # The record names the error, never the key or the message.
    assert '"reasons": ["API_KEY_INVALID"]' in (out / "swallow.errors.jsonl").read_text()
    assert "invalid" not in (out / "swallow.errors.jsonl").read_text().replace("INVALID", "")


def test_run_fails_a_notebook_whose_web_chat_relays_an_api_error(tmp_path, capsys):
    # The web chat turns the error into an SSE event, in a server thread of the kernel.
    path = _notebook(tmp_path / "relay.ipynb", BAD_KEY_CLIENT, WEB_CHAT)
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert "relay.ipynb cell 3: ClientError 400 INVALID_ARGUMENT (API_KEY_INVALID)" in captured.err
    printed = nbformat.read(tmp_path / "out" / "relay.ipynb", as_version=4).cells[2].outputs
    assert "'event: error'" in printed[0]["text"]


def test_a_cell_tagged_expect_api_error_may_show_one(tmp_path, capsys):
    path = _notebook(tmp_path / "demo.ipynb", BAD_KEY_CLIENT, EXPLAINED, WEB_CHAT, "print('end')")
    _tag(path, 3, "expect-api-error")
    _tag(path, 4, "expect-api-error")
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert re.search(r"demo\.ipynb\s+4\s+\d+\.\d\s+offline\s+ok", capsys.readouterr().out)


def test_a_live_run_with_a_rejected_key_fails_notebook_05(tmp_path, capsys, monkeypatch):
    """The regression: live mode, a key the API rejects, and notebook 05 reported ok.

    "Live" here is the emulator standing in for the API (an unmodified genai.Client()
    reaches it through GOOGLE_GEMINI_BASE_URL and SSL_CERT_FILE), so it answers the key
    `invalid` with the live API's error.
    """
    with Emulator(pacing="fast") as emulator:
        monkeypatch.setenv("GEMINI_API_KEY", "invalid")
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", emulator.base_url)
        monkeypatch.setenv("SSL_CERT_FILE", str(emulator.certificate.cert_file))
        notebook = Path(__file__).resolve().parent.parent / "notebooks" / "05_sse_web_chat.ipynb"
        out = tmp_path / "out"
        code = main(["run", str(notebook), "--mode", "live", "--output", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    # Cell 13 is the first request to the relay, whose handler explains (handles) the error.
    assert "FAILED at cell 13" in captured.out and "live" in captured.out
    assert "cell 13: ClientError 400 INVALID_ARGUMENT (API_KEY_INVALID)" in captured.err
    assert "invalid" not in captured.out + captured.err.replace("INVALID", "")


def _catches_api_errors(source: str) -> bool:
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # notebooks await at top level
    try:
        tree = compile(source, "<cell>", "exec", flags=flags)
    except SyntaxError:  # IPython magics: judge by the words
        return "except" in source and "Error" in source
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            names = {
                n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "")
                for n in ast.walk(node.type)
            }
            if names & {"APIError", "ClientError", "ServerError", "Exception", "BaseException"}:
                return True
    return False


def test_no_notebook_swallows_an_api_error_outside_a_tagged_cell():
    notebooks = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
    untagged = []
    for path in notebooks:
        for number, cell in enumerate(nbformat.read(path, as_version=4).cells, 1):
            if cell.cell_type != "code" or not _catches_api_errors(cell.source):
                continue
            if "expect-api-error" not in cell.metadata.get("tags", []):
                untagged.append(f"{path.name} cell {number}")
    assert not untagged, f"cells that catch API errors without the tag: {untagged}"
    assert _catches_api_errors("try:\n    f()\nexcept errors.APIError as e:\n    print(e)\n")
    assert not _catches_api_errors("try:\n    f()\nexcept ValueError:\n    pass\n")
    assert _catches_api_errors("try:\n    await f()\nexcept (OSError, ClientError):\n    pass\n")

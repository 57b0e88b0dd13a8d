"""Every ```python block of the README runs as written: offline, fast pacing, own process.

Each block runs in a Python process of its own, with its own environment and working folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Return (line number, code) for each ```python block of a Markdown text."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def _python(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``python *argv`` in ``cwd`` with exactly ``env``; what it printed, as text."""
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=180,
    )


def test_the_readme_has_python_blocks_and_they_are_found():
    assert len(BLOCKS) >= 4
    sample = "text\n```python\nprint(1)\n```\n```bash\nls\n```\n"
    assert python_blocks(sample) == [(2, "print(1)\n")]


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"line {line}" for line, _ in BLOCKS])
def test_readme_python_block_runs_offline_as_written(line, code, tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL")
    }
    env.update(
        QUICKSTART_MODE="offline",
        QUICKSTART_PACING="fast",
        QUICKSTART_OUTPUT_ROOT=str(tmp_path / "outputs"),
    )
    # A block of pytest tests (the plugin's example) runs under pytest; any other as a script.
    is_test_module = re.search(r"^def test_", code, re.MULTILINE) is not None
    script = tmp_path / ("test_snippet.py" if is_test_module else "snippet.py")
    script.write_text(code, encoding="utf-8")
    command = [str(script)]
    if is_test_module:
        command = ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    result = _python(command, cwd=tmp_path, env=env)
    assert result.returncode == 0, (
        f"README.md line {line}: the block failed.\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}"
    )
    assert result.stdout.strip(), f"README.md line {line}: the block printed nothing"
    if is_test_module:
        assert " passed" in result.stdout and "failed" not in result.stdout, result.stdout


def test_a_block_that_forgets_an_import_fails_in_its_own_process(tmp_path):
    """A block sees only what it imports (the test process imported the SDK)."""
    script = tmp_path / "snippet.py"
    script.write_text('print("before")\nclient = genai.Client()\n', encoding="utf-8")
    result = _python([str(script)], cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert "NameError: name 'genai' is not defined" in result.stderr
    assert os.getcwd() != str(tmp_path)  # the test's process did not move

"""Every ```python block of the README and of docs/*.md runs as written, offline.

Each block runs in a Python process of its own, in its own folder, with the environment
that `quickstart emulator` prints (the SDK's base URL and key, the emulator's certificate):
what a learner pastes into a shell before running a script written for the live API.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from quickstart_helpers.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Return (line number, code) for each ```python block of a Markdown text."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


BLOCKS = [
    (page.relative_to(ROOT).as_posix(), line, code)
    for page in PAGES
    for line, code in python_blocks(page.read_text(encoding="utf-8"))
]


def test_the_pages_have_python_blocks_and_they_are_found():
    assert len(BLOCKS) >= 4
    sample = "text\n```python\nprint(1)\n```\n```bash\nls\n```\n"
    assert python_blocks(sample) == [(2, "print(1)\n")]


def offline_env(emulator: Emulator, outputs: Path) -> dict[str, str]:
    """The test's environment without keys, plus the emulator's shell exports."""
    drop = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    for line in emulator.shell_exports().splitlines():
        name, value = line.removeprefix("export ").split("=", 1)
        env[name] = value
    env.update(
        QUICKSTART_MODE="offline", QUICKSTART_PACING="fast", QUICKSTART_OUTPUT_ROOT=str(outputs)
    )
    return env


@pytest.mark.parametrize(
    "page, line, code", BLOCKS, ids=[f"{page}:{line}" for page, line, _ in BLOCKS]
)
def test_python_block_runs_offline_as_written(page, line, code, tmp_path):
    # A block of pytest tests (the plugin's example) runs under pytest; any other as a script.
    is_test_module = re.search(r"^def test_", code, re.MULTILINE) is not None
    script = tmp_path / ("test_snippet.py" if is_test_module else "snippet.py")
    script.write_text(code, encoding="utf-8")
    command = [sys.executable, str(script)]
    if is_test_module:
        command[1:] = ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    with Emulator(pacing="fast") as emulator:  # a new one: fault counts start at zero
        result = subprocess.run(
            command,
            cwd=tmp_path,
            env=offline_env(emulator, tmp_path / "outputs"),
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert result.returncode == 0, (
        f"{page} line {line}: the block failed.\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}"
    )
    assert result.stdout.strip(), f"{page} line {line}: the block printed nothing"
    if is_test_module:
        assert " passed" in result.stdout and "failed" not in result.stdout, result.stdout

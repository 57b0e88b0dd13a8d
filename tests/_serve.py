"""Start ``quickstart serve`` as a user does, for the tests of the web chat's command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def start_serve(
    cwd: Path, *args: str, pacing: str = "fast"
) -> tuple[subprocess.Popen[str], list[str]]:
    """Start ``quickstart serve --port 0 *args`` offline in ``cwd``; return the process and
    the three lines it prints first (mode, sample question, the page's address). The
    caller stops the process."""
    env = {**os.environ, "QUICKSTART_MODE": "offline", "QUICKSTART_PACING": pacing}
    process = subprocess.Popen(
        [sys.executable, "-m", "quickstart_cli", "serve", "--port", "0", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
    except BaseException:
        process.kill()
        process.communicate(timeout=30)
        raise
    return process, lines

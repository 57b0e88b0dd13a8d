"""Run a Python script in its own process, forked from the suite's warm zygote.

Starting Python and importing ``google.genai`` takes about a second; the README snippet
test runs a dozen scripts. Each script still gets a process of its own (its own
``__main__``, environment, working folder, emulator and exit), forked from the zygote
(``tests/_zygote.py``) that imported the heavy modules once. A script that forgets an
import still fails: nothing is in its namespace but what it runs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import _zygote


@dataclass(frozen=True)
class Finished:
    """How a script ended: its exit code and what it wrote to stdout and stderr."""

    returncode: int
    stdout: str
    stderr: str


def run(argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 180) -> Finished:
    """Run ``argv`` as ``python *argv`` would (``[script, ...]`` or ``["-m", module, ...]``),
    with exactly ``env``, in ``cwd``, in a process forked from the zygote.

    Raises:
        TimeoutError: The script ran longer than ``timeout`` seconds (it is killed).
    """
    launcher_env = dict(env)
    if os.environ.get(_zygote.SOCKET_ENV):
        launcher_env[_zygote.SOCKET_ENV] = os.environ[_zygote.SOCKET_ENV]
    try:
        done = subprocess.run(
            _zygote.command(list(argv)),
            cwd=cwd,
            env=launcher_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"{argv} ran longer than {timeout} s") from exc
    return Finished(done.returncode, done.stdout, done.stderr)

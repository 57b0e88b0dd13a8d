"""Run a Python script in its own process, forked from a server that imported the SDK.

Starting Python and importing ``google.genai`` takes about a second; the README snippet
test runs a dozen scripts. Each script still gets a process of its own (its own
``__main__``, environment, working folder, emulator and exit), forked from a
``multiprocessing`` fork server that imported the heavy modules once. A script that
forgets an import still fails: nothing is in its namespace but what it runs.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Modules the fork server imports before it forks (what the snippets import).
PRELOAD = [
    "google.genai",
    "google.genai.types",
    "google.genai.errors",
    "aiohttp",
    "nbformat",
    "quickstart_helpers",
    "quickstart_helpers.emulator",
]


@dataclass(frozen=True)
class Finished:
    """How a script ended: its exit code and what it wrote to stdout and stderr."""

    returncode: int
    stdout: str
    stderr: str


def _context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _main(argv: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """The child: run ``argv`` (``[script, ...]`` or ``["-m", "pytest", ...]``) as
    ``python`` would, with ``env``, in ``cwd``, its output going to ``out``/``err``."""
    import atexit
    import runpy
    import traceback

    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    code = 0
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path[0] = str(Path(argv[0]).parent)
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        atexit._run_exitfuncs()  # as at interpreter exit (multiprocessing skips it)
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(code)


def run(argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 180) -> Finished:
    """Run ``argv`` as ``python *argv`` would, in a process forked from the warm server.

    Raises:
        TimeoutError: The script ran longer than ``timeout`` seconds (it is killed).
    """
    with tempfile.TemporaryDirectory(prefix="warm-") as captured:
        out, err = Path(captured, "stdout"), Path(captured, "stderr")
        process = _context().Process(
            target=_main, args=(list(argv), str(cwd), dict(env), str(out), str(err))
        )
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise TimeoutError(f"{argv} ran longer than {timeout} s")
        return Finished(
            process.exitcode,
            out.read_text("utf-8", errors="replace"),
            err.read_text("utf-8", errors="replace"),
        )

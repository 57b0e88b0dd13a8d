"""What several ``quickstart`` commands share: options, signals, notebooks found, failures shown."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from quickstart_helpers import settings
from quickstart_helpers.paths import repo_root


def skip_the_iri_grammar() -> None:
    """Keep this process from importing ``rfc3987_syntax``, which builds a lark grammar
    (about 1 s of CPU) when jsonschema (under nbformat) imports it to check ``iri``
    strings, a format notebook schemas never use. ``None`` in ``sys.modules`` makes the
    import fail, which jsonschema takes as "not installed"."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]


def pacing_option(
    parser: argparse.ArgumentParser, default: str = "fast in CI and realtime elsewhere"
) -> None:
    """Add ``--pacing``; unset, the command uses ``$QUICKSTART_PACING``, else ``default``."""
    parser.add_argument(
        "--pacing",
        choices=list(settings.PACINGS),
        help="offline: replay recorded delays (realtime) or send at once (fast). Default: "
        f"$QUICKSTART_PACING, else {default}",
    )


def mode_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=[m for m in settings.MODES if m != "record"],
        default="auto",
        help="live, offline, or auto (live when a key is found; $QUICKSTART_MODE overrides)",
    )


def upstream_option(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--upstream",
        help=f"server to {verb} (default: $QUICKSTART_UPSTREAM, else {settings.DEFAULT_UPSTREAM})",
    )


def system_allocator() -> None:
    """Run this command again, as the same process, under the C library's allocator
    (``PYTHONMALLOC=malloc``), unless an allocator was chosen. Only on Linux (glibc), for the
    servers: each burst of large requests left Python's own allocator holding more (its 1 MiB
    arenas each kept by a few objects; 92 to 209 MiB over 60 bursts), while glibc's gives it
    back after each (docs/performance.md)."""
    if sys.platform.startswith("linux") and "PYTHONMALLOC" not in os.environ:
        os.environ["PYTHONMALLOC"] = "malloc"
        os.execv(sys.executable, sys.orig_argv)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Make SIGTERM (process managers, ``kill``) and SIGHUP (a closed terminal) stop the
    command as Ctrl-C does, and SIGINT too in a job started with ``&`` (which starts with
    it ignored): ``KeyboardInterrupt`` shuts the kernels down and deletes the temporary
    files. The previous handlers come back afterwards. Outside the main thread, where
    handlers cannot be set, nothing changes."""
    signals = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        signals = []
    saved = {s: signal.signal(s, signal.default_int_handler) for s in signals}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def find_notebooks(paths: list[str] | None = None) -> list[Path]:
    """Return the notebooks to run: ``paths`` (files or folders) or all of ``notebooks/``.

    Raises:
        FileNotFoundError: A named path does not exist or holds no notebook.
    """
    targets = [Path(p) for p in paths] if paths else [(repo_root() or Path.cwd()) / "notebooks"]
    found: list[Path] = []
    for target in targets:
        if target.is_dir():
            notebooks = sorted(target.glob("*.ipynb"))
            if not notebooks:
                raise FileNotFoundError(f"No notebooks (*.ipynb) in {target}.")
            found.extend(notebooks)
        elif target.is_file() and target.suffix == ".ipynb":
            found.append(target)
        else:
            raise FileNotFoundError(f"{target} is not a notebook (.ipynb) or a folder of them.")
    return found


def report_failure(result: Any) -> None:
    """Print where a notebook failed and where its executed copy is (to stderr)."""
    if result.ok:
        return
    print(
        f"FAILED: {result.notebook} cell {result.failed_cell}: {result.error}\n"
        f"  The executed copy with the traceback is {result.executed}",
        file=sys.stderr,
        flush=True,
    )

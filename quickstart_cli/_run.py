"""``quickstart run`` and ``quickstart refresh``: execute notebooks with the runner."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from quickstart_helpers import settings

from ._common import (
    find_notebooks,
    mode_option,
    pacing_option,
    report_failure,
    signals_interrupt,
    skip_the_iri_grammar,
)


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def add_parsers(sub: Any) -> None:
    """Add the ``run`` and ``refresh`` commands to the subparsers ``sub``."""
    run = sub.add_parser(
        "run",
        help="execute notebooks headless (live with a key, else offline)",
        description="Execute notebooks with nbclient. Executed copies and the files they "
        "produce go under --output. Live when GEMINI_API_KEY is found, else offline.",
    )
    run.add_argument("notebooks", nargs="*", help="notebooks or folders (default: notebooks/)")
    mode_option(run)
    pacing_option(run, default="fast")
    run.add_argument("--output", default="build/run", help="output folder (default: build/run)")
    run.add_argument(
        "--jobs",
        "-j",
        type=_positive_int,
        metavar="N",
        help="notebooks to run at once, each in its own kernel (default: $QUICKSTART_JOBS, "
        f"else {settings.JOBS_PER_CPU} per CPU)",
    )
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    run.set_defaults(func=_cmd_run)

    refresh = sub.add_parser(
        "refresh",
        help="re-execute notebooks offline and store the outputs in place",
        description="Re-execute notebooks offline with fast pacing and write them back, so the "
        "stored outputs are the canonical offline ones that nbval compares against.",
    )
    refresh.add_argument("notebooks", nargs="*", help="notebooks or folders (default: notebooks/)")
    refresh.set_defaults(func=_cmd_refresh)


def _cmd_run(args: argparse.Namespace) -> int:
    skip_the_iri_grammar()
    from quickstart_helpers.errors import MissingApiKeyError

    from ._client import resolve_mode
    from ._progress import format_summary
    from ._runner import run_notebooks

    try:
        # Full speed unless asked: a run checks notebooks, nobody watches it stream.
        env_pacing = settings.pacing() if settings.get("QUICKSTART_PACING") else None
        pacing = args.pacing or env_pacing or "fast"
        jobs = args.jobs or settings.jobs()
        mode = resolve_mode(args.mode)
        if mode == "live":
            from quickstart_helpers.env import load_api_key

            load_api_key(required=True)
        notebooks = find_notebooks(args.notebooks)
    except (MissingApiKeyError, FileNotFoundError, ValueError) as exc:
        print(f"quickstart run: {exc}", file=sys.stderr)
        return 2
    output_root = Path(args.output)
    jobs = min(jobs, len(notebooks))
    print(
        f"Running {len(notebooks)} notebook(s) in {mode} mode"
        + (f" ({pacing} pacing)" if mode == "offline" else "")
        + (f", {jobs} at a time" if jobs > 1 else "")
        + f"; executed copies and outputs go to {output_root}/",
        flush=True,
    )
    try:
        with signals_interrupt():
            results = run_notebooks(
                notebooks,
                output_root=output_root,
                executed_in=output_root,
                mode=mode,
                pacing=pacing,
                jobs=jobs,
                progress=not args.no_progress,
                on_result=report_failure,
            )
    except ValueError as exc:  # not a notebook, or two notebooks with one name
        print(f"quickstart run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nquickstart run: interrupted; the kernels were shut down.", file=sys.stderr)
        return 130
    print()
    print(format_summary(results))
    return 0 if all(r.ok for r in results) else 1


def _cmd_refresh(args: argparse.Namespace) -> int:
    skip_the_iri_grammar()
    from ._runner import run_notebooks

    try:
        notebooks = find_notebooks(args.notebooks)
        jobs = settings.jobs()
    except (FileNotFoundError, ValueError) as exc:
        print(f"quickstart refresh: {exc}", file=sys.stderr)
        return 2

    def report(result: Any) -> None:
        state = "refreshed" if result.ok else f"FAILED at cell {result.failed_cell}: {result.error}"
        print(f"{result.notebook}: {state}", flush=True)

    try:
        with signals_interrupt(), tempfile.TemporaryDirectory(prefix="quickstart-refresh-") as tmp:
            results = run_notebooks(
                notebooks,
                output_root=Path(tmp),
                mode="offline",
                pacing="fast",
                jobs=min(jobs, len(notebooks)),
                on_result=report,
            )
    except ValueError as exc:
        print(f"quickstart refresh: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nquickstart refresh: interrupted; the kernels were shut down.", file=sys.stderr)
        return 130
    return 0 if all(r.ok for r in results) else 1

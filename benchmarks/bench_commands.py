"""Whole commands: ``quickstart run --pacing fast`` and the test suite, against budgets.

``run`` times the main job on the lessons (notebooks 01 to 05, with 02b) and on every
notebook, offline with fast pacing, each against the same notebooks run one at a time
(``--jobs 1``) in the same benchmark, and against issue 15's budget of 15 s. ``suite``
times the README's test command (``pytest``, all of it) once, against its budget of
180 s. Both run as subprocesses, as a user runs them; wall seconds.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.registry import Options, Result, benchmark

ROOT = Path(__file__).resolve().parent.parent
#: The notebooks issue 15 names ("the five current notebooks"; 02 has since been split).
LESSONS = [
    "01_text_streaming.ipynb",
    "02_chat_streaming.ipynb",
    "02b_chat_app_patterns.ipynb",
    "03_text_and_image_streaming.ipynb",
    "04_audio_streaming.ipynb",
    "05_sse_web_chat.ipynb",
]
#: Issue 15's budget for ``quickstart run``, and issue 26's for the suite (3 minutes on
#: 2 cores; issue 15's 60 s was withdrawn with the suite's custom process machinery).
RUN_BUDGET_S = 15.0
SUITE_BUDGET_S = 180.0


def _offline_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL")
        and not k.startswith("QUICKSTART_")
    }
    env["QUICKSTART_PACING"] = "fast"
    return env


def _timed(command: list[str], env: dict[str, str]) -> float:
    """Run ``command`` from the repository root; return its wall time in seconds.

    Raises:
        RuntimeError: The command failed (its output is in the message).
    """
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def _quickstart_run(notebooks: list[str], output: Path, *jobs: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "quickstart_cli",
        "run",
        *(str(ROOT / "notebooks" / n) for n in notebooks),
        "--mode",
        "offline",
        "--no-progress",
        f"--output={output}",
        *jobs,
    ]


@benchmark("run", "quickstart run --pacing fast: notebooks at once vs one at a time, and budget")
def bench_run(options: Options) -> list[Result]:
    env = _offline_env()
    repeats = 1 if options.quick else max(1, min(options.repeats, 3))
    everything = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        for label, notebooks in (("lessons 01-05", LESSONS), ("all notebooks", everything)):
            at_once, one_by_one = [], []
            for _ in range(repeats):  # alternating, so load hits both alike
                at_once.append(_timed(_quickstart_run(notebooks, Path(tmp)), env))
                one_by_one.append(_timed(_quickstart_run(notebooks, Path(tmp), "--jobs=1"), env))
            ours = statistics.median(at_once)
            figure = f"{label} ({len(notebooks)} notebooks)"
            results += [
                Result(
                    "run",
                    figure,
                    ours,
                    statistics.median(one_by_one),
                    "s",
                    baseline_name="one at a time, --jobs 1",
                ),
                Result(
                    "run",
                    f"{figure}, budget",
                    ours,
                    RUN_BUDGET_S,
                    "s",
                    target=1.0 if notebooks is LESSONS else None,
                    baseline_name="issue 15's budget",
                ),
            ]
    return results


@benchmark("suite", "The README's test command (the whole pytest suite) against its budget")
def bench_suite(options: Options) -> list[Result]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    command = [sys.executable, "-m", "pytest", "-q"]
    if options.quick:  # a smoke run: one small module
        command.append("tests/test_settings.py")
    elapsed = _timed(command, env)
    return [
        Result(
            "suite",
            "one small module (--quick)" if options.quick else "whole suite",
            elapsed,
            SUITE_BUDGET_S,
            "s",
            target=None if options.quick else 1.0,
            baseline_name="issue 26's budget",
        )
    ]

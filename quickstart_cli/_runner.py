"""Execute notebooks headless with nbclient: the ``quickstart run`` main job.

:func:`run_notebooks` runs several at once, each in its own kernel, on one event loop
in a thread of its own (:func:`execute_notebook` runs one).

A notebook fails when a cell raises, and also when a cell *handles* a failed model call
(shows an API error instead of raising it, as the web chat does for every failed
stream): the helpers log each handled error (``quickstart_helpers._api_errors``), each
kernel writes those records to the file the runner names in ``$QUICKSTART_ERROR_LOG``
(:func:`log_handled_errors`, run at kernel start), and the runner checks it after every
cell. A cell that shows an error on purpose (a bad-key demo) carries the cell tag
``expect-api-error``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from tqdm.auto import tqdm

from quickstart_helpers._api_errors import HANDLED_LOGGER
from quickstart_helpers.errors import QuickstartError
from quickstart_helpers.settings import ERROR_LOG_ENV, error_log

from ._kernel import KernelManager, kernel_env, kernel_started, run_in_thread
from ._progress import progress_bar

__all__ = [
    "EXPECTED_ERROR_TAG",
    "HandledErrorInCell",
    "NotebookResult",
    "execute_notebook",
    "run_notebooks",
]

#: Cell tag of a cell that shows an API error on purpose; the runner accepts it there.
EXPECTED_ERROR_TAG = "expect-api-error"


class HandledErrorInCell(QuickstartError):
    """A cell not tagged :data:`EXPECTED_ERROR_TAG` showed a failed model call."""


class _ErrorLog:
    """Reads the records a kernel appends to its ``$QUICKSTART_ERROR_LOG`` file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        path.write_bytes(b"")

    def new_records(self) -> list[dict[str, Any]]:
        """Return the records completed since the last call."""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        records = []
        for line in complete.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            records.append(record if isinstance(record, dict) else {"type": "error"})
        return records


def log_handled_errors() -> None:
    """In a kernel: append each handled API error's record to ``$QUICKSTART_ERROR_LOG``
    as a JSON line (nothing when it is unset)."""
    path = error_log()
    if path is None:
        return

    class _Writer(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            line = json.dumps(getattr(record, "api_error", {"type": "error"})) + "\n"
            try:
                with open(path, "a", encoding="utf-8") as log:
                    log.write(line)
            except OSError:
                pass

    logger = logging.getLogger(HANDLED_LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(_Writer())


def describe_handled_error(record: dict[str, Any]) -> str:
    """One line for a handled error's record, e.g.
    ``ClientError 400 INVALID_ARGUMENT (API_KEY_INVALID)``."""
    words = [str(record.get("type", "error"))]
    words += [str(record[k]) for k in ("code", "status") if record.get(k) is not None]
    if record.get("reasons"):
        words.append(f"({', '.join(map(str, record['reasons']))})")
    return " ".join(words)


def _check_handled_errors(cell: Any, records: list[dict[str, Any]]) -> None:
    if not records or EXPECTED_ERROR_TAG in (cell.get("metadata", {}).get("tags") or []):
        return
    what = describe_handled_error(records[0])
    more = f" (and {len(records) - 1} more)" if len(records) > 1 else ""
    raise HandledErrorInCell(
        f"{what}{more} was shown instead of raised; a cell that shows an API error on "
        f"purpose carries the tag {EXPECTED_ERROR_TAG!r}."
    )


@dataclass
class NotebookResult:
    """The outcome of executing one notebook; ``cells`` counts the code cells executed
    (a failing one too), ``failed_cell`` is 1-based among all cells, ``error`` one line."""

    notebook: Path
    executed: Path  # the executed copy
    cells: int
    seconds: float
    mode: str
    failed_cell: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def execute_notebook(
    path: Path,
    executed: Path,
    *,
    mode: str,
    pacing: str,
    output_root: Path,
    progress: bool = True,
    env: dict[str, str] | None = None,
) -> tuple[Any, NotebookResult]:
    """Execute one notebook in a fresh kernel, write the executed copy to ``executed``
    (which may be ``path``), and return the executed notebook node and the result.

    The kernel runs in the notebook's folder with the environment
    :func:`~quickstart_cli._kernel.kernel_env` gives it (``env`` added, and winning):
    the notebook uses ``mode`` and ``pacing``, and writes its files under
    ``output_root/<notebook stem>/``; the kernel's stderr goes to
    ``output_root/<notebook stem>.kernel.log``.

    Execution stops at the first cell that raises, or that shows a handled API error
    (recorded in ``output_root/<notebook stem>.errors.jsonl``) without the
    ``expect-api-error`` tag; the result names that cell.
    """
    nb = _read(path)
    bar = progress_bar(path, nb, progress=progress)
    try:
        return run_in_thread(
            _execute,
            path,
            nb,
            executed,
            mode=mode,
            pacing=pacing,
            output_root=output_root,
            bar=bar,
            env=env,
        )
    finally:
        bar.close()


def run_notebooks(
    notebooks: list[Path],
    *,
    output_root: Path,
    mode: str,
    pacing: str,
    jobs: int = 1,
    progress: bool = True,
    executed_in: Path | None = None,
    on_result: Callable[[NotebookResult], None] | None = None,
) -> list[NotebookResult]:
    """Execute notebooks, up to ``jobs`` at once; return their results in their order.

    Each notebook runs as :func:`execute_notebook` runs it (its own kernel, and so its
    own emulator offline). With progress on, every notebook has its own bar, on its own
    line in the order given. The executed copies go to ``executed_in/<notebook name>``,
    or back in place when ``executed_in`` is None. ``on_result`` is called with each
    result as soon as its notebook ends, while no bar is drawn, so it may print.

    Raises:
        ValueError: ``jobs`` is below 1, a file is not a notebook, or two notebooks
            share a name (their executed copies and output folders would collide).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    seen: dict[str, Path] = {}
    for path in notebooks:
        if path.stem in seen:
            raise ValueError(
                f"Two notebooks are named {path.stem!r} ({seen[path.stem]} and {path}); their "
                "executed copies and output folders would collide. Run them separately."
            )
        seen[path.stem] = path
    # Read them all first: a notebook that is not valid JSON fails before any kernel starts.
    nbs = [_read(path) for path in notebooks]
    bars = [
        progress_bar(path, nb, progress=progress, position=i)
        for i, (path, nb) in enumerate(zip(notebooks, nbs, strict=True))
    ]
    for bar in bars[jobs:]:
        bar.set_postfix_str("waiting")

    stopping = threading.Event()

    async def run_all() -> list[NotebookResult]:
        slots = asyncio.Semaphore(jobs)

        async def one(path: Path, nb: Any, bar: Any) -> NotebookResult:
            async with slots:
                _, result = await _execute(
                    path,
                    nb,
                    (executed_in / path.name) if executed_in is not None else path,
                    mode=mode,
                    pacing=pacing,
                    output_root=output_root,
                    bar=bar,
                )
            # Once Ctrl-C stops the run, nbclient reports the kernels it shuts down as dead.
            if stopping.is_set():
                bar.end("interrupted")
            elif on_result is not None:
                with tqdm.external_write_mode(file=sys.stderr):
                    on_result(result)
            return result

        # Every notebook ends (its kernel shut down) before an unexpected error is raised.
        outcomes = await asyncio.gather(*map(one, notebooks, nbs, bars), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return outcomes

    try:
        return run_in_thread(run_all, stopping=stopping)
    finally:
        # In order: each closed bar moves the cursor below it, onto the next one.
        for bar in bars:
            bar.close()


def _read(path: Path) -> Any:
    try:
        return nbformat.read(path, as_version=4)
    except (ValueError, UnicodeDecodeError) as exc:  # nbformat's NotJSONError is a ValueError
        raise ValueError(f"{path} is not a notebook: {exc}") from None


async def _execute(
    path: Path,
    nb: Any,
    executed: Path,
    *,
    mode: str,
    pacing: str,
    output_root: Path,
    bar: Any,
    env: dict[str, str] | None = None,
) -> tuple[Any, NotebookResult]:
    """Execute ``nb`` (read from ``path``) as :func:`execute_notebook` describes."""
    current: dict[str, int] = {"index": -1, "done": 0, "last_code": -1}
    bar.reset()  # its clock starts now, not when it was drawn (waiting for a free job)
    bar.set_postfix_str("starting the kernel")

    def on_cell_start(cell: Any, cell_index: int) -> None:
        current["index"] = cell_index
        # The bar counts code cells, as the summary does (its total is theirs).
        bar.set_postfix_str("running")

    def on_cell_executed(cell: Any, cell_index: int, execute_reply: Any) -> None:
        current["done"] += 1
        current["last_code"] = cell_index
        bar.update(1)
        _check_handled_errors(cell, error_log.new_records())

    env = kernel_env(path, executed, mode=mode, pacing=pacing, output_root=output_root, extra=env)
    client = NotebookClient(
        nb,
        timeout=600,  # seconds one cell may run
        kernel_name="python3",
        kernel_manager_class=KernelManager,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        on_notebook_start=lambda **_: kernel_started(nb, client.km),
        on_cell_start=on_cell_start,
        on_cell_executed=on_cell_executed,
        # Handled API errors go to $QUICKSTART_ERROR_LOG (read by _check_handled_errors).
        extra_arguments=[
            "--IPKernelApp.exec_lines="
            "__import__('quickstart_cli._runner')._runner.log_handled_errors()"
        ],
    )
    started = time.perf_counter()
    failed_cell: int | None = None
    error: str | None = None
    executed.parent.mkdir(parents=True, exist_ok=True)
    output_root.mkdir(parents=True, exist_ok=True)
    kernel_log = output_root / f"{path.stem}.kernel.log"
    error_log = _ErrorLog(output_root / f"{path.stem}.errors.jsonl")
    env[ERROR_LOG_ENV] = str(error_log.path.resolve())
    try:
        # The kernel's own stderr (start-up warnings, crash reports) goes to a log file.
        with kernel_log.open("wb") as log:
            await client.async_execute(env=env, stderr=log)
        # An error a background thread handled after the last cell ended.
        if current["last_code"] >= 0:
            current["index"] = current["last_code"]
            _check_handled_errors(nb.cells[current["index"]], error_log.new_records())
    except HandledErrorInCell as exc:
        failed_cell = current["index"] + 1
        error = str(exc)
    except CellExecutionError as exc:
        failed_cell = current["index"] + 1
        error = f"{exc.ename}: {exc.evalue}".strip()
    except Exception as exc:  # noqa: BLE001 - kernel died, timeout ...
        failed_cell = current["index"] + 1 if current["index"] >= 0 else None
        error = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    seconds = time.perf_counter() - started
    nbformat.write(nb, executed)
    # A cell that timed out or lost its kernel did not count itself as executed.
    uncounted = failed_cell is not None and current["last_code"] != failed_cell - 1
    cells = current["done"] + (1 if uncounted else 0)
    bar.end(f"FAILED at cell {failed_cell}" if error else "ok")
    return nb, NotebookResult(path, executed, cells, seconds, mode, failed_cell, error)

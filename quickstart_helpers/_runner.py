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
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from tqdm.auto import tqdm

from ._api_errors import HANDLED_LOGGER
from .errors import HandledErrorInCell
from .paths import repo_root
from .settings import ERROR_LOG_ENV, error_log

__all__ = [
    "EXPECTED_ERROR_TAG",
    "HandledErrorInCell",
    "NotebookResult",
    "execute_notebook",
    "find_notebooks",
    "format_summary",
    "notebook_cassette_dir",
    "recording_kernel_env",
    "run_notebooks",
]

#: Cell tag of a cell that shows an API error on purpose; the runner accepts it there.
EXPECTED_ERROR_TAG = "expect-api-error"


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


def notebook_cassette_dir(notebook: Path) -> Path:
    """Return a notebook's own cassette folder: ``<its folder>/cassettes/<its stem>/``.

    ``quickstart record`` writes there unless told otherwise; ``quickstart run``,
    ``quickstart refresh`` and nbval runs (through the pytest plugin) replay from it.
    """
    return notebook.parent / "cassettes" / notebook.stem


def recording_kernel_env(base_url: str, ca_pem: bytes, api_key: str, bundle: Path) -> dict:
    """Return the environment that sends a kernel's every Gemini client to a recording proxy.

    ``GOOGLE_GEMINI_BASE_URL`` points any ``genai.Client()`` (and ``make_client()`` in
    live mode) at the proxy; ``SSL_CERT_FILE`` is a bundle of the usual certificate
    authorities plus the proxy's (``ca_pem``), written to ``bundle``. The bundle is
    public: certificates only, and the proxy's authority forgot its private key once it
    had signed the proxy's own certificate (see ``emulator/_tls.py``), so a bundle left
    behind (the process killed) lets nobody sign anything. Delete it when the run ends.
    """
    try:
        import certifi

        usual = Path(certifi.where()).read_text("utf-8")
    except (ImportError, OSError):
        usual = ""
    bundle.write_text(usual + "\n" + ca_pem.decode("ascii"), "utf-8")
    return {
        "GOOGLE_GEMINI_BASE_URL": base_url,
        "SSL_CERT_FILE": str(bundle),
        "GEMINI_API_KEY": api_key,
        "QUICKSTART_MODE": "live",
    }


class _KernelManager(AsyncKernelManager):
    """A kernel manager whose connection file never outlives this process.

    The connection file holds the kernel's ports and the HMAC key that signs every
    message to it: whoever reads it can run code in the kernel (with the API key in its
    environment). jupyter_client writes it to the temporary folder and deletes it only at
    a clean shut-down. Here it is deleted as soon as the kernel has answered (it reads the
    file once, at start), and on Linux it never touches the disk at all: it is an
    in-memory file (``memfd``) the kernel opens as ``/proc/<this process>/fd/<n>``, gone
    with this process however it ends (SIGKILL too).
    """

    _memfd: int | None = None

    def write_connection_file(self, **kwargs: Any) -> None:
        if self._memfd is None and hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
            self._memfd = os.memfd_create("kernel-connection")
            os.fchmod(self._memfd, 0o600)  # jupyter_client writes the key only to such a file
            self.connection_file = f"/proc/{os.getpid()}/fd/{self._memfd}"
        super().write_connection_file(**kwargs)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if self._memfd is None:
            return cmd
        # jupyter_client passes the path resolved, which for a memfd names no file.
        resolved = os.path.realpath(self.connection_file)
        return [arg.replace(resolved, self.connection_file) for arg in cmd]

    def cleanup_connection_file(self) -> None:
        super().cleanup_connection_file()
        if self._memfd is not None:
            os.close(self._memfd)
            self._memfd = None


@dataclass
class NotebookResult:
    """The outcome of executing one notebook.

    Attributes:
        notebook: Path of the source notebook.
        executed: Path of the executed copy that was written.
        cells: Number of code cells executed (including a failing one).
        seconds: Wall-clock execution time in seconds.
        mode: ``"live"`` or ``"offline"``.
        failed_cell: 1-based index among all cells of the cell that failed, or None.
        error: One-line description of the failure, or None.
    """

    notebook: Path
    executed: Path
    cells: int
    seconds: float
    mode: str
    failed_cell: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every cell ran without error."""
        return self.error is None


def find_notebooks(paths: list[str] | None = None) -> list[Path]:
    """Return the notebooks to run: ``paths`` (files or folders) or all of ``notebooks/``.

    Raises:
        FileNotFoundError: A named path does not exist or holds no notebook.
    """
    targets = [Path(p) for p in paths] if paths else [(repo_root() or Path.cwd()) / "notebooks"]
    found: list[Path] = []
    for target in targets:
        if target.is_dir():
            notebooks = sorted(p for p in target.glob("*.ipynb"))
            if not notebooks:
                raise FileNotFoundError(f"No notebooks (*.ipynb) in {target}.")
            found.extend(notebooks)
        elif target.is_file() and target.suffix == ".ipynb":
            found.append(target)
        else:
            raise FileNotFoundError(f"{target} is not a notebook (.ipynb) or a folder of them.")
    return found


def execute_notebook(
    path: Path,
    executed: Path,
    *,
    mode: str,
    pacing: str,
    output_root: Path,
    timeout: int = 600,
    progress: bool = True,
    env: dict[str, str] | None = None,
) -> tuple[Any, NotebookResult]:
    """Execute one notebook in a fresh kernel and write the executed copy.

    The kernel runs in the notebook's folder with ``QUICKSTART_MODE``,
    ``QUICKSTART_PACING`` and ``QUICKSTART_OUTPUT_ROOT`` set, so the notebook uses the
    chosen mode and writes its files under ``output_root/<notebook stem>/``. The
    notebook's own cassette folder (:func:`notebook_cassette_dir`), when it exists, is
    added to ``QUICKSTART_CASSETTES``.

    Execution stops at the first cell that raises, or that shows a handled API error
    (recorded in ``output_root/<notebook stem>.errors.jsonl``) without the
    ``expect-api-error`` tag; the result names that cell.

    Args:
        path: The notebook to execute.
        executed: Where to write the executed copy (may equal ``path``).
        mode: ``"live"`` or ``"offline"``.
        pacing: ``"realtime"`` or ``"fast"`` (offline only).
        output_root: Root folder for what notebooks produce. The kernel's stderr goes
            to ``output_root/<notebook stem>.kernel.log``.
        timeout: Seconds one cell may run. Defaults to 600.
        progress: Show a tqdm progress bar over the code cells.
        env: More environment variables for the kernel (they win).

    Returns:
        The executed notebook node and the result.
    """
    nb = nbformat.read(path, as_version=4)
    bar = _progress_bar(path, nb, progress=progress)
    try:
        return _run(
            _execute,
            path,
            nb,
            executed,
            mode=mode,
            pacing=pacing,
            output_root=output_root,
            timeout=timeout,
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
    timeout: int = 600,
    progress: bool = True,
    executed_in: Path | None = None,
    on_result: Callable[[NotebookResult], None] | None = None,
) -> list[NotebookResult]:
    """Execute notebooks, up to ``jobs`` at once, each in its own kernel.

    Each notebook runs as :func:`execute_notebook` runs it (its own kernel, and so its
    own emulator offline; its files under ``output_root/<stem>/``). With progress on,
    every notebook has its own bar, on its own line in the order given.

    Args:
        notebooks: The notebooks, in the order of the results.
        output_root: Root folder for what notebooks produce.
        mode: ``"live"`` or ``"offline"``.
        pacing: ``"realtime"`` or ``"fast"`` (offline only).
        jobs: How many notebooks run at once (at least 1). Defaults to 1.
        timeout: Seconds one cell may run. Defaults to 600.
        progress: Show the progress bars.
        executed_in: Folder of the executed copies (``<folder>/<notebook name>``);
            None writes each notebook back in place. Defaults to None.
        on_result: Called with each result as soon as its notebook ends (in the order
            they end), while no bar is drawn, so it may print.

    Returns:
        One result per notebook, in the order of ``notebooks``.

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
        _progress_bar(path, nb, progress=progress, position=i)
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
                    timeout=timeout,
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
        return _run(run_all, stopping=stopping)
    finally:
        # In order: each closed bar moves the cursor below it, onto the next one.
        for bar in bars:
            bar.close()


def _run(
    main: Callable[..., Any],
    *args: Any,
    stopping: threading.Event | None = None,
    **kwargs: Any,
) -> Any:
    """Run the coroutine function ``main(*args, **kwargs)`` in a thread of its own.

    Returns what it returns.

    In its own thread the event loop works the same inside a running loop (a Jupyter
    kernel), and nbclient leaves the process's signal handlers alone (each of its
    clients would take SIGINT over and shut only its own kernel down). Ctrl-C here sets
    ``stopping`` and cancels ``main`` instead: every kernel is shut down, then
    ``KeyboardInterrupt`` is raised.
    """
    started, done = threading.Event(), threading.Event()
    box: dict[str, Any] = {}

    async def wrapper() -> Any:
        box["loop"], box["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await main(*args, **kwargs)

    def target() -> None:
        try:
            box["result"] = asyncio.run(wrapper())
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            box["error"] = exc
        finally:
            started.set()
            done.set()

    threading.Thread(target=target, name="quickstart-notebooks").start()
    try:
        # Not Thread.join(): before Python 3.13, a join that Ctrl-C interrupts leaves the
        # thread marked as ended, and the next join returns at once.
        done.wait()
    except KeyboardInterrupt:
        if stopping is not None:
            stopping.set()
        started.wait()
        if "task" in box:
            box["loop"].call_soon_threadsafe(box["task"].cancel)
        done.wait()
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]


class _NotebookBar(tqdm):
    """A notebook's progress bar whose clock stops when the notebook ends.

    With several notebooks at once, the bars stay drawn until the last one ends; a
    stopped clock keeps each bar's elapsed time that of its own notebook.
    """

    _ended_at: float | None = None

    def end(self, status: str) -> None:
        """Stop the clock and show ``status`` (``ok``, ``FAILED at cell 3``)."""
        if self.disable:  # hidden (or closed): no clock
            return
        self._ended_at = self._time()
        self.set_postfix_str(status)

    @property
    def format_dict(self) -> dict[str, Any]:
        """tqdm's figures, the elapsed time frozen once :meth:`end` was called."""
        figures = super().format_dict
        if self._ended_at is not None:
            figures["elapsed"] = self._ended_at - self.start_t
        return figures


def _read(path: Path) -> Any:
    try:
        return nbformat.read(path, as_version=4)
    except (ValueError, UnicodeDecodeError) as exc:  # nbformat's NotJSONError is a ValueError
        raise ValueError(f"{path} is not a notebook: {exc}") from None


def _progress_bar(
    path: Path, nb: Any, *, progress: bool, position: int | None = None
) -> _NotebookBar:
    return _NotebookBar(
        total=sum(1 for c in nb.cells if c.cell_type == "code"),
        desc=path.stem,
        unit="cell",
        disable=not progress,
        file=sys.stderr,
        leave=True,
        position=position,
    )


async def _execute(
    path: Path,
    nb: Any,
    executed: Path,
    *,
    mode: str,
    pacing: str,
    output_root: Path,
    timeout: int,
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

    extra = env or {}
    env = dict(os.environ)
    env.update(
        QUICKSTART_MODE=mode,
        QUICKSTART_PACING=pacing,
        QUICKSTART_OUTPUT_ROOT=str(output_root.resolve()),
        # Where the executed copy lives, so links to output files resolve from it.
        QUICKSTART_NOTEBOOK_DIR=str(executed.parent.resolve()),
        PYTHONUNBUFFERED="1",
    )
    own = notebook_cassette_dir(path)
    if own.is_dir():
        listed = [p for p in (env.get("QUICKSTART_CASSETTES") or "").split(os.pathsep) if p]
        env["QUICKSTART_CASSETTES"] = os.pathsep.join([*listed, str(own.resolve())])
    env.update(extra)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=_KernelManager,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        on_notebook_start=lambda **_: _started(nb, client.km),
        on_cell_start=on_cell_start,
        on_cell_executed=on_cell_executed,
        # Handled API errors go to $QUICKSTART_ERROR_LOG (read by _check_handled_errors).
        extra_arguments=[
            "--IPKernelApp.exec_lines="
            "__import__('quickstart_helpers._runner')._runner.log_handled_errors()"
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


def _started(nb: Any, km: Any) -> None:
    """Once the kernel has answered: delete its connection file (it has read it), and
    store its spec as JupyterLab does when it opens the notebook.

    JupyterLab writes the kernel's ``name``, ``display_name`` and ``language`` into
    ``metadata.kernelspec`` (and its ``language_info``, which nbclient stores): a
    notebook whose stored spec differs (``"Python 3"`` against ipykernel's ``"Python 3
    (ipykernel)"``) opens marked as modified.
    """
    km.cleanup_connection_file()
    spec = km.kernel_spec
    nb.metadata["kernelspec"] = {
        "display_name": spec.display_name,
        "language": spec.language,
        "name": km.kernel_name,
    }


def format_summary(results: list[NotebookResult]) -> str:
    """Return a plain-text table: notebook, cells, seconds, mode, status."""
    rows = [("notebook", "cells", "seconds", "mode", "status")]
    for r in results:
        status = "ok" if r.ok else f"FAILED at cell {r.failed_cell}"
        rows.append((r.notebook.name, str(r.cells), f"{r.seconds:.1f}", r.mode, status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

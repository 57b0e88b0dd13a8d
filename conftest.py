"""Test-wide set-up: offline mode, fast pacing, and nbval that applies display updates.

nbval keeps a display's first payload, while JupyterLab and nbclient (which stores our
notebooks) keep its last: ``update_display_data`` replaces the output with the same
``display_id`` and ``clear_output`` clears the cell. The hook below applies those two
messages to the outputs nbval collects for the running cell, the way nbclient does,
and changes nothing else: every other message reaches nbval untouched and all outputs
are compared as before.

pytest-xdist runs the suite in parallel (``-n auto`` in pyproject's addopts). The
scheduler below keeps each notebook's cells together, in order, on one worker (nbval
runs them in one kernel), keeps together the test modules whose module-scoped fixtures
are costly (:data:`WHOLE_MODULES`: JupyterLab servers, a browser), and hands out every
other test on its own. Each worker gets its own output folder.

Each notebook is executed once, by nbval, as a user who installed the package runs it: a
copy of it alone in a fresh folder, with a kernel of the built wheel's environment (built
once per run, in the background while the workers start: ``tests/_wheel.py``). That one
execution is nbval's strict check and the wheel check of issue 13 (each notebook from a
folder holding only it, in a fresh environment with the wheel); the folder must hold only
the notebook when it ends. After nbval's own comparison passes, the same
execution is checked more strictly against the stored notebook (the freshness check:
a stored notebook is its canonical offline execution): execution counts run 1, 2, 3 ...
over the code cells, and every output type and MIME type is compared, images included
(nbval skips PNG and JPEG payloads), see ``tests/notebook_compare.py``.
"""

from __future__ import annotations

import copy
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import nbval.kernel as nbval_kernel
import nbval.plugin as nbval_plugin
import pytest
from nbformat import NotebookNode, from_dict

from tests import _wheel, _zygote
from tests.notebook_compare import canonical_problems

# Bytecode caches on, whatever PYTHONDONTWRITEBYTECODE says: each xdist worker would
# otherwise rewrite every test module's asserts again (about 3 s of CPU per worker), and
# each of the suite's kernels and subprocesses would compile quickstart_helpers again.
# The caches go to __pycache__/ folders, which git ignores.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Tests never go live and never wait for recorded delays.
for _name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
    os.environ.pop(_name, None)
os.environ["QUICKSTART_MODE"] = "offline"
os.environ["QUICKSTART_PACING"] = "fast"
# What notebooks write goes to a temporary folder, one per pytest-xdist worker.
_output_root = os.environ.get("QUICKSTART_OUTPUT_ROOT") or tempfile.mkdtemp(
    prefix="quickstart-test-run-"
)
_worker = os.environ.get("PYTEST_XDIST_WORKER")
os.environ["QUICKSTART_OUTPUT_ROOT"] = (
    os.path.join(_output_root, _worker) if _worker else _output_root
)


# Kernels started here (nbval, nbclient) get ports no loopback connection can take.
_zygote.keep_kernel_ports_off_the_ephemeral_range()

# Kernels are forked from one warm process (tests/_zygote.py) rather than started cold: a
# kernel's imports of ipykernel and the SDK cost about 1.3 s of CPU each. Started once by
# the first pytest process; xdist workers, kernels and nested pytest runs inherit it.
if not _worker and not os.environ.get(_zygote.SOCKET_ENV):
    _zygote_process, os.environ[_zygote.SOCKET_ENV] = _zygote.start()
    _zygote.warm(os.environ[_zygote.SOCKET_ENV])  # while pytest starts its workers
    _kernelspecs = tempfile.mkdtemp(prefix="quickstart-test-kernels-")
    _zygote.install_kernelspec(_kernelspecs)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (_kernelspecs, os.environ.get("JUPYTER_PATH")) if p
    )

    # The built wheel in a fresh environment (tests/_wheel.py), for the notebooks and the
    # wheel test: built in the background while the workers start.
    _wheel_builders: list[_wheel.Builder] = []

    def pytest_configure(config):  # type: ignore[no-untyped-def]
        """Start building the wheel environment if the run reaches the notebooks or the
        wheel test."""
        if _wheel.needed(list(config.args), config.invocation_params.dir):
            folder = tempfile.mkdtemp(prefix="quickstart-test-wheel-")
            os.environ[_wheel.FOLDER_ENV] = folder
            _wheel_builders.append(_wheel.Builder(Path(folder)))
            _wheel_builders[-1].start()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_setupnodes(config, specs):  # type: ignore[no-untyped-def]
        """Start the xdist workers from the zygote too (a worker imports the SDK)."""
        for spec in specs:
            if spec.popen and not spec.python:
                spec.python = " ".join(shlex.quote(a) for a in _zygote.command([]))

    def pytest_unconfigure(config):  # type: ignore[no-untyped-def]
        """Stop the kernel zygotes (their kernels end with their launchers)."""
        for builder in _wheel_builders:
            builder.stop()
            shutil.rmtree(builder.folder, ignore_errors=True)
        _zygote_process.terminate()
        _zygote_process.wait()
        shutil.rmtree(_kernelspecs, ignore_errors=True)


pytest_plugins = ["pytester"]

#: pytest-xdist workers per CPU for ``-n auto``. Many tests wait (on kernels, servers,
#: browsers and subprocesses): with one worker per CPU the suite used under half of the
#: machine's CPU time. With three, the busy phases ran so many kernels, servers and
#: browsers at once that the same tests took about 20% more CPU time in all (2 cores:
#: 4 workers 67-71 s, 6 workers 74-83 s, 3 workers 78 s).
WORKERS_PER_CPU = 2


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):  # type: ignore[no-untyped-def]
    """``-n auto``: :data:`WORKERS_PER_CPU` workers per CPU this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus * WORKERS_PER_CPU)


#: Test modules run whole on one worker: their module-scoped fixtures (two JupyterLab
#: servers, the JavaScript SDK's install, a browser) would otherwise be built once per
#: worker.
WHOLE_MODULES = frozenset(
    {
        "tests/test_player_browser.py",
        "tests/test_js_sdk.py",
        "tests/test_browser.py",
        "tests/test_browser_resume.py",
    }
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):  # type: ignore[no-untyped-def]
    """Schedule a notebook's cells as one unit (on one worker, in order), each module of
    :data:`WHOLE_MODULES` as one unit, and other tests alone.

    (``--dist loadgroup`` with ``xdist_group`` marks would do it, but pytest-xdist 3.8
    renames node ids in a way pytest 9.2 ignores.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class NotebookScheduling(LoadScopeScheduling):
        _ordered = False

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path.endswith(".ipynb") or path in WHOLE_MODULES else nodeid

        def _assign_work_unit(self, node):  # type: ignore[no-untyped-def]
            if not self._ordered:
                # Longest first, so that no long unit starts near the end of the run.
                units = sorted(self.workqueue.items(), key=lambda unit: _start_rank(*unit))
                self.workqueue.clear()
                self.workqueue.update(units)
                self._ordered = True
            super()._assign_work_unit(node)

    return NotebookScheduling(config, log)


#: Units that take longest (seconds of waiting on servers, browsers, subprocesses), in the
#: order the scheduler starts them; a hint only: a wrong one costs time, not correctness.
LONGEST_FIRST = (
    "tests/test_player_browser.py",
    "tests/test_browser.py",
    "tests/test_browser_resume.py",
    "tests/test_web_hardening.py::test_500_concurrent_streams",
    "tests/test_record_workflow.py::test_a_recorded_notebook_passes_nbval_offline",
    "tests/test_js_sdk.py",
)


def _start_rank(scope: str, tests: dict) -> tuple[int, int]:
    """Sort key of a work unit: :data:`LONGEST_FIRST` in order, then more tests first."""
    for rank, prefix in enumerate(LONGEST_FIRST):
        if scope.startswith(prefix):
            return (rank, 0)
    return (len(LONGEST_FIRST), -len(tests))


_original_runtest = nbval_plugin.IPyNbCell.runtest
_original_setup = nbval_plugin.IPyNbFile.setup
_original_teardown = nbval_plugin.IPyNbFile.teardown
_original_get_kernel_spec = nbval_kernel.NbvalKernelspecManager.get_kernel_spec
_original_get_message = nbval_plugin.IPyNbFile.get_kernel_message
_original_execute = nbval_kernel.RunningKernel.execute_cell_input


#: nbval's kernel for the repository's notebooks: the wheel's environment (tests/_wheel.py).
WHEEL_KERNEL = ":quickstart-wheel"
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


def _get_kernel_spec(self, kernel_name):  # type: ignore[no-untyped-def]
    """nbval's kernel of this environment (``--nbval-current-env``), forked from the zygote:
    the same Python and environment as nbval's own spec, with the imports done once. For
    the repository's notebooks, the same from the wheel's environment and its zygote."""
    if kernel_name == WHEEL_KERNEL:
        wheel = _wheel.wait()
        spec = _original_get_kernel_spec(self, nbval_kernel.CURRENT_ENV_KERNEL_NAME)
        spec.argv = _zygote.kernel_command(wheel.python)
        spec.env = {_zygote.SOCKET_ENV: wheel.env[_zygote.SOCKET_ENV]}
        return spec
    spec = _original_get_kernel_spec(self, kernel_name)
    if kernel_name == nbval_kernel.CURRENT_ENV_KERNEL_NAME and os.environ.get(_zygote.SOCKET_ENV):
        spec.argv = _zygote.kernel_command(sys.executable)
    return spec


def _alone(path: Path) -> Path | None:
    """The folder a repository notebook runs in (a copy of it alone there, made here), or
    None for any other notebook (nbval's own way: in its folder, this environment)."""
    if path.parent != NOTEBOOKS or not os.environ.get(_wheel.FOLDER_ENV):
        return None
    alone = Path(os.environ[_wheel.FOLDER_ENV]) / "alone"
    alone.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{path.stem}-", dir=alone))
    shutil.copy(path, folder / path.name)
    return folder


def _setup(self):  # type: ignore[no-untyped-def]
    """nbval's setup, except that a repository notebook runs as a user who installed the
    wheel runs it: alone in a fresh folder, in the wheel's environment (issue 13's check),
    so the one execution serves both that check and nbval's."""
    path = Path(str(self.fspath))
    self._alone = _alone(path)
    if self._alone is None:
        return _original_setup(self)
    self.kernel = nbval_kernel.RunningKernel(
        WHEEL_KERNEL,
        cwd=str(self._alone),
        startup_timeout=self.config.option.nbval_kernel_startup_timeout,
    )
    self.setup_sanitize_files()


def _teardown(self):  # type: ignore[no-untyped-def]
    _original_teardown(self)
    folder = getattr(self, "_alone", None)
    if folder is not None:
        left = sorted(p.name for p in folder.iterdir())
        assert left == [self.fspath.basename], (
            f"running the notebook alone left files in its folder: {left}"
        )


def _execute_cell_input(self, cell_input, allow_stdin=None):  # type: ignore[no-untyped-def]
    self.last_msg_id = _original_execute(self, cell_input, allow_stdin=allow_stdin)
    return self.last_msg_id


def _runtest(self):  # type: ignore[no-untyped-def]
    file = self.parent
    file._display_cell = self
    file._displays = {}
    file._pending_display = None
    file._clear_pending = False
    # The cell's outputs as nbclient would store them (nbval merges and edits its own copy).
    file._fresh_outputs = []
    file._fresh_displays = {}
    stored = copy.deepcopy(self.cell)  # nbval's stream merging edits the stored outputs
    try:
        _original_runtest(self)
    finally:
        file._display_cell = None
    problems = canonical_problems(file.nb, self.cell, stored, file._fresh_outputs, self.options)
    if problems:
        self.raise_cell_error(
            "The stored cell is not the canonical offline execution. Run "
            f"`python3 -m uv run quickstart refresh notebooks/{file.fspath.basename}` "
            "and commit it",
            "\n".join(problems),
        )


def _record_fresh_output(file, msg) -> None:  # type: ignore[no-untyped-def]
    """Keep the cell's outputs the way nbclient stores them, for the canonical check."""
    kind, content = msg["msg_type"], msg["content"]
    display_id = (content.get("transient") or {}).get("display_id")
    if kind == "update_display_data":
        for target in file._fresh_displays.get(display_id, []):
            target["data"] = from_dict(content["data"])
        return
    if msg["parent_header"].get("msg_id") != getattr(file.kernel, "last_msg_id", None):
        return
    if kind == "clear_output":
        if not content.get("wait"):
            del file._fresh_outputs[:]
        return
    if kind == "stream":
        out = NotebookNode(output_type=kind, name=content["name"], text=content["text"])
    elif kind in ("display_data", "execute_result"):
        out = NotebookNode(output_type=kind, data=from_dict(content["data"]))
        if display_id:
            file._fresh_displays.setdefault(display_id, []).append(out)
    elif kind == "error":
        out = NotebookNode(output_type=kind, ename=content["ename"], evalue=content["evalue"])
    else:
        return
    file._fresh_outputs.append(out)


def _get_kernel_message(self, timeout=None, stream="iopub"):  # type: ignore[no-untyped-def]
    cell = getattr(self, "_display_cell", None)
    if stream != "iopub" or cell is None:
        return _original_get_message(self, timeout=timeout, stream=stream)
    while True:
        outputs = getattr(cell, "test_outputs", None)
        pending, self._pending_display = self._pending_display, None
        if pending is not None and outputs is not None and len(outputs) == pending[1] + 1:
            # nbval appended the display we let through last time: remember that output.
            self._displays[pending[0]] = outputs[-1]
        msg = _original_get_message(self, timeout=timeout, stream=stream)
        kind, content = msg["msg_type"], msg["content"]
        if self._clear_pending and kind in ("display_data", "execute_result", "stream", "error"):
            if msg["parent_header"].get("msg_id") == getattr(self.kernel, "last_msg_id", None):
                del self._fresh_outputs[:]
        _record_fresh_output(self, msg)
        if kind == "update_display_data":
            target = self._displays.get((content.get("transient") or {}).get("display_id"))
            if target is not None:
                target["data"] = from_dict(content["data"])
                target["metadata"] = from_dict(content.get("metadata") or {})
            continue
        if kind == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            elif outputs is not None:
                del outputs[:]
                self._displays.clear()
            continue
        if kind in ("display_data", "execute_result", "stream", "error"):
            if self._clear_pending and outputs is not None:
                del outputs[:]
                self._displays.clear()
            self._clear_pending = False
            display_id = (content.get("transient") or {}).get("display_id")
            if kind == "display_data" and display_id and outputs is not None:
                self._pending_display = (display_id, len(outputs))
        return msg


nbval_plugin.IPyNbCell.runtest = _runtest
nbval_plugin.IPyNbFile.get_kernel_message = _get_kernel_message
nbval_kernel.RunningKernel.execute_cell_input = _execute_cell_input
nbval_kernel.NbvalKernelspecManager.get_kernel_spec = _get_kernel_spec
nbval_plugin.IPyNbFile.setup = _setup
nbval_plugin.IPyNbFile.teardown = _teardown

"""Test-wide set-up: offline mode, fast pacing, the ``slow`` marker, and nbval's outputs.

- Tests never go live and never wait for recorded delays; what notebooks write goes to a
  temporary folder, one per pytest-xdist worker.
- Tests that start kernels, a browser or other processes, and load tests, are marked
  ``slow`` (:data:`SLOW`): ``pytest -m "not slow"`` is the fast tier.
- Kernels get TCP ports no other process of the run can take first (:func:`_hold_ports`).
- nbval compares each notebook cell's outputs as JupyterLab and nbclient (which stores our
  notebooks) keep them (:func:`_get_kernel_message`), then checks the stored cell is the
  canonical offline execution (``tests/notebook_compare.py``).
"""

from __future__ import annotations

import copy
import os
import random
import socket
import sys
import tempfile
from pathlib import Path

import nbval.plugin as nbval_plugin
import pytest
from nbformat import NotebookNode, from_dict

from tests.notebook_compare import canonical_problems

# Bytecode caches on, whatever PYTHONDONTWRITEBYTECODE says: the kernels and subprocesses
# of the suite would otherwise compile quickstart_helpers again, each of them.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

for _name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
    os.environ.pop(_name, None)
os.environ["QUICKSTART_MODE"] = "offline"
os.environ["QUICKSTART_PACING"] = "fast"
_output_root = os.environ.get("QUICKSTART_OUTPUT_ROOT") or tempfile.mkdtemp(prefix="quickstart-")
os.environ["QUICKSTART_OUTPUT_ROOT"] = _output_root
_worker = os.environ.get("PYTEST_XDIST_WORKER")
os.environ["QUICKSTART_OUTPUT_ROOT"] = (
    os.path.join(_output_root, _worker) if _worker else _output_root
)

pytest_plugins = ["pytester"]

#: Tests marked ``slow`` (node id prefixes: a whole module, or tests by name), besides
#: every notebook and every test that uses the ``browser`` fixture: those that start Jupyter
#: kernels, IPython or JupyterLab, Node, espeak-ng or a ``quickstart`` command, and the load tests
#: (hundreds of connections, megabytes of parts). Add yours here when it starts a process.
SLOW = (
    "tests/test_authoring.py",
    "tests/test_browser_lookup.py",
    "tests/test_display.py",
    "tests/test_display_thoughts.py",
    "tests/test_emulator_command.py",
    "tests/test_emulator_flood.py",
    "tests/test_extension.py",
    "tests/test_install.py",
    "tests/test_js_sdk.py",
    "tests/test_no_recording.py",
    "tests/test_notebooks_fresh.py",
    "tests/test_player_browser.py",
    "tests/test_readme_snippets.py",
    "tests/test_record_keys.py",
    "tests/test_record_workflow.py",
    "tests/test_runner.py",
    "tests/test_conformance_rest.py::test_cli_emulator",
    "tests/test_emulator.py::test_an_emulator_never_stopped",
    "tests/test_emulator_hardening.py::test_500_concurrent",
    "tests/test_emulator_hardening.py::test_unmatched_1mb",
    "tests/test_interactions.py::test_an_emulator_that_serves_no_interaction",
    "tests/test_parts.py::test_stream_parts_in_a_jupyter_kernel",
    "tests/test_wav.py::test_a_sigkilled_writer",
    "tests/test_wav.py::test_a_chunk_the_os_refuses",
    "tests/test_web.py::test_quickstart_serve",
    "tests/test_web_hardening.py::test_500_concurrent",
    "tests/test_web_hardening.py::test_a_signal_stops_quickstart_serve",
    "tests/test_web_hardening.py::test_a_failure_at_any_step",
    "tests/test_web_limits.py::test_sigkill",
    "tests/test_web_resume.py::test_quickstart_serve",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: starts kernels, a browser or commands; load tests")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        notebook = item.path.suffix == ".ipynb"
        if notebook or item.nodeid.startswith(SLOW) or "browser" in item.fixturenames:
            item.add_marker(pytest.mark.slow)


def _hold_ports() -> None:
    """Give kernels ports below the OS's ephemeral range, held until the kernel is done.

    jupyter_client picks a kernel's five ports by binding port 0 and closing the socket;
    the kernel binds them a moment later. Meanwhile the load tests' hundreds of loopback
    connections (whose local ports come from the ephemeral range, as port 0 does) or
    another worker's kernel could take one, and the kernel died ("Address already in
    use"). Here each port is bound by a holder that refuses other binds but not the
    kernel's (ZeroMQ binds with SO_REUSEADDR; the holder sets it after its own bind and
    never listens). Only kernels this process starts (nbval's, nbclient's) get it.
    """
    from jupyter_client.connect import LocalPortCache

    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            ephemeral = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return  # not Linux: jupyter_client's own choice
    return_port = LocalPortCache.return_port

    def find(self, ip: str) -> int:  # type: ignore[no-untyped-def]
        while True:
            port = random.randrange(max(1024, ephemeral - 16384), ephemeral)
            holder = socket.socket()
            try:
                holder.bind((ip, port))
            except OSError:
                holder.close()
                continue
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.__dict__.setdefault("held", {})[port] = holder
            self.currently_used_ports.add(port)
            return port

    def give_back(self, port: int) -> None:  # type: ignore[no-untyped-def]
        holder = self.__dict__.get("held", {}).pop(port, None)
        if holder is not None:
            holder.close()
        return_port(self, port)

    LocalPortCache.find_available_port, LocalPortCache.return_port = find, give_back


_hold_ports()

# -- nbval's display-update hook -----------------------------------------------------
# Why it exists: nbval keeps a display's first payload and ignores clear_output, while
# JupyterLab and nbclient (which stores our notebooks) keep the last: update_display_data
# replaces the output with the same display_id, clear_output empties the cell. Our
# notebooks stream into updated displays, so nbval alone would compare the first chunk
# with the stored whole answer. This hook builds the running cell's outputs as nbclient
# does and hands nbval that list when the cell ends; nbval compares it as usual.

_get_message = nbval_plugin.IPyNbFile.get_kernel_message


def _output(msg: dict) -> NotebookNode | None:
    kind, content = msg["msg_type"], msg["content"]
    if kind == "stream":
        return NotebookNode(output_type=kind, name=content["name"], text=content["text"])
    if kind in ("display_data", "execute_result"):
        out = NotebookNode(output_type=kind, data=from_dict(content["data"]))
        out.metadata = from_dict(content.get("metadata") or {})
        if kind == "execute_result":
            out.execution_count = content["execution_count"]
        return out
    if kind == "error":
        keys = ("ename", "evalue", "traceback")
        return NotebookNode(output_type=kind, **{k: content[k] for k in keys})
    return None


def _get_kernel_message(self, timeout=None, stream="iopub"):  # type: ignore[no-untyped-def]
    cell = getattr(self, "running_cell", None)
    while True:
        msg = _get_message(self, timeout=timeout, stream=stream)
        if stream != "iopub" or cell is None:
            return msg
        kind, content = msg["msg_type"], msg["content"]
        parent = msg["parent_header"].get("msg_id")
        if kind == "execute_input":
            cell.msg_id = parent
        display_id = (content.get("transient") or {}).get("display_id")
        if kind == "update_display_data":  # whichever cell asked
            for out in cell.displays.get(display_id, []):
                out.data = from_dict(content["data"])
                out.metadata = from_dict(content.get("metadata") or {})
            continue
        if parent != getattr(cell, "msg_id", None):
            return msg
        if kind == "clear_output":
            cell.clear_pending = content.get("wait", False)
            if not cell.clear_pending:
                cell.fresh.clear()
            continue
        out = _output(msg)
        if out is not None:
            if cell.clear_pending:
                cell.fresh.clear()
                cell.clear_pending = False
            cell.fresh.append(out)
            if display_id:
                cell.displays.setdefault(display_id, []).append(out)
        elif kind == "status" and content["execution_state"] == "idle":
            cell.test_outputs[:] = copy.deepcopy(cell.fresh)  # nbval's list, as nbclient's
        return msg


# -- The canonical check: after nbval's, the same outputs (images too) and the execution
# counts a fresh top-to-bottom run gives (tests/notebook_compare.py).

_runtest = nbval_plugin.IPyNbCell.runtest


def _runtest_canonical(self):  # type: ignore[no-untyped-def]
    self.fresh, self.displays, self.clear_pending = [], {}, False
    stored = copy.deepcopy(self.cell)  # nbval's stream merging edits the stored outputs
    self.parent.running_cell = self
    try:
        _runtest(self)
    finally:
        self.parent.running_cell = None
    problems = canonical_problems(self.parent.nb, self.cell, stored, self.fresh, self.options)
    if problems:
        name = Path(str(self.parent.fspath)).name
        self.raise_cell_error(
            "The stored cell is not the canonical offline execution. Run "
            f"`python3 -m uv run quickstart refresh notebooks/{name}` and commit it",
            "\n".join(problems),
        )


nbval_plugin.IPyNbCell.runtest = _runtest_canonical
nbval_plugin.IPyNbFile.get_kernel_message = _get_kernel_message

"""The suite's warm kernels (tests/_zygote.py) behave as kernels started cold: they run in
the requester's folder and environment, Ctrl-C interrupts a cell, and a killed kernel
leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from jupyter_client.manager import KernelManager

from . import _kernels, _zygote
from ._kernels import run_code


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[tuple[KernelManager, object]]:
    """A kernel from the suite's kernelspec, started in ``tmp_path`` with one extra variable."""
    assert os.environ.get(_zygote.SOCKET_ENV), "conftest.py starts the zygote"
    manager = KernelManager(kernel_name="python3")
    env = {**os.environ, "ZYGOTE_TEST_VALUE": "from the requester"}
    with _kernels.running(manager, cwd=tmp_path, env=env) as client:
        yield manager, client


def test_a_kernel_is_forked_with_the_requesters_folder_and_environment(kernel, tmp_path) -> None:
    manager, client = kernel
    out = run_code(
        client,
        "import os, sys, google.genai\n"
        "print(os.getcwd()); print(os.environ['ZYGOTE_TEST_VALUE']); print(sys.path[0])\n"
        "print(os.getppid())",
    )
    assert out["status"] == "ok", out
    cwd, value, first_path, parent = out["stdout"].splitlines()
    assert Path(cwd) == tmp_path and Path(first_path) == tmp_path
    assert value == "from the requester"
    # Its parent is the zygote, not the launcher jupyter_client started.
    assert int(parent) != manager.provisioner.process.pid
    assert "_zygote.py" in " ".join(psutil.Process(int(parent)).cmdline())


def test_interrupt_reaches_the_forked_kernel(kernel, tmp_path) -> None:
    manager, client = kernel
    marker = tmp_path / "running"
    msg_id = client.execute(f"import time; open({str(marker)!r}, 'w').close(); time.sleep(60)")
    deadline = time.monotonic() + 30
    while not marker.exists():  # interrupt the cell once it runs, not the kernel on its way
        assert time.monotonic() < deadline, "the cell never ran"
        time.sleep(0.02)
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=20)
    while reply["parent_header"].get("msg_id") != msg_id:  # e.g. wait_for_ready's kernel_info
        reply = client.get_shell_msg(timeout=20)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    # After an error ipykernel aborts the requests already queued, until it reports idle:
    # the next cell goes after that, as a notebook's next run would.
    while True:
        msg = client.get_iopub_msg(timeout=20)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["content"].get("execution_state") == "idle"
        ):
            break
    assert run_code(client, "print(6 * 7)")["stdout"] == "42\n", "the kernel lives on"


def test_a_killed_launcher_takes_its_kernel_with_it(kernel) -> None:
    manager, client = kernel
    pid = int(run_code(client, "import os; print(os.getpid())")["stdout"])
    forked = psutil.Process(pid)
    manager.shutdown_kernel(now=True)  # SIGKILL to the launcher's process group
    forked.wait(timeout=10)
    assert not psutil.pid_exists(pid) or forked.status() == psutil.STATUS_ZOMBIE


def test_without_a_zygote_the_launcher_becomes_an_ordinary_kernel(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(_zygote.SOCKET_ENV)
    manager = KernelManager(kernel_name="python3")
    with _kernels.running(manager, cwd=tmp_path) as client:
        out = run_code(client, "import os; print(os.getpid(), os.getppid())")
        pid, parent = map(int, out["stdout"].split())
        assert pid == manager.provisioner.process.pid  # the launcher exec'd ipykernel
        assert parent == os.getpid()


def test_a_command_runs_as_python_would(tmp_path) -> None:
    """A script and ``-m module``, with exactly the given environment and folder, the exit
    code passed back."""
    script = tmp_path / "x.py"
    script.write_text(
        "import os, sys\nprint(__name__, sys.argv[1:], os.getcwd(), os.getenv('X'))\nexit(3)"
    )
    done = _zygote.run([str(script), "a", "b"], cwd=tmp_path, env={"X": "y", "PATH": "/bin"})
    assert (done.returncode, done.stdout) == (3, f"__main__ ['a', 'b'] {tmp_path} y\n"), done
    (tmp_path / "in.json").write_text('{"a": 1}')
    done = _zygote.run(["-m", "json.tool", "--compact", "in.json"], cwd=tmp_path, env={})
    assert (done.returncode, done.stdout) == (0, '{"a":1}\n'), done


def test_a_command_runs_python_c_as_execnet_starts_an_xdist_worker(tmp_path) -> None:
    """``-u -c CODE args``: ``__main__`` runs CODE in the given folder, with ``sys.argv``
    as ``python -c`` sets it, and its output unbuffered (it arrives though the process
    ends without flushing)."""
    code = "import os, sys\nprint(__name__, sys.argv, os.getcwd())\nos._exit(3)"
    done = _zygote.run(["-u", "-c", code, "a", "b"], cwd=tmp_path, env={"PATH": "/bin"})
    assert (done.returncode, done.stdout) == (3, f"__main__ ['-c', 'a', 'b'] {tmp_path}\n"), done


@pytest.mark.parametrize("disposition", [signal.SIG_IGN, signal.SIG_DFL])
def test_a_command_takes_its_launchers_signal_dispositions(tmp_path, disposition) -> None:
    """As a new ``python`` would: SIGINT and SIGTERM ignored where the launcher started with
    them ignored (a shell's background job), else Python's own handlers, whatever the
    zygote's are."""
    code = (
        "import signal\n"
        "handlers = map(signal.getsignal, (signal.SIGINT, signal.SIGTERM))\n"
        "print(*(getattr(h, '__name__', None) or signal.Handlers(h).name for h in handlers))"
    )

    def start_as(disposition):  # type: ignore[no-untyped-def]
        return lambda: [signal.signal(s, disposition) for s in (signal.SIGINT, signal.SIGTERM)]

    done = subprocess.run(
        _zygote.command(["-c", code]),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=start_as(disposition),
    )
    expected = {
        signal.SIG_IGN: "SIG_IGN SIG_IGN",
        signal.SIG_DFL: "default_int_handler SIG_DFL",
    }[disposition]
    assert (done.returncode, done.stdout.strip()) == (0, expected), done.stderr


def test_kernel_ports_are_below_the_ephemeral_range(kernel) -> None:
    """No loopback connection of the load tests can take a port a kernel is about to bind."""
    manager, _ = kernel
    with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
        ephemeral_low = int(f.read().split()[0])
    ports = [
        manager.shell_port,
        manager.iopub_port,
        manager.stdin_port,
        manager.control_port,
        manager.hb_port,
    ]
    assert all(1024 <= port < ephemeral_low for port in ports), ports


def test_a_warmed_zygote_still_forks_what_it_is_asked_for(tmp_path) -> None:
    """``warm`` (a connection that asks for nothing, so the preloads are imported at once)
    leaves the zygote serving requests."""
    process, path = _zygote.start()
    try:
        _zygote.warm(path)
        _zygote.warm(path)
        done = _zygote.run(
            ["-c", "import sys; print('google.genai' in sys.modules)"],
            cwd=tmp_path,
            env={"PATH": "/bin", _zygote.SOCKET_ENV: path},
        )
        assert (done.returncode, done.stdout) == (0, "True\n"), done
    finally:
        process.terminate()
        process.wait()


def test_a_picked_kernel_port_is_held_for_the_kernel_until_returned() -> None:
    """No other process's bind gets a port jupyter_client picked for a kernel; the kernel's
    own (ZeroMQ's) does; once the port is returned, anyone's does."""
    import socket

    import zmq
    from jupyter_client.connect import LocalPortCache

    _zygote.keep_kernel_ports_off_the_ephemeral_range()
    cache = LocalPortCache()
    port = cache.find_available_port("127.0.0.1")

    def plain_bind_works() -> bool:
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port))
            except OSError:
                return False
            return True

    assert not plain_bind_works()
    context = zmq.Context()
    kernel_socket = context.socket(zmq.PUB)
    try:
        kernel_socket.bind(f"tcp://127.0.0.1:{port}")
    finally:
        kernel_socket.close(linger=0)
        context.term()
    cache.return_port(port)
    assert plain_bind_works()

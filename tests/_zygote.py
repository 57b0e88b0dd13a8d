"""Warm Python processes for the test suite: kernels and scripts forked from one process
that has already imported ipykernel, the SDK and the helpers, instead of importing them again.

A notebook's kernel spends about 1.3 s of CPU before its first cell's own work: 0.4 s to
start ipykernel, 0.9 s to import ``google.genai`` (its pydantic models are built at import).
The suite starts about forty kernels (nbval, the runner tests, the display tests, the
record workflow), a dozen helper processes (``quickstart serve``, README snippets) and
its xdist workers (``python -u -c`` from execnet), so that start-up was a third of the
suite's CPU time.

Two parts, standard library only (the launcher also runs under other environments' Pythons):

- :func:`serve` is the zygote: started once per pytest run by conftest.py, it imports what
  a kernel imports, then for each request forks a child with the requester's argv,
  environment, folder, standard streams and ignored signals, which becomes the kernel
  (``ipykernel``'s own entry point) or runs the script, module or ``-c`` code as
  ``python`` would (:mod:`runpy`).
- :func:`launch` is the requester: the kernelspec's command (``python tests/_zygote.py -f
  {connection_file}``, installed for the run by :func:`install_kernelspec` ahead of the
  default ``python3``), or :func:`command` for a script. It asks the zygote for the process
  and stands in for it: signals it receives go to the child, and it exits as the child
  exits. When it is killed, the zygote kills the child. With no zygote, or under another
  Python, it simply becomes ``python -m ipykernel_launcher ...`` or ``python ...``.

The kernel is the real ipykernel in a real process over the real ZeroMQ sockets, a script
a real process with its own ``__main__``; only the imports were done once, ahead of time.
Tests of what a cold process imports start Python directly, not through here.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Environment variable holding the zygote's socket path (inherited by workers and kernels).
SOCKET_ENV = "PYTEST_KERNEL_ZYGOTE"

#: The launcher's first argument that asks for a script rather than a kernel.
RUN = "--run"

#: Signals whose disposition a child takes from its launcher, as a new ``python`` takes
#: its parent's: ignored stays ignored (e.g. SIGINT under a shell's background job),
#: otherwise Python's own start-up handler.
INHERITED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

#: What a notebook kernel imports before and during its first cells.
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.comm",
    "IPython.core.interactiveshell",
    "IPython.display",
    "google.genai",
    "google.genai.types",
    "google.genai.chats",
    "google.genai.live",
    "google.genai.interactions",  # notebook 06, `quickstart serve --api interactions`
    "quickstart_helpers",
    "quickstart_helpers.client",
    "quickstart_helpers.display",
    "quickstart_helpers.parts",
    "quickstart_helpers.chat",
    "quickstart_helpers.wav",
    "quickstart_helpers.retry",
    "quickstart_helpers.emulator",
    "quickstart_helpers.emulator._server",
    "quickstart_helpers.emulator._http",
    "quickstart_helpers.emulator._live",
    "quickstart_helpers.emulator._tls",
    "quickstart_helpers.web",
    "dotenv",
    "PIL.Image",
    "nbformat",
    "quickstart_helpers.settings",
    "quickstart_helpers.errors",
    "aiohttp.web",
    # What a pytest-xdist worker imports besides its plugins and test modules.
    "pytest",
    "execnet",
    "jupyter_client",
    "httpx",
    "playwright.sync_api",
)


@dataclass(frozen=True)
class Finished:
    """How a script ended: its exit code and what it wrote to stdout and stderr."""

    returncode: int
    stdout: str
    stderr: str


def run(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 180,
    python: str = sys.executable,
) -> Finished:
    """Run ``argv`` as ``python *argv`` would (``[script, ...]``, ``["-m", module, ...]`` or
    ``["-c", code, ...]``), with exactly ``env``, in ``cwd``, in a process forked from the
    zygote of ``python`` (the README snippets: each its own ``__main__``; a script that
    forgets an import still fails). The zygote is the one ``env`` names in
    :data:`SOCKET_ENV`, else this process's.

    Raises:
        TimeoutError: The script ran longer than ``timeout`` seconds (it is killed).
    """
    launcher_env = dict(env)
    if os.environ.get(SOCKET_ENV):
        launcher_env.setdefault(SOCKET_ENV, os.environ[SOCKET_ENV])
    try:
        done = subprocess.run(
            command(list(argv), python=python),
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


def command(argv: list[str], *, python: str = sys.executable) -> list[str]:
    """The command that runs ``python *argv`` in a process forked from the zygote named by
    :data:`SOCKET_ENV` (or, without one or under another Python, in a plain ``python``)."""
    return [python, os.path.abspath(__file__), RUN, *argv]


def kernel_command(python: str) -> list[str]:
    """A kernelspec's ``argv`` that starts a kernel through :func:`launch` under ``python``
    (forked from the zygote named by :data:`SOCKET_ENV`, else a plain ipykernel)."""
    return [python, os.path.abspath(__file__), "-f", "{connection_file}"]


def install_kernelspec(folder: str) -> None:
    """Write a ``python3`` kernelspec under ``folder/kernels/`` whose command is :func:`launch`.

    Put ``folder`` first on ``JUPYTER_PATH``. Its command starts with ``python3``, which
    jupyter_client replaces with the Python that starts the kernel, as for the default spec.
    """
    spec_dir = os.path.join(folder, "kernels", "python3")
    os.makedirs(spec_dir, exist_ok=True)
    spec = {
        "argv": kernel_command("python3"),
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": True},
    }
    with open(os.path.join(spec_dir, "kernel.json"), "w", encoding="utf-8") as out:
        json.dump(spec, out)


def start(
    python: str = sys.executable, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a zygote under ``python`` (with environment ``env``, default this process's);
    return ``(process, socket_path)`` once it listens. Stop it with ``process.terminate()``.

    Kernels forked from it run with the requesting launcher's environment and folder, but
    ``sys.path`` beyond the folder and ``PYTHONPATH`` is the zygote's: start it with the
    environment the kernels' Python would otherwise start with.
    """

    folder = tempfile.mkdtemp(prefix="kernel-zygote-")
    path = os.path.join(folder, "zygote.sock")
    ready_r, ready_w = os.pipe()
    process = subprocess.Popen(
        [python, os.path.abspath(__file__), "--serve", path, str(ready_w)],
        pass_fds=(ready_w,),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as ready:
        ready.read()  # closed by the zygote once it listens (or dies)
    return process, path


# ---------------------------------------------------------------------------------------
# The zygote


def warm(path: str) -> None:
    """Have the zygote listening on ``path`` import :data:`PRELOAD` now, in the background,
    rather than at its first request (a connection that asks for nothing)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
        conn.connect(path)


def serve(path: str, ready_fd: int | None = None) -> None:
    """Listen on ``path`` and fork a child per request, once :data:`PRELOAD` is imported
    (at the first connection: a request, or :func:`warm`, which conftest.py and the wheel's
    builder make as soon as they start the zygote).

    Ends when the process that started it ends, or on SIGTERM.
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if ready_fd is not None:
        os.close(ready_fd)

    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    parent = os.getppid()
    try:
        while os.getppid() == parent:
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    _preload()
                    pid = _fork_child(conn, listener, [wake_r, wake_w], children)
                    if pid:
                        children[pid] = conn
                        selector.register(conn, selectors.EVENT_READ, pid)
                elif key.fileobj == wake_r:
                    try:
                        os.read(wake_r, 4096)
                    except BlockingIOError:
                        pass
                else:
                    # The launcher never writes after its request: this is its end.
                    _kill(key.data)
            _reap(children, selector)
    finally:
        for pid in children:
            _kill(pid)
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def _preload() -> None:
    import gc
    import importlib
    import threading

    if _preloaded:
        return
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    # Built once here rather than in every child: the SDK's and the cassettes' pydantic
    # validators are made on first use (about 0.5 s of CPU per kernel or server that
    # starts an emulator). Cassettes are read again by each child's own store.
    try:
        from quickstart_helpers.emulator import CassetteStore
    except ImportError:
        pass
    else:
        CassetteStore()
    keep_kernel_ports_off_the_ephemeral_range()
    assert threading.active_count() == 1, "a preloaded module started a thread"
    # Objects made so far are left out of garbage collection: a child's first collection
    # would otherwise touch, and so copy, every page it shares with the zygote.
    gc.collect()
    gc.freeze()
    _preloaded.append(True)


_preloaded: list[bool] = []


def keep_kernel_ports_off_the_ephemeral_range() -> None:
    """Make jupyter_client give kernels TCP ports that no other process of the suite can take
    before the kernel binds them.

    jupyter_client picks a kernel's five ports by binding port 0 and closing the socket; the
    kernel binds them a moment later. In that moment another process could take the port,
    and the kernel died at start ("Address already in use"): the load tests' hundreds of
    loopback connections (their local ports come from the OS's ephemeral range, as port 0
    does), or another worker's kernel. So ports come from below the ephemeral range, and
    each is held until the kernel is done with it: bound by a socket that refuses every
    other bind (SO_REUSEADDR set only after its own bind) but not the kernel's (ZeroMQ
    binds with SO_REUSEADDR, and the holder never listens). Applied in every process of the
    suite that starts kernels (conftest, the zygote and so everything forked from it);
    without jupyter_client, does nothing.
    """
    try:
        from jupyter_client.connect import LocalPortCache
    except ImportError:
        return
    if getattr(LocalPortCache.find_available_port, "off_ephemeral_range", False):
        return  # already (a process forked from the zygote)
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return  # not Linux: jupyter_client's own choice
    low, high = max(1024, ephemeral_low - 16384), ephemeral_low
    original_find, original_return = LocalPortCache.find_available_port, LocalPortCache.return_port

    def find_available_port(self, ip: str) -> int:  # type: ignore[no-untyped-def]
        held = self.__dict__.setdefault("_held", {})
        for _ in range(1000):
            port = random.randrange(low, high)
            if port in self.currently_used_ports:
                continue
            holder = socket.socket()
            try:
                holder.bind((ip, port))  # refused if any socket has it (or it is in TIME_WAIT)
            except OSError:
                holder.close()
                continue
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the kernel's bind
            held[port] = holder
            self.currently_used_ports.add(port)
            return port
        return original_find(self, ip)

    def return_port(self, port: int) -> None:  # type: ignore[no-untyped-def]
        holder = self.__dict__.get("_held", {}).pop(port, None)
        if holder is not None:
            holder.close()
        original_return(self, port)

    find_available_port.off_ephemeral_range = True  # type: ignore[attr-defined]
    LocalPortCache.find_available_port = find_available_port
    LocalPortCache.return_port = return_port


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(children: dict[int, socket.socket], selector: selectors.BaseSelector) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        selector.unregister(conn)
        try:
            conn.send(f"exit {os.waitstatus_to_exitcode(status)}".encode())
        except OSError:
            pass
        conn.close()


def _fork_child(conn, listener, fds, children) -> int:  # type: ignore[no-untyped-def]
    try:
        data, passed, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        request = json.loads(data)
    except (OSError, ValueError):
        conn.close()
        return 0
    if request.get("prefix") != sys.prefix or len(passed) != 3:
        conn.send(b"refused")
        conn.close()
        for fd in passed:
            os.close(fd)
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _become_child(request, passed, [listener, conn, *children.values()], fds)
    for fd in passed:
        os.close(fd)
    conn.send(f"pid {pid}".encode())
    return pid


def _become_child(request, passed, sockets, fds) -> None:  # type: ignore[no-untyped-def]
    """In the forked child: take the launcher's place and run ipykernel or the script.
    Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        ignored = set(request.get("ignored", ()))
        for signum in INHERITED_SIGNALS:
            if signum in ignored:
                signal.signal(signum, signal.SIG_IGN)
            elif signum == signal.SIGINT:
                signal.signal(signum, signal.default_int_handler)  # KeyboardInterrupt
            else:
                signal.signal(signum, signal.SIG_DFL)
        for sock in sockets:
            sock.close()
        for fd in fds:
            os.close(fd)
        os.setsid()
        for target, fd in enumerate(passed):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        env = request["env"]
        os.environ.clear()
        os.environ.update(env)
        tempfile.tempdir = None  # chosen from the environment on first use
        argv = list(request["argv"])
        flags = []
        while argv and argv[0] in ("-u", "-B"):  # the interpreter options execnet passes
            flags.append(argv.pop(0))
        if "-B" in flags:
            sys.dont_write_bytecode = True
        if "-u" in flags:
            env = {**env, "PYTHONUNBUFFERED": "1"}
        # As `python` would have it: the script's folder (or, for -m and -c, the current
        # one) first, then PYTHONPATH.
        here = argv[0] in ("-m", "-c")
        first = request["cwd"] if here else os.path.dirname(os.path.abspath(argv[0]))
        extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:1] = [first, *[p for p in extra if p not in sys.path]]
        if request["kernel"]:
            _run_kernel(argv, env)
        else:
            _run_script(argv, env)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit
            import threading

            threading._shutdown()  # type: ignore[attr-defined]
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _run_kernel(argv: list[str], env: dict[str, str]) -> None:
    sys.argv = [os.path.join(os.path.dirname(__file__), "ipykernel_launcher"), *argv[2:]]
    # Read from the environment when ipykernel was imported, i.e. in the zygote.
    if env.get("JPY_PARENT_PID"):
        sys.argv.append(f"--IPKernelApp.parent_handle={int(env['JPY_PARENT_PID'])}")
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


def _run_script(argv: list[str], env: dict[str, str]) -> None:
    import runpy

    # Standard streams as a new interpreter makes them on pipes or files.
    line = bool(env.get("PYTHONUNBUFFERED"))
    encoding = env.get("PYTHONIOENCODING") or "utf-8"
    sys.stdin = open(0, encoding=encoding, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", 1 if line else -1, encoding=encoding, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", 1, encoding=encoding, errors="backslashreplace", closefd=False)  # noqa: SIM115
    if argv[0] == "-c":
        import types

        sys.argv = ["-c", *argv[2:]]
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        exec(compile(argv[1], "<string>", "exec"), main.__dict__)  # noqa: S102 - as python -c
    elif argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name="__main__")


# ---------------------------------------------------------------------------------------
# The launcher


def launch(argv: list[str]) -> None:
    """Run ``python *argv`` from the zygote: a kernel for ``-f CONNECTION_FILE ...`` (the
    kernelspec's arguments), else ``argv`` after :data:`RUN` as a script or ``-m`` module.
    Without a zygote, become that process."""
    kernel = argv[:1] != [RUN]
    argv = ["-m", "ipykernel_launcher", *argv] if kernel else argv[1:]
    path = os.environ.get(SOCKET_ENV)
    conn = None
    if path:
        try:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            conn.connect(path)
            request = {
                "prefix": sys.prefix,
                "kernel": kernel,
                "argv": argv,
                "env": dict(os.environ),
                "cwd": os.getcwd(),
                # What a new `python` started here would ignore (before `forward` below).
                "ignored": [
                    int(s) for s in INHERITED_SIGNALS if signal.getsignal(s) == signal.SIG_IGN
                ],
            }
            socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
            reply = conn.recv(64).decode()
        except OSError:
            reply = "refused"
        if not reply.startswith("pid "):
            conn.close()
            conn = None
    if conn is None:
        os.execv(sys.executable, [sys.executable, *argv])
    pid = int(reply.split()[1])

    def forward(signum, _frame):  # type: ignore[no-untyped-def]
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    while True:
        try:
            reply = conn.recv(64).decode()
            break
        except InterruptedError:
            continue
    code = int(reply.split()[1]) if reply.startswith("exit ") else 1
    if code < 0:
        if -code != signal.SIGKILL:  # whose disposition cannot be set
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
    else:
        launch(sys.argv[1:])

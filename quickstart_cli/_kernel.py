"""The Jupyter kernels notebooks run in: their environment, connection file and spec, and
the thread their event loop runs in (Ctrl-C shuts them down)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_client import AsyncKernelManager


def notebook_cassette_dir(notebook: Path) -> Path:
    """Return a notebook's own cassette folder: ``<its folder>/cassettes/<its stem>/``.

    ``quickstart record`` writes there unless told otherwise; ``quickstart run``,
    ``quickstart refresh`` and nbval runs (through the pytest plugin) replay from it.
    """
    return notebook.parent / "cassettes" / notebook.stem


def kernel_env(
    path: Path,
    executed: Path,
    *,
    mode: str,
    pacing: str,
    output_root: Path,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment of the kernel that runs the notebook ``path``.

    This process's environment with ``QUICKSTART_MODE``, ``QUICKSTART_PACING`` and
    ``QUICKSTART_OUTPUT_ROOT`` set, ``QUICKSTART_NOTEBOOK_DIR`` the folder of the executed
    copy (links to output files resolve from it), the notebook's own cassette folder added
    to ``QUICKSTART_CASSETTES`` when it exists, then ``extra`` (which wins), and this
    Python's ``bin`` folder first on ``PATH``.
    """
    env = dict(os.environ)
    env.update(
        QUICKSTART_MODE=mode,
        QUICKSTART_PACING=pacing,
        QUICKSTART_OUTPUT_ROOT=str(output_root.resolve()),
        QUICKSTART_NOTEBOOK_DIR=str(executed.parent.resolve()),
        PYTHONUNBUFFERED="1",
    )
    own = notebook_cassette_dir(path)
    if own.is_dir():
        listed = [p for p in (env.get("QUICKSTART_CASSETTES") or "").split(os.pathsep) if p]
        env["QUICKSTART_CASSETTES"] = os.pathsep.join([*listed, str(own.resolve())])
    env.update(extra or {})
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


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


class KernelManager(AsyncKernelManager):
    """A kernel manager whose connection file never outlives this process.

    The connection file holds the kernel's ports and the HMAC key that signs every
    message to it: whoever reads it can run code in the kernel (with the API key in its
    environment). jupyter_client writes it to the temporary folder and deletes it only at
    a clean shut-down. Here it is deleted as soon as the kernel has answered (it reads the
    file once, at start: :func:`kernel_started`), and on Linux it never touches the disk
    at all: it is an in-memory file (``memfd``) the kernel opens as
    ``/proc/<this process>/fd/<n>``, gone with this process however it ends (SIGKILL too).
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


def kernel_started(nb: Any, km: Any) -> None:
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


def run_in_thread(
    main: Callable[..., Any],
    *args: Any,
    stopping: threading.Event | None = None,
    **kwargs: Any,
) -> Any:
    """Run the coroutine function ``main(*args, **kwargs)`` in a thread of its own, on an
    event loop of its own, and return what it returns.

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

"""Jupyter kernels in tests: start one and run code in it (real kernels, real ZeroMQ)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def running(manager: Any, *, cwd: Path, env: dict[str, str] | None = None) -> Iterator[Any]:
    """Start ``manager``'s kernel in ``cwd`` (with ``env``, default this process's); yield its
    client once the kernel answers; then stop the client and shut the kernel down (if it is
    still alive: a test may have ended it)."""
    manager.start_kernel(cwd=str(cwd), **({} if env is None else {"env": env}))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        if manager.is_alive():
            manager.shutdown_kernel(now=True)


def run_code(client: Any, code: str, timeout: float = 30) -> dict[str, Any]:
    """Execute ``code``; return its reply's status, what it printed and its error's name."""
    outputs = _Outputs()
    reply = client.execute_interactive(code, timeout=timeout, output_hook=outputs)
    return {"status": reply["content"]["status"], "stdout": outputs.text, "error": outputs.error}


class _Outputs:
    def __init__(self) -> None:
        self.text = ""
        self.error: str | None = None

    def __call__(self, msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            self.text += msg["content"]["text"]
        elif msg["msg_type"] == "error":
            self.error = msg["content"]["ename"]

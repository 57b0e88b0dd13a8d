"""Serve an aiohttp application from a daemon thread with its own event loop.

Both the Gemini API emulator and the web chat run this way, so a notebook (whose
kernel owns the main event loop) or a test can start them and keep going.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["BackgroundServer", "start_background_server"]


@dataclass
class BackgroundServer:
    """A running aiohttp server and the thread whose loop serves it.

    Attributes:
        loop: The event loop the handlers run on.
        thread: The daemon thread running ``loop``.
        runner: The aiohttp runner (cleaned up by :meth:`stop`).
        app: The application being served.
        port: The TCP port it listens on.
    """

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    runner: web.AppRunner
    app: web.Application
    port: int

    def call(self, coroutine: Any, timeout: float = 10) -> Any:
        """Run ``coroutine`` on the server's loop and return its result.

        Raises:
            TimeoutError: It did not finish within ``timeout`` seconds.
        """
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self, timeout: float = 10) -> None:
        """Stop the loop (the runner is cleaned up first) and wait for the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)


def start_background_server(
    make_app: Callable[[], web.Application],
    *,
    host: str,
    port: int,
    name: str,
    ssl_context: ssl.SSLContext | None = None,
    startup_timeout: float = 30,
    runner_class: type[web.AppRunner] = web.AppRunner,
    **runner_kwargs: Any,
) -> BackgroundServer:
    """Build an app with ``make_app`` in a new thread's loop and serve it there.

    Args:
        make_app: Returns the ``aiohttp.web.Application``; called on the new loop.
        host: Address to listen on, e.g. ``"127.0.0.1"``.
        port: TCP port; 0 picks a free one.
        name: The thread's name (shown in tracebacks and debuggers).
        ssl_context: Serve HTTPS with this context; None serves plain HTTP.
        startup_timeout: Seconds to wait for the port to open. Defaults to 30.
        runner_class: ``aiohttp.web.AppRunner`` or a subclass of it.
        **runner_kwargs: Passed on to ``runner_class``. Unless given otherwise,
            ``handler_cancellation=True`` (a handler stops when its client leaves) and
            ``shutdown_timeout=0.5`` (seconds handlers get to finish when the server
            stops before they are cancelled), so stopping never waits on a stream a
            client abandoned.

    Returns:
        The running server, once its port is open.

    Raises:
        RuntimeError: The app could not be built or the port could not be opened; the
            message says why.
    """
    runner_kwargs.setdefault("handler_cancellation", True)
    runner_kwargs.setdefault("shutdown_timeout", 0.5)
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            app = make_app()
            runner = runner_class(app, **runner_kwargs)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
            loop.run_until_complete(site.start())
            started.update(app=app, runner=runner, port=runner.addresses[0][1])
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            started["error"] = exc
            ready.set()
            loop.close()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if not ready.wait(startup_timeout):
        raise RuntimeError(f"{name} did not open its port within {startup_timeout} s.")
    if "error" in started:
        raise RuntimeError(f"{name} could not start: {started['error']}") from started["error"]
    return BackgroundServer(loop, thread, started["runner"], started["app"], started["port"])

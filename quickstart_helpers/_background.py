"""Serve an aiohttp application from a daemon thread with its own event loop.

Both the Gemini API emulator and the web chat run this way, so a notebook (whose kernel
owns the main event loop) or a test can start them and keep going.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

#: ``(status, request, detail) -> response``: the answer to a request aiohttp could not parse.
ErrorAnswer = Callable[[int, web.BaseRequest | None, str], web.StreamResponse]


class ErrorAnsweringRunner(web.AppRunner):
    """An ``AppRunner`` that answers requests aiohttp cannot parse with ``error_answer``.

    aiohttp answers those itself (a request line over the limit, a broken header), in
    ``text/plain`` and before any middleware; here ``error_answer(status, request,
    detail)`` builds the answer (``detail``: aiohttp's message on one line, at most 200
    characters) and the connection is closed after it.
    """

    def __init__(self, app: web.Application, *, error_answer: ErrorAnswer, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._error_answer = error_answer

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        answer = self._error_answer

        class Handler(RequestHandler):
            def handle_error(self, request, status=500, exc=None, message=None):  # type: ignore[no-untyped-def]
                super().handle_error(request, status, exc, message)  # logs; raises if sent
                response = answer(status, request, " ".join((message or "").split())[:200])
                response.force_close()
                return response

        class Server(web.Server):
            def __call__(self) -> RequestHandler:
                return Handler(self, loop=self._loop, **self._kwargs)

        server.__class__ = Server
        return server


@dataclass
class BackgroundServer:
    """A running aiohttp server and the daemon thread whose loop serves it."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    runner: web.AppRunner
    app: web.Application
    host: str
    port: int

    @property
    def url(self) -> str:
        """The server's address, e.g. ``http://127.0.0.1:8000/``."""
        return f"http://{self.host}:{self.port}/"

    def call(self, coroutine: Any, timeout: float = 10) -> Any:
        """Run ``coroutine`` on the server's loop and return its result."""
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
    runner_class: type[web.AppRunner] = web.AppRunner,
    **runner_kwargs: Any,
) -> BackgroundServer:
    """Build an app with ``make_app`` on a new thread's loop and serve it there.

    ``runner_kwargs`` go to ``runner_class``; unless given, ``handler_cancellation=True``
    (a handler stops when its client leaves) and ``shutdown_timeout=0.5`` (stopping never
    waits long on a stream a client abandoned). Returns once the port is open (0 picks a
    free one); raises RuntimeError saying why when the app or the port fails.
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
    if not ready.wait(30):
        raise RuntimeError(f"{name} did not open its port within 30 s.")
    if "error" in started:
        raise RuntimeError(f"{name} could not start: {started['error']}") from started["error"]
    return BackgroundServer(loop, thread, started["runner"], started["app"], host, started["port"])

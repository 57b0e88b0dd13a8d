"""Serve an aiohttp app from a daemon thread with its own event loop, so a notebook (whose
kernel owns the main loop) or a test can start a server and keep going. The emulator and
the web chat both run this way."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


class BackgroundServer:
    """``make_app()``'s app on ``host``:``port`` (0: a free one) from a daemon thread, once
    started (``start()`` or ``with``). ``error_answer(status, request, detail)`` answers what
    aiohttp cannot parse (else ``text/plain``); ``runner_kwargs`` go to ``web.AppRunner``."""

    def __init__(
        self,
        make_app: Callable[[], web.Application],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "aiohttp app",
        ssl_context: ssl.SSLContext | None = None,
        error_answer: Callable[..., web.StreamResponse] | None = None,
        new_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
        **runner_kwargs: Any,
    ) -> None:
        self.make_app, self.host, self.port, self.name = make_app, host, port, name
        self.ssl_context, self.error_answer, self.new_loop = ssl_context, error_answer, new_loop
        # A handler stops when its client leaves; stopping waits at most 0.5 s for one.
        self.runner_kwargs = dict(handler_cancellation=True, shutdown_timeout=0.5) | runner_kwargs
        self.runner: web.AppRunner | None = None
        self.thread: threading.Thread | None = None  # and its ``loop``, made by start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def running(self) -> bool:
        return self.runner is not None

    def call(self, coroutine: Any, timeout: float = 10) -> Any:
        """Run ``coroutine`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> Any:
        """Serve; return self once the port is open (RuntimeError saying why if it cannot)."""
        if self.runner is None:
            loop = self.loop = self.new_loop()
            self.thread = threading.Thread(target=loop.run_forever, name=self.name, daemon=True)
            self.thread.start()
            try:
                self.port = self.call(self._start(), 30)
            except Exception as exc:
                self.stop()
                raise RuntimeError(f"{self.name} could not start: {exc}") from exc
        return self

    async def _start(self) -> int:
        runner = web.AppRunner(self.make_app(), **self.runner_kwargs)
        await runner.setup()
        if self.error_answer is not None:  # each connection's handler answers with it
            runner.server.__class__ = _server_answering(self.error_answer)  # type: ignore[union-attr]
        self.runner = runner
        await web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context).start()
        return runner.addresses[0][1]

    def stop(self) -> None:
        """Stop serving (the app's shutdown and cleanup run), then the loop and thread."""
        runner, self.runner = self.runner, None
        if runner is not None:
            with contextlib.suppress(Exception):  # e.g. a cleanup that took too long
                self.call(runner.cleanup())
        if self.thread is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            if not self.thread.is_alive():
                self.loop.close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _server_answering(error_answer: Callable[..., web.StreamResponse]) -> type[web.Server]:
    """A ``web.Server`` answering unparsable requests with ``error_answer``, then closing."""

    class Handler(RequestHandler):
        def handle_error(self, request, status=500, exc=None, message=None):  # type: ignore[no-untyped-def]
            super().handle_error(request, status, exc, message)  # logs; raises if sent
            response = error_answer(status, request, " ".join((message or "").split())[:200])
            response.force_close()
            return response

    class Server(web.Server):
        def __call__(self) -> RequestHandler:
            return Handler(self, loop=self._loop, **self._kwargs)

    return Server

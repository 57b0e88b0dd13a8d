"""Serve an aiohttp application from a daemon thread with its own event loop.

Both the Gemini API emulator and the web chat run this way, so a notebook (whose
kernel owns the main event loop) or a test can start them and keep going. Both also
share :class:`ErrorAnsweringRunner` (requests aiohttp cannot parse are answered in the
server's own JSON error shape, not aiohttp's ``text/plain``) and
:func:`raise_open_file_limit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = [
    "BackgroundServer",
    "ErrorAnswer",
    "ErrorAnsweringRunner",
    "raise_open_file_limit",
    "start_background_server",
]

#: Builds the answer to a request aiohttp could not parse: ``(status, request, detail)``
#: to a response (the connection is closed after it).
ErrorAnswer = Callable[[int, web.BaseRequest | None, str], web.StreamResponse]


class ErrorAnsweringRunner(web.AppRunner):
    """An ``AppRunner`` whose connections answer unparsable requests with ``error_answer``.

    aiohttp answers a request it cannot parse (a request line or header over the limit,
    a broken header) itself, in ``text/plain``, before any middleware runs; this runner's
    connection handler asks ``error_answer`` for the response instead.

    Args:
        app: The application.
        error_answer: ``(status, request, detail) -> response``; ``detail`` is aiohttp's
            message, folded to one line of at most 200 characters.
        **kwargs: Passed on to ``aiohttp.web.AppRunner``.
    """

    def __init__(self, app: web.Application, *, error_answer: ErrorAnswer, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._error_answer = error_answer

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        answer = self._error_answer

        class Handler(RequestHandler):
            def handle_error(
                self,
                request: web.BaseRequest,
                status: int = 500,
                exc: BaseException | None = None,
                message: str | None = None,
            ) -> web.StreamResponse:
                super().handle_error(request, status, exc, message)  # logs; raises if sent
                response = answer(status, request, " ".join((message or "").split())[:200])
                response.force_close()
                return response

        class Server(web.Server):
            def __call__(self) -> RequestHandler:
                return Handler(self, loop=self._loop, **self._kwargs)

        server.__class__ = Server
        return server


def raise_open_file_limit(target: int = 65536) -> int:
    """Raise this process's soft limit of open files towards ``target``.

    Each stream holds descriptors (a client connection; offline, also a connection to
    the emulator and the emulator's end of it), and the common default soft limit of
    1,024 is reached at a few hundred streams. The soft limit is raised up to the hard
    limit, which needs no privilege. Does nothing where the OS has no such limit.

    Args:
        target: The soft limit wanted. Defaults to 65,536.

    Returns:
        The soft limit now in force (-1 for unlimited or unknown).
    """
    try:
        import resource
    except ImportError:  # Windows
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    return -1 if soft == resource.RLIM_INFINITY else soft


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

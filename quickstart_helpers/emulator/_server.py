"""The emulator's lifecycle: an aiohttp app with TLS, served from a background thread.

The routes live in :mod:`._http` (REST and SSE), :mod:`._interactions` (the
Interactions API) and :mod:`._live` (the Live API's WebSocket); this module starts and
stops them and builds the client options that reach them.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .. import settings
from .._background import BackgroundServer, start_background_server
from ..settings import Pacing
from . import _http, _interactions, _live
from ._cassettes import CassetteStore
from ._protocol import ReceivedRequest
from ._tls import LocalCertificate, make_local_certificate

__all__ = ["Emulator", "get_emulator", "stop_emulator"]


@dataclass
class Emulator:
    """The Gemini API emulator, run in a background thread.

    Args:
        store: Cassettes to replay. Defaults to the shipped cassettes, then the
            folders in ``$QUICKSTART_CASSETTES``.
        pacing: ``"realtime"`` waits each chunk's recorded ``delay_ms``; ``"fast"``
            sends at once. Defaults to :func:`quickstart_helpers.settings.pacing`.
        host: Address to listen on. Defaults to ``127.0.0.1``.
        port: TCP port; 0 picks a free one. Defaults to 0.
        sse_newline: Line ending of SSE events, ``"\\n"`` or ``"\\r\\n"``.
        sse_split_json: Spread each event's JSON over several ``data:`` lines.

    Attributes:
        requests: Every request received, in order (for tests and teaching).
    """

    store: CassetteStore = field(default_factory=CassetteStore)
    pacing: Pacing = field(default_factory=settings.pacing)
    host: str = "127.0.0.1"
    port: int = 0
    sse_newline: str = "\n"
    sse_split_json: bool = False
    requests: list[ReceivedRequest] = field(default_factory=list)
    certificate: LocalCertificate | None = None
    _server: BackgroundServer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.pacing not in ("realtime", "fast"):
            raise ValueError(f"pacing must be 'realtime' or 'fast', not {self.pacing!r}")
        if self.sse_newline not in ("\n", "\r\n"):
            raise ValueError("sse_newline must be '\\n' or '\\r\\n'")

    # -- lifecycle -----------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:{port}``, the value for ``HttpOptions.base_url``."""
        return f"https://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._server is not None

    def build_app(self) -> web.Application:
        """Return the aiohttp application with the emulator's routes."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        _http.add_routes(app, self)
        _live.add_routes(app, self)
        _interactions.add_routes(app, self)
        return app

    def start(self) -> Emulator:
        """Start serving in a daemon thread; return self once the port is open.

        Raises:
            RuntimeError: The port could not be opened (e.g. it is in use).
        """
        if self._server is not None:
            return self
        if self.certificate is None:
            self.certificate = make_local_certificate()
        self._server = start_background_server(
            self.build_app,
            host=self.host,
            port=self.port,
            name="The Gemini API emulator",
            ssl_context=self.certificate.server_context(),
            access_log=None,
        )
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- client configuration --------------------------------------------------------
    def http_options(self, **kwargs: Any) -> Any:
        """Return ``google.genai.types.HttpOptions`` that reach this emulator.

        The options carry the base URL and an ``ssl.SSLContext`` trusting the
        emulator's certificate, for the sync client, the async client and the Live
        API's WebSocket. ``kwargs`` are passed on to ``HttpOptions``.
        """
        from google.genai import types

        if self.certificate is None:
            raise RuntimeError("Start the emulator before asking for its http_options.")
        ctx = self.certificate.client_context()
        return types.HttpOptions(
            base_url=self.base_url,
            client_args={"verify": ctx},
            async_client_args={"verify": ctx, "ssl": ctx},
            **kwargs,
        )

    def shell_exports(self) -> str:
        """Return ``export`` lines that point an unmodified ``genai.Client()`` here."""
        assert self.certificate is not None
        return "\n".join(
            [
                f"export GOOGLE_GEMINI_BASE_URL={self.base_url}",
                "export GEMINI_API_KEY=offline-emulator",
                f"export SSL_CERT_FILE={self.certificate.cert_file}",
            ]
        )

    async def sleep(self, delay_ms: int) -> None:
        """Wait ``delay_ms`` milliseconds in realtime pacing; return at once in fast pacing."""
        if self.pacing == "realtime" and delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)


_shared: Emulator | None = None
_shared_lock = threading.Lock()


def get_emulator(pacing: Pacing | None = None) -> Emulator:
    """Return this process's shared emulator, starting it on first use.

    It is stopped when the process exits.

    Args:
        pacing: Set the shared emulator's pacing (``"realtime"`` or ``"fast"``).
            Defaults to :func:`quickstart_helpers.settings.pacing`.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            emulator = Emulator() if pacing is None else Emulator(pacing=pacing)
            _shared = emulator.start()
            atexit.register(stop_emulator)
        elif pacing is not None:
            _shared.pacing = pacing
        return _shared


def stop_emulator() -> None:
    """Stop the shared emulator if it runs."""
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.stop()
            _shared = None

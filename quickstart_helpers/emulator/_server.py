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
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import settings
from .._background import (
    BackgroundServer,
    ErrorAnsweringRunner,
    raise_open_file_limit,
    start_background_server,
)
from ..settings import Pacing
from . import _auth_tokens, _http, _interactions, _live, _middleware, _models
from ._auth_tokens import TokenStore
from ._live import ResumptionStore
from ._protocol import RequestLog
from ._store import CassetteStore
from ._tls import LocalCertificate, make_local_certificate

if TYPE_CHECKING:
    from ._record import Recorder

__all__ = [
    "BODY_TIMEOUT_S",
    "Emulator",
    "HEADER_TIMEOUT_S",
    "LIVE_SETUP_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "get_emulator",
    "stop_emulator",
]

#: Largest request body (or Live API message) accepted, in bytes; larger gets 413.
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Seconds a connection has to send a complete request head (also the idle time after
#: which a kept-alive connection is closed).
HEADER_TIMEOUT_S = 30.0
#: Seconds a request has to send its whole body; then 408 and the connection closes.
BODY_TIMEOUT_S = 60.0
#: Seconds a Live API WebSocket has to send its ``setup`` message; then it is closed
#: with code 1011 ("Deadline expired ...").
LIVE_SETUP_TIMEOUT_S = 30.0


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
        recorder: Record mode (:class:`~quickstart_helpers.emulator._record.Recorder`):
            what no cassette answers is forwarded upstream and recorded. None replays only.
        requests: The log of received requests; pass a
            :class:`~quickstart_helpers.emulator.RequestLog` to change its limits.
        max_body_bytes: Largest request body accepted (413 beyond), in bytes. Defaults
            to :data:`MAX_BODY_BYTES` (64 MiB).
        header_timeout: Seconds a connection has to send a request head (and the idle
            time of a kept-alive connection). Defaults to :data:`HEADER_TIMEOUT_S`.
        body_timeout: Seconds a request has to send its body (408 beyond). Defaults
            to :data:`BODY_TIMEOUT_S`.
        live_setup_timeout: Seconds a Live API WebSocket has to send ``setup`` (closed
            with 1011 beyond). Defaults to :data:`LIVE_SETUP_TIMEOUT_S`.
        live_compression: Accept WebSocket per-message compression (``permessage-deflate``,
            RFC 7692) on the Live API when the client offers it (the SDK's ``websockets``
            client always does). Defaults to False: no public capture shows which
            extension the live API negotiates, and deflating base64 PCM costs most of a
            replay's CPU for about a third less data on a loopback socket (see the
            README's performance notes).

    Attributes:
        requests: The requests received, oldest first, without keys (for tests and
            teaching): a :class:`~quickstart_helpers.emulator.RequestLog` bounded by
            default to the last 1,000 requests and 16 MiB of bodies; a body over 1 MiB
            is replaced by a ``"<not kept: ...>"`` string.
        fault_attempts: Requests answered by each cassette with an ``http_error`` fault,
            by cassette name (the count behind "fails N times, then succeeds").
        tokens: The ephemeral tokens made by ``auth_tokens.create`` (valid only here).
        live_handles: Live API session resumption handles given out (valid only here).
    """

    store: CassetteStore = field(default_factory=CassetteStore)
    pacing: Pacing = field(default_factory=settings.pacing)
    host: str = "127.0.0.1"
    port: int = 0
    sse_newline: str = "\n"
    sse_split_json: bool = False
    requests: RequestLog = field(default_factory=RequestLog)
    fault_attempts: dict[str, int] = field(default_factory=dict)
    tokens: TokenStore = field(default_factory=TokenStore, repr=False)
    live_handles: ResumptionStore = field(default_factory=ResumptionStore, repr=False)
    certificate: LocalCertificate | None = None
    recorder: Recorder | None = None
    live_compression: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    header_timeout: float = HEADER_TIMEOUT_S
    body_timeout: float = BODY_TIMEOUT_S
    live_setup_timeout: float = LIVE_SETUP_TIMEOUT_S
    _server: BackgroundServer | None = field(default=None, repr=False)
    _own_certificate: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.pacing not in ("realtime", "fast"):
            raise ValueError(f"pacing must be 'realtime' or 'fast', not {self.pacing!r}")
        if self.sse_newline not in ("\n", "\r\n"):
            raise ValueError("sse_newline must be '\\n' or '\\r\\n'")
        limits = (self.header_timeout, self.body_timeout, self.live_setup_timeout)
        if min(limits) <= 0 or self.max_body_bytes <= 0:
            raise ValueError("The emulator's timeouts and max_body_bytes must be > 0.")

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
        app = web.Application(client_max_size=self.max_body_bytes)
        _middleware.install(app, body_timeout=self.body_timeout)
        _http.add_routes(app, self)
        _models.add_routes(app, self)
        _auth_tokens.add_routes(app, self)
        _live.add_routes(app, self)
        _interactions.add_routes(app, self)
        return app

    def start(self) -> Emulator:
        """Start serving in a daemon thread; return self once the port is open.

        Also raises the process's soft limit of open files where the OS allows it
        (:func:`quickstart_helpers._background.raise_open_file_limit`).

        Raises:
            RuntimeError: The port could not be opened (e.g. it is in use).
        """
        if self._server is not None:
            return self
        if self.certificate is None:
            self.certificate = make_local_certificate()
            self._own_certificate = True
        raise_open_file_limit()
        self._server = start_background_server(
            self.build_app,
            host=self.host,
            port=self.port,
            name="The Gemini API emulator",
            ssl_context=self.certificate.server_context(),
            access_log=None,
            runner_class=ErrorAnsweringRunner,
            error_answer=_middleware.unparsable,
            # aiohttp closes a connection still waiting for a complete request head
            # this long after it opened or after its last response.
            keepalive_timeout=self.header_timeout,
        )
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop serving, wait for the thread to end, and delete the certificate it made.

        A certificate passed in by the caller is kept; one the emulator made is deleted
        with its temporary folder (a new one is made if the emulator starts again).
        """
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._own_certificate and self.certificate is not None:
            self.certificate.cleanup()
            self.certificate = None
            self._own_certificate = False

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

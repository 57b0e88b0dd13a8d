"""The emulator's lifecycle: its routes (:mod:`._http`, :mod:`._interactions`, :mod:`._live`,
:mod:`._models`, :mod:`._auth_tokens`) served with TLS from a background thread, and what
clients need to reach them."""

from __future__ import annotations

import asyncio
import atexit
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import _background, settings
from ..settings import Pacing
from . import _auth_tokens, _http, _interactions, _live, _middleware, _models
from ._protocol import RequestLog
from ._store import CassetteStore
from ._tls import LocalCertificate, make_local_certificate

if TYPE_CHECKING:
    from ._record import Recorder

#: Largest request body (or Live API message) accepted, in bytes; larger gets 413.
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Seconds a connection has to send a request head (and a kept-alive one may idle).
HEADER_TIMEOUT_S = 30.0
#: Seconds a request has to send its whole body; then 408 and the connection closes.
BODY_TIMEOUT_S = 60.0
#: Seconds a Live API WebSocket has to send ``setup``; then it is closed with 1011.
LIVE_SETUP_TIMEOUT_S = 30.0


@dataclass
class Emulator:
    """The Gemini API emulator, run in a background thread.

    Args:
        store: Cassettes to replay: the shipped ones, then ``$QUICKSTART_CASSETTES``'s.
        pacing: ``"realtime"`` waits each recorded ``delay_ms``; ``"fast"`` sends at once.
            Defaults to :func:`quickstart_helpers.settings.pacing`.
        host, port: Where to listen. Default ``127.0.0.1`` and 0 (a free port).
        requests: The requests received, oldest first, without keys (a
            :class:`~quickstart_helpers.emulator.RequestLog`).
        certificate: The TLS certificate to serve; None makes one at start, deleted at stop.
        recorder: Record mode (:class:`~quickstart_helpers.emulator._record.Recorder`):
            what no cassette answers is forwarded upstream and recorded. None replays only.
        live_compression: Accept ``permessage-deflate`` (RFC 7692) on the Live API when
            the client offers it (the SDK always does); off by default (docs/performance.md).
        max_body_bytes, header_timeout, body_timeout, live_setup_timeout: The limits
            above (``MAX_BODY_BYTES``, ``HEADER_TIMEOUT_S``, ...).

    Attributes:
        fault_attempts: Requests answered by each cassette with an ``http_error`` fault,
            by cassette name (the count behind "fails N times, then succeeds").
        tokens: The ephemeral tokens made by ``auth_tokens.create`` (valid only here).
        live_handles: Live API session resumption handles given out (valid only here):
            handle -> (cassette name, index of the next turn).
    """

    store: CassetteStore = field(default_factory=CassetteStore)
    pacing: Pacing = field(default_factory=settings.pacing)
    host: str = "127.0.0.1"
    port: int = 0
    requests: RequestLog = field(default_factory=RequestLog)
    fault_attempts: dict[str, int] = field(default_factory=dict)
    tokens: _auth_tokens.TokenStore = field(default_factory=_auth_tokens.TokenStore, repr=False)
    live_handles: dict[str, tuple[str, int]] = field(default_factory=dict, repr=False)
    certificate: LocalCertificate | None = None
    recorder: Recorder | None = None
    live_compression: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    header_timeout: float = HEADER_TIMEOUT_S
    body_timeout: float = BODY_TIMEOUT_S
    live_setup_timeout: float = LIVE_SETUP_TIMEOUT_S
    _server: _background.BackgroundServer | None = field(default=None, repr=False)
    _own_certificate: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.pacing not in ("realtime", "fast"):
            raise ValueError(f"pacing must be 'realtime' or 'fast', not {self.pacing!r}")
        limits = (self.header_timeout, self.body_timeout, self.live_setup_timeout)
        if min(limits) <= 0 or self.max_body_bytes <= 0:
            raise ValueError("The emulator's timeouts and max_body_bytes must be > 0.")

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:{port}``, the value for ``HttpOptions.base_url``."""
        return f"https://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        _middleware.install(app, body_timeout=self.body_timeout)
        _http.add_routes(app, self)
        _models.add_routes(app, self)
        _auth_tokens.add_routes(app, self.tokens)
        _live.add_routes(app, self)
        _interactions.add_routes(app, self)
        return app

    def start(self) -> Emulator:
        """Serve in a daemon thread; return self once the port is open, or raise RuntimeError
        (e.g. the port is in use)."""
        if self._server is not None:
            return self
        if self.certificate is None:
            self.certificate, self._own_certificate = make_local_certificate(), True
        self._server = _background.BackgroundServer(
            self.build_app,
            host=self.host,
            port=self.port,
            name="The Gemini API emulator",
            ssl_context=self.certificate.server_context(),
            access_log=None,
            error_answer=_middleware.unparsable,
            keepalive_timeout=self.header_timeout,
            shutdown_timeout=0.2,  # twice at most: a stream in flight, then its handler
        ).start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop serving, wait for the thread, and delete the certificate it made (a
        certificate passed in is kept; a restart makes a new one)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._own_certificate and self.certificate is not None:
            self.certificate.cleanup()
            self.certificate, self._own_certificate = None, False

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def http_options(self, **kwargs: Any) -> Any:
        """Return ``google.genai.types.HttpOptions`` (with ``kwargs``) that reach this
        emulator: its base URL and an ``ssl.SSLContext`` trusting its certificate, for the
        sync client, the async client and the Live API's WebSocket."""
        from google.genai import types

        if self.certificate is None:
            raise RuntimeError("Start the emulator before asking for its http_options.")
        ctx = self.certificate.client_context()
        clients = {"client_args": {"verify": ctx}, "async_client_args": {"verify": ctx, "ssl": ctx}}
        return types.HttpOptions(base_url=self.base_url, **clients, **kwargs)

    def shell_exports(self) -> str:
        """Return ``export`` lines that point unmodified clients here: the base URL and key
        the Python and JavaScript SDKs read, and the certificate authority for Python
        (``SSL_CERT_FILE``), Node (``NODE_EXTRA_CA_CERTS``) and curl (``CURL_CA_BUNDLE``)."""
        if self.certificate is None:
            raise RuntimeError("Start the emulator before asking for its shell exports.")
        ca = self.certificate.cert_file
        return (
            f"export GOOGLE_GEMINI_BASE_URL={self.base_url}\n"
            f"export GEMINI_API_KEY=offline-emulator\nexport SSL_CERT_FILE={ca}\n"
            f"export NODE_EXTRA_CA_CERTS={ca}\nexport CURL_CA_BUNDLE={ca}"
        )

    def refusal(self) -> str:
        """Record mode's reason for not recording a request (after a space), or ``""``."""
        return f" {self.recorder.refusal()}" if self.recorder is not None else ""

    async def sleep(self, delay_ms: int) -> None:
        """Wait ``delay_ms`` milliseconds in realtime pacing; return at once in fast pacing."""
        if self.pacing == "realtime" and delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)


_shared: Emulator | None = None
_shared_lock = threading.Lock()


def get_emulator(pacing: Pacing | None = None) -> Emulator:
    """Return this process's shared emulator, started on first use and stopped at exit;
    ``pacing`` (``"realtime"`` or ``"fast"``) sets its pacing, by default
    :func:`quickstart_helpers.settings.pacing`."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Emulator(pacing=pacing or settings.pacing()).start()
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

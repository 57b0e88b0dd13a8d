"""An embedded Gemini API emulator that replays cassettes over the real wire protocol.

The emulator is an HTTPS server on 127.0.0.1 (aiohttp) with a certificate made at
start. It serves, for any API version segment:

- ``POST /{version}/models/{model}:streamGenerateContent?alt=sse``: one SSE event
  (``data: <GenerateContentResponse JSON>`` and a blank line) per recorded chunk;
- ``POST /{version}/models/{model}:generateContent``: the chunks merged into one
  response.

Requests that no cassette matches get the API's error JSON with status 404
``NOT_FOUND`` naming the closest cassette; the API key ``invalid`` gets the live
API's ``API_KEY_INVALID`` error. Nothing is made up.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from . import live_emulator
from .background import BackgroundServer, start_background_server
from .cassettes import Cassette, CassetteStore, prompt_text
from .tls import LocalCertificate, make_local_certificate

__all__ = [
    "IMAGE_OUTPUT_MODELS",
    "INVALID_KEY_ERROR",
    "Emulator",
    "Pacing",
    "ReceivedRequest",
    "api_error",
    "get_emulator",
    "merge_chunks",
    "stop_emulator",
]

Pacing = Literal["realtime", "fast"]

#: The body the live API returns (HTTP 400) for an API key that is not valid.
INVALID_KEY_ERROR: dict[str, Any] = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    }
}

#: API key value that triggers :data:`INVALID_KEY_ERROR`.
INVALID_KEY = "invalid"

#: The models that can output images (``responseModalities`` with ``IMAGE``); the
#: emulator refuses such a request to any other model as the live API does (400).
IMAGE_OUTPUT_MODELS: frozenset[str] = frozenset(
    {
        "gemini-2.0-flash-exp",
        "gemini-2.0-flash-exp-image-generation",
        "gemini-2.0-flash-preview-image-generation",
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-image-preview",
        "gemini-3-pro-image-preview",
        "gemini-3.1-flash-image-preview",
    }
)


def api_error(code: int, status: str, message: str) -> web.Response:
    """Return an aiohttp response with the API's error JSON.

    Args:
        code: HTTP status code, e.g. 404.
        status: The ``google.rpc.Code`` name, e.g. ``"NOT_FOUND"``.
        message: Human-readable message for ``error.message``.
    """
    body = {"error": {"code": code, "message": message, "status": status}}
    return web.json_response(body, status=code)


@dataclass
class ReceivedRequest:
    """A request the emulator received (the API key is never kept).

    Attributes:
        method: ``generateContent``, ``streamGenerateContent`` or ``BidiGenerateContent``.
        model: Model name from the URL, without ``models/``.
        api_version: Version segment of the URL, e.g. ``v1beta``.
        body: The JSON body (for the Live API, the messages the client sent).
        cassette: Name of the cassette that answered, or None.
    """

    method: str
    model: str
    api_version: str
    body: Any
    cassette: str | None = None


def merge_chunks(cassette: Cassette) -> dict[str, Any]:
    """Merge a cassette's chunks into one non-streaming ``GenerateContentResponse``.

    Adjacent text parts are joined; inline data parts are kept in order; the last
    chunk's ``finishReason``, ``usageMetadata``, ``modelVersion`` and ``responseId`` win.
    """
    parts: list[dict[str, Any]] = []
    merged: dict[str, Any] = {}
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    for chunk in cassette.chunks:
        response = chunk.response or {}
        for key in ("usageMetadata", "modelVersion", "responseId"):
            if key in response:
                merged[key] = response[key]
        for cand in response.get("candidates") or []:
            for key, value in cand.items():
                if key != "content":
                    candidate[key] = value
            for part in (cand.get("content") or {}).get("parts") or []:
                if (
                    "text" in part
                    and parts
                    and set(parts[-1]) == {"text"}
                    and set(part) == {"text"}
                ):
                    parts[-1] = {"text": parts[-1]["text"] + part["text"]}
                else:
                    parts.append(dict(part))
    return {"candidates": [candidate], **merged}


@dataclass
class Emulator:
    """The Gemini API emulator, run in a background thread.

    Args:
        store: Cassettes to replay. Defaults to those under ``assets/cassettes/``.
        pacing: ``"realtime"`` waits each chunk's recorded ``delay_ms``; ``"fast"``
            sends at once. Defaults to ``$QUICKSTART_PACING`` or ``"realtime"``.
        host: Address to listen on. Defaults to ``127.0.0.1``.
        port: TCP port; 0 picks a free one. Defaults to 0.
        sse_newline: Line ending of SSE events, ``"\\n"`` or ``"\\r\\n"``.
        sse_split_json: Spread each event's JSON over several ``data:`` lines.

    Attributes:
        requests: Every request received, in order (for tests and teaching).
    """

    store: CassetteStore = field(default_factory=CassetteStore)
    pacing: Pacing = field(
        default_factory=lambda: os.environ.get("QUICKSTART_PACING", "realtime")  # type: ignore[return-value]
    )
    host: str = "127.0.0.1"
    port: int = 0
    sse_newline: str = "\n"
    sse_split_json: bool = False
    requests: list[ReceivedRequest] = field(default_factory=list)
    certificate: LocalCertificate | None = None
    _server: BackgroundServer | None = field(default=None, repr=False)
    _own_certificate: bool = field(default=False, repr=False)

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
        app.router.add_post("/{version}/models/{model_method}", self._generate)
        live_emulator.add_routes(app, self)
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
            self._own_certificate = True
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

    # -- handlers --------------------------------------------------------------------
    def key_error(self, request: web.Request) -> web.Response | None:
        """Return the live API's error for a missing or invalid key, else None."""
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return api_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to "
                "call this API.",
            )
        if key == INVALID_KEY:
            return web.json_response(INVALID_KEY_ERROR, status=400)
        return None

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["model_method"].partition(":")
        if method not in ("generateContent", "streamGenerateContent"):
            return api_error(
                404, "NOT_FOUND", f"The emulator does not serve the method {method!r}."
            )
        error = self.key_error(request)
        if error is not None:
            return error
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return api_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        received = ReceivedRequest(method, model, request.match_info["version"], body)
        self.requests.append(received)
        error = self.check_request(model, body)
        if error is not None:
            return error
        cassette = self.store.find(model, body)
        if cassette is None:
            return self.unmatched(model, body)
        received.cassette = cassette.name
        if method == "generateContent":
            await self._sleep(sum(c.delay_ms for c in cassette.chunks))
            return web.json_response(merge_chunks(cassette))
        return await self._stream(request, cassette)

    def check_request(self, model: str, body: dict[str, Any]) -> web.Response | None:
        """Return the API's error for a request the live API would refuse, else None.

        Refused: ``responseModalities`` naming ``IMAGE`` for a model outside
        :data:`IMAGE_OUTPUT_MODELS` (400 ``INVALID_ARGUMENT``, the live API's message).
        """
        modalities = (body.get("generationConfig") or {}).get("responseModalities") or []
        wants_image = any(str(m).upper() == "IMAGE" for m in modalities)
        if wants_image and model.removeprefix("models/") not in IMAGE_OUTPUT_MODELS:
            return api_error(
                400,
                "INVALID_ARGUMENT",
                "Model does not support the requested response modalities: image",
            )
        return None

    def unmatched(self, model: str, body: dict[str, Any]) -> web.Response:
        """Return the 404 ``NOT_FOUND`` error for a request no cassette matches."""
        prompt = prompt_text(body.get("contents"))
        closest = self.store.closest(model, body)
        hint = "There are no cassettes at all."
        if closest is not None:
            hint = (
                f"The closest cassette is {closest.name!r} "
                f"({closest.path.name if closest.path else 'in memory'}), recorded for "
                f"model {closest.model!r} with the prompt "
                f"{_short(prompt_text(closest.request.get('contents')))!r}."
            )
        message = (
            f"No recorded response (cassette) matches this request to model {model!r} "
            f"with the prompt {_short(prompt)!r}. The offline emulator only replays "
            f"recordings and never makes an answer up. {hint} Send that cassette's prompt, "
            "record a cassette for yours under assets/cassettes/ (see the README, "
            "'Cassettes'), or set GEMINI_API_KEY to run against the live API."
        )
        return api_error(404, "NOT_FOUND", message)

    async def _sleep(self, delay_ms: int) -> None:
        if self.pacing == "realtime" and delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    def sse_event(self, payload: dict[str, Any]) -> bytes:
        """Frame one JSON payload as an SSE event with this emulator's line endings."""
        nl = self.sse_newline
        if self.sse_split_json:
            lines = json.dumps(payload, indent=1, ensure_ascii=False).split("\n")
        else:
            lines = [json.dumps(payload, separators=(",", ":"), ensure_ascii=False)]
        return ("".join(f"data: {line}{nl}" for line in lines) + nl).encode("utf-8")

    async def _stream(self, request: web.Request, cassette: Cassette) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )
        await response.prepare(request)
        try:
            for chunk in cassette.chunks:
                await self._sleep(chunk.delay_ms)
                if chunk.break_:
                    # Drop the connection mid-stream, as a network failure would.
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                await response.write(self.sse_event(chunk.response or {}))
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_shared: Emulator | None = None
_shared_lock = threading.Lock()


def get_emulator(pacing: Pacing | None = None) -> Emulator:
    """Return this process's shared emulator, starting it on first use.

    It is stopped when the process exits.

    Args:
        pacing: Set the shared emulator's pacing (``"realtime"`` or ``"fast"``).
            Defaults to ``$QUICKSTART_PACING``, else ``"realtime"``.
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

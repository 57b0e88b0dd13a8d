"""A small web chat that relays Gemini's streamed chunks to the browser as SSE events.

The app runs on aiohttp and serves:

- ``GET /``: the chat page (``static/index.html``); its ``EventSource`` appends each
  chunk to a chat bubble as it arrives.
- ``GET /chat/stream?message=...``: ``text/event-stream``; one unnamed event per model
  chunk whose data is the chunk's text (each line on its own ``data:`` line), then
  ``event: done`` with ``data: [DONE]``, or ``event: error`` with a readable message
  when the model call fails (a partial answer stays with the client). Framing:
  :mod:`quickstart_helpers.sse`. With ``api="interactions"`` the relay asks the
  Interactions API (``client.aio.interactions.create(..., stream=True)``) and the stream
  resumes: every event carries an ``id:`` (``<interaction id>/<event_id>``; the first is
  a ``started`` event with a ``retry:`` of :data:`RECONNECT_MS`), and an ``EventSource``
  that reconnects sends it back as ``Last-Event-ID``, which the relay maps onto
  ``client.aio.interactions.get(id, stream=True, last_event_id=...)``: the answer
  continues after the last event the browser received, without asking again. An id the
  relay did not hand out gets 400 ``unknown_last_event_id``.
- ``POST /chat`` with JSON ``{"message": ..., "conversationId": ...}`` (the id is
  optional; without it a new conversation starts): starts the model's answer in the
  background and answers ``202 {"conversationId": ..., "status": "streaming"}``.
- ``GET /conversations/{id}/stream``: the state updates of the conversation's latest
  turn, built on :class:`quickstart_helpers.chat.Conversation`. Each SSE event is named
  after the message's new status (``created``, ``streaming``, ``completed`` or
  ``failed``) and its data is JSON: ``conversationId``, ``messageId``, ``role``,
  ``status``, ``text`` (all so far), ``delta`` (the text this update added),
  ``chunkCount``, ``finishReason`` and ``error``. A subscriber that comes late first
  gets the turn's earlier updates. The stream ends with ``done`` (answer completed) or
  ``error`` (answer failed, with a readable message).
- ``GET /conversations/{id}``: the conversation as JSON.

Every error is a JSON body ``{"error": <code>, "reason": <what to do>}``: bad input
(no message, a blank one, one over ``max_message_chars``, text with a lone surrogate, a
bad or deeply nested JSON body, an unknown conversation, a conversation at its
``max_turns``), unknown paths, wrong methods, oversized or slow bodies, unparsable
requests and server faults alike. Only the chat's own page may call it: a missing or
foreign ``Host`` (DNS rebinding), an ``Origin`` other than the page's own, a
browser's ``Sec-Fetch-Site`` other than ``same-origin``/``none`` and a non-JSON
``POST`` are refused (see :func:`create_app`). Upstream error text is scrubbed of API
keys (:func:`quickstart_helpers._scrub.scrub`) before it reaches an event or a log.

Silent or slow clients are timed out (:data:`HEADER_TIMEOUT_S`, :data:`BODY_TIMEOUT_S`),
quiet streams get ``: keep-alive`` comments (:data:`KEEPALIVE_INTERVAL_S`), and when
the server stops every open stream gets a final ``error`` event
(:data:`STOPPING_MESSAGE`).

A browser that goes away cancels its ``/chat/stream`` request: the handler is cancelled
(``handler_cancellation=True``, set by :class:`ChatServer`), which closes the upstream
model stream at once; nothing keeps running. Each request has its own model stream, so
concurrent clients are independent. A conversation's answer started by ``POST /chat``
belongs to the conversation, not to a subscriber: it runs to its end (or until the
server stops) even if every subscriber leaves, so a page that reconnects gets it whole.

Run it with ``quickstart serve`` or :class:`ChatServer`::

    server = ChatServer(make_client()).start()
    print(server.url)   # http://127.0.0.1:<port>/
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web
from google.genai import errors as genai_errors

from . import settings
from ._api_errors import explain_api_error, is_unrecorded_request, record_handled_error
from ._background import (
    BackgroundServer,
    ErrorAnsweringRunner,
    raise_open_file_limit,
    start_background_server,
)
from ._scrub import scrub
from .chat import Conversation, Message, astream_reply, chunk_text
from .errors import BadChatInput
from .sse import CONTENT_TYPE, done_event, error_event, format_event

__all__ = [
    "APIS",
    "BODY_TIMEOUT_S",
    "DEFAULT_MAX_MESSAGE_CHARS",
    "DEFAULT_MAX_TURNS",
    "DEFAULT_MODEL",
    "HEADER_TIMEOUT_S",
    "KEEPALIVE_INTERVAL_S",
    "MAX_BODY_BYTES",
    "MAX_REQUEST_LINE_BYTES",
    "POOL_IDLE_S",
    "RECONNECT_MS",
    "SAMPLE_QUESTION",
    "STATIC_DIR",
    "STOPPING_MESSAGE",
    "TLS_READ_BUFFER_BYTES",
    "UNRECORDED_MESSAGE",
    "ChatServer",
    "StreamStats",
    "app_stats",
    "create_app",
]

logger = logging.getLogger(__name__)

#: Model the web chat asks when none is given.
DEFAULT_MODEL = settings.DEFAULT_TEXT_MODEL

#: A question recorded for the offline emulator (``assets/cassettes/web/web_sse_chat.json``).
SAMPLE_QUESTION = "How did lighthouse keepers keep the light burning all night?"

#: The ``error`` event's data for a question no recording answers (offline only: the
#: emulator's 404 for a request no cassette holds). One short paragraph for the page; the
#: emulator's full explanation, with the closest recorded prompt, goes to the log (INFO).
UNRECORDED_MESSAGE = (
    "No answer is recorded for this question: offline, the chat only replays recorded "
    f'answers. Ask "{SAMPLE_QUESTION}", or set GEMINI_API_KEY (or record an answer with '
    "`quickstart record`) to ask your own."
)

#: Longest accepted message, in characters (Unicode code points).
DEFAULT_MAX_MESSAGE_CHARS = 4000

#: Questions a conversation holds (answered or failed); ``POST /chat`` refuses the next one
#: with 409 ``conversation_full``, so no conversation grows without bound.
DEFAULT_MAX_TURNS = 100

#: Folder of the chat page (``index.html``, ``chat.js``, ``chat.css``).
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Longest request line (method, URL and query) the server reads, in bytes. It leaves
#: room for ``DEFAULT_MAX_MESSAGE_CHARS`` characters percent-encoded, so an over-long
#: message gets this app's JSON reason rather than a bare "line too long".
MAX_REQUEST_LINE_BYTES = 64 * 1024

#: Largest request body (``POST /chat``), in bytes; a bigger one gets 413.
MAX_BODY_BYTES = 256 * 1024

#: Seconds a connection has to send a complete request head (request line and
#: headers), counted from when it opened or its last response ended. A connection
#: that is silent or trickles its head is closed when they run out; an idle
#: keep-alive connection too.
HEADER_TIMEOUT_S = 15.0

#: Seconds a request has to send its whole body; a slower one gets 408.
BODY_TIMEOUT_S = 15.0

#: An SSE stream with no event for this many seconds gets a ``: keep-alive`` comment.
KEEPALIVE_INTERVAL_S = 15.0

#: The data of the last ``error`` event of every stream still open when the server stops.
STOPPING_MESSAGE = (
    "The server is stopping, so this answer ends here; the text so far is kept. "
    "Ask again once the server is back."
)

#: The model APIs the relay can ask: ``generateContent`` streams or the Interactions API.
APIS: tuple[str, ...] = ("generate", "interactions")

#: Reconnection delay sent to the browser (SSE ``retry:``) by resumable streams, in ms.
RECONNECT_MS = 500

#: Interactions a relay remembers for resuming (the oldest are forgotten first).
MAX_RESUMABLE = 1000

SSE_HEADERS = {
    "Content-Type": CONTENT_TYPE,
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # ask reverse proxies (nginx) not to buffer the stream
}

#: Seconds without any stream after which the relay closes its idle connections to the
#: model (and hands freed memory back to the OS), so memory returns after a burst.
POOL_IDLE_S = 5.0

#: Read buffer of each asyncio TLS connection, in bytes (asyncio's default: 256 KiB).
#: Two full TLS records; see :func:`_lean_tls_buffers`.
TLS_READ_BUFFER_BYTES = 32 * 1024

_KEEPALIVE_FRAME = b": keep-alive\n\n"
#: The keep-alive comment is skipped for a client whose unread data exceeds this.
_KEEPALIVE_MAX_BUFFER = 64 * 1024


@dataclass
class StreamStats:
    """Counts of model streams the app has run, for tests and monitoring.

    Attributes:
        started: Streams begun (``/chat/stream`` requests and ``POST /chat`` turns).
        completed: Streams that reached their end and sent ``done``.
        failed: Streams that ended with an ``error`` event.
        cancelled: Streams stopped because the client went away or the server stopped.
    """

    started: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def active(self) -> int:
        """Streams running now."""
        return self.started - self.completed - self.failed - self.cancelled


class _Turn:
    """The SSE frames of one conversation turn, for any number of subscribers."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.finished = False
        self._wakeup = asyncio.Event()

    def publish(self, frame: bytes, *, final: bool = False) -> None:
        if self.finished:
            return
        self.frames.append(frame)
        self.finished = final
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    async def follow(self) -> AsyncIterator[bytes]:
        """Yield every frame from the turn's first, waiting for new ones until it ends."""
        sent = 0
        while True:
            while sent < len(self.frames):
                yield self.frames[sent]
                sent += 1
            if self.finished:
                return
            await self._wakeup.wait()


@dataclass(eq=False)  # kept in a set: hashed by identity
class _Stream:
    """One open SSE response: where to write and when it was last written to."""

    response: web.StreamResponse
    transport: asyncio.BaseTransport | None
    upstream: bool  # it runs a model stream of its own (/chat/stream)
    task: asyncio.Task[Any] | None = field(default_factory=asyncio.current_task)
    last_write: float = field(default_factory=time.monotonic)

    async def write(self, frame: bytes) -> None:
        await self.response.write(frame)
        self.last_write = time.monotonic()


@dataclass
class _Entry:
    id: str
    conversation: Conversation
    turn: _Turn | None = None
    task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()


@dataclass
class _State:
    client: Any
    model: str
    max_message_chars: int
    max_conversations: int
    max_turns: int = DEFAULT_MAX_TURNS
    allowed_hosts: frozenset[str] = frozenset()
    allowed_origins: frozenset[str] = frozenset()
    body_timeout: float = BODY_TIMEOUT_S
    keepalive_interval: float = KEEPALIVE_INTERVAL_S
    api: str = "generate"
    stats: StreamStats = field(default_factory=StreamStats)
    conversations: dict[str, _Entry] = field(default_factory=dict)
    #: Interactions this relay created (``/chat/stream`` with ``api="interactions"``).
    interactions: dict[str, None] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    streams: set[_Stream] = field(default_factory=set)
    stopping: bool = False
    secrets: tuple[str, ...] = ()
    last_busy: float = field(default_factory=time.monotonic)
    pool_released: bool = True


_STATE = web.AppKey("quickstart_chat_state", _State)


def _json_error(status: int, code: str, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "reason": reason, **extra}, status=status)


def _check_message(value: Any, limit: int) -> str:
    if value is None:
        raise BadChatInput(
            400,
            "missing_message",
            "Send the question in the 'message' field (e.g. /chat/stream?message=Hello).",
        )
    if not isinstance(value, str):
        raise BadChatInput(
            400, "invalid_message", f"'message' must be a string, not {type(value).__name__}."
        )
    if not value.strip():
        raise BadChatInput(400, "empty_message", "The message is empty; type a question first.")
    if len(value) > limit:
        raise BadChatInput(
            413,
            "message_too_long",
            f"The message has {len(value)} characters; the limit is {limit}. "
            "Shorten it and send it again.",
            limit=limit,
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadChatInput(
            400,
            "invalid_text",
            f"The message holds a character that is not valid Unicode text (a lone "
            f"surrogate, {value[exc.start]!r}, at position {exc.start}); remove it and "
            "send the message again.",
        ) from None
    return value


# -- the front door: who may ask, and every error as JSON ---------------------------------


def _loopback_hosts(port: int) -> set[str]:
    names = {"127.0.0.1", "localhost", "[::1]"}
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return hosts


def _refusal(request: web.Request, state: _State) -> web.Response | None:
    """Return the 403/415 answer to a request from outside the page, or None."""
    host = (request.headers.get("Host") or "").lower()
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    port = sockname[1] if sockname else None
    allowed = state.allowed_hosts | (_loopback_hosts(port) if port is not None else set())
    name = host if host.endswith("]") else host.rpartition(":")[0] or host
    if host not in allowed and name not in state.allowed_hosts:
        return _json_error(
            403,
            "forbidden_host",
            f"This server answers requests for {', '.join(sorted(allowed))} only, not "
            f"{host or 'a request without a Host header'!r}. Open the page at the address "
            "`quickstart serve` printed.",
        )
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in {
        f"http://{host}",
        f"https://{host}",
        *state.allowed_origins,
    }:
        return _json_error(
            403,
            "forbidden_origin",
            f"Requests from the page at {origin!r} are refused: only the chat's own page "
            "may call it.",
        )
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return _json_error(
            403,
            "cross_site_request",
            f"The browser marked this request as {site} (made by another site's page); "
            "only the chat's own page may call it.",
        )
    if request.method not in ("GET", "HEAD", "OPTIONS") and (
        request.content_type != "application/json"
    ):
        return _json_error(
            415,
            "unsupported_media_type",
            f"Send the body as JSON with 'Content-Type: application/json', not "
            f"{request.headers.get('Content-Type') or 'no content type'!r}.",
        )
    return None


_HTTP_REASONS = {
    400: ("bad_request", "The request could not be read: {detail}"),
    404: ("not_found", "There is nothing at {path}; the chat page is at /."),
    405: ("method_not_allowed", "{method} is not allowed on {path}."),
    408: ("request_timeout", "The request was not sent in time; send it again."),
    413: ("request_too_large", f"The body is too large; the limit is {MAX_BODY_BYTES} bytes."),
}


def _http_error(status: int, request: web.BaseRequest | None, detail: str = "") -> web.Response:
    code, template = _HTTP_REASONS.get(
        status, (HTTPStatus(status).phrase.lower().replace(" ", "_"), "{phrase}.")
    )
    path = request.path if request is not None and request.method != "ERROR" else "this path"
    method = request.method if request is not None else "This method"
    reason = template.format(
        path=path,
        method=method,
        detail=detail or "it is malformed",
        phrase=HTTPStatus(status).phrase,
    )
    return _json_error(status, code, reason)


@web.middleware
async def _front_door(request: web.Request, handler: Any) -> web.StreamResponse:
    state = request.app[_STATE]
    refusal = _refusal(request, state)
    if refusal is not None:
        return refusal
    try:
        return await handler(request)
    except BadChatInput as bad:
        response = _json_error(bad.status, bad.code, bad.reason, **bad.extra)
        if bad.status == 408:
            # The rest of the body may still trickle in: answer, then hang up at once.
            await response.prepare(request)
            await response.write_eof()
            if request.transport is not None:
                request.transport.close()
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_error(exc.status, request)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:  # noqa: BLE001 - answered as JSON, logged without keys
        logger.error(
            "%s %s failed: %s",
            request.method,
            request.path,
            scrub(f"{type(exc).__name__}: {exc}", state.secrets),
        )
        return _json_error(
            500,
            "internal_error",
            "The chat server failed on this request; the error is in its log. Try again.",
        )


def _unparsable(status: int, request: web.BaseRequest | None, detail: str) -> web.Response:
    """The answer to a request aiohttp could not parse (see ``ErrorAnsweringRunner``)."""
    return _http_error(status, request, scrub(detail))


# -- the app --------------------------------------------------------------------------------


def create_app(
    client: Any,
    *,
    model: str = DEFAULT_MODEL,
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
    max_conversations: int = 1000,
    max_turns: int = DEFAULT_MAX_TURNS,
    allowed_hosts: Iterable[str] = (),
    allowed_origins: Iterable[str] = (),
    body_timeout: float = BODY_TIMEOUT_S,
    keepalive_interval: float = KEEPALIVE_INTERVAL_S,
    api: str = "generate",
) -> web.Application:
    """Return the chat's aiohttp application.

    Serve it with ``handler_cancellation=True`` (``web.run_app(app,
    handler_cancellation=True)`` or an ``AppRunner`` with it, as :class:`ChatServer`
    does) so that a client that disconnects cancels its model stream at once; without
    it the stream stops only at the next chunk it fails to write.

    Every request passes a front door first: its ``Host`` must be the address served
    (``127.0.0.1``, ``localhost`` or ``[::1]`` with the port the connection came in
    on, or one of ``allowed_hosts``); its ``Origin``, when sent, must be the page's own
    (``http://`` + that host, or one of ``allowed_origins``); a browser's
    ``Sec-Fetch-Site`` must be ``same-origin`` or ``none``; a ``POST`` must be
    ``application/json``. Refusals are 403 or 415 with a JSON reason.

    Args:
        client: A ``google.genai.Client`` (its ``aio`` side is used).
        model: Model to ask. Defaults to :data:`DEFAULT_MODEL`.
        max_message_chars: Longest accepted message, in characters. Defaults to
            :data:`DEFAULT_MAX_MESSAGE_CHARS`.
        max_conversations: Conversations kept in memory; the oldest idle one is
            dropped to make room. Defaults to 1000.
        max_turns: Questions one conversation may hold; the next gets 409
            ``conversation_full``. Defaults to :data:`DEFAULT_MAX_TURNS`.
        allowed_hosts: More ``Host`` values to accept, for serving beyond loopback:
            ``name:port`` (e.g. ``"chat.example.com:8000"``) or a bare ``name`` for
            any port.
        allowed_origins: More page origins to accept, e.g.
            ``"https://chat.example.com"``.
        body_timeout: Seconds a request has to send its body; then 408. Defaults to
            :data:`BODY_TIMEOUT_S`.
        keepalive_interval: Seconds of silence after which an SSE stream gets a
            ``: keep-alive`` comment. Defaults to :data:`KEEPALIVE_INTERVAL_S`.
        api: What ``/chat/stream`` asks: ``"generate"`` (``generate_content_stream``,
            the default) or ``"interactions"`` (the Interactions API; the stream
            resumes after a reconnect, see the module docstring).

    Returns:
        The application; its :class:`StreamStats` is ``app_stats(app)``.

    Raises:
        ValueError: ``max_message_chars``, ``max_conversations`` or ``max_turns`` is
            below 1, a timeout is not positive, or ``api`` is not one of :data:`APIS`.
    """
    if max_message_chars < 1:
        raise ValueError(f"max_message_chars must be >= 1, not {max_message_chars}")
    if max_conversations < 1 or max_turns < 1:
        raise ValueError("max_conversations and max_turns must be >= 1")
    if body_timeout <= 0 or keepalive_interval <= 0:
        raise ValueError("body_timeout and keepalive_interval must be > 0 seconds")
    if api not in APIS:
        raise ValueError(f"api must be one of {', '.join(APIS)}, not {api!r}")
    app = web.Application(middlewares=[_front_door], client_max_size=MAX_BODY_BYTES)
    app[_STATE] = _State(
        client,
        model,
        max_message_chars,
        max_conversations,
        max_turns,
        allowed_hosts=frozenset(h.lower() for h in allowed_hosts),
        allowed_origins=frozenset(o.lower().rstrip("/") for o in allowed_origins),
        body_timeout=body_timeout,
        keepalive_interval=keepalive_interval,
        api=api,
        secrets=_client_secrets(client),
    )
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/chat/stream", _chat_stream)
    app.router.add_post("/chat", _post_chat)
    app.router.add_get("/conversations/{id}", _get_conversation)
    app.router.add_get("/conversations/{id}/stream", _conversation_stream)
    app.cleanup_ctx.append(_keepalive_pings)
    app.cleanup_ctx.append(_close_upstream_pool)
    app.on_shutdown.append(_stop_streams)
    return app


def _client_secrets(client: Any) -> tuple[str, ...]:
    """The client's API key, to scrub from relayed error text."""
    key = getattr(getattr(client, "_api_client", None), "api_key", None)
    return (key,) if isinstance(key, str) and key else ()


def app_stats(app: web.Application) -> StreamStats:
    """Return the :class:`StreamStats` of an app made by :func:`create_app`."""
    return app[_STATE].stats


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


_STATIC_FILES = frozenset(p.name for p in STATIC_DIR.iterdir() if p.is_file())


async def _static(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in _STATIC_FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC_DIR / name)


async def _open_sse(request: web.Request, *, upstream: bool) -> _Stream:
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    await response.prepare(request)
    stream = _Stream(response, request.transport, upstream)
    state = request.app[_STATE]
    state.streams.add(stream)
    _touch(state)
    return stream


def _touch(state: _State) -> None:
    """Note activity: the model connections stay pooled while streams come and go."""
    state.last_busy, state.pool_released = time.monotonic(), False


def _failure_text(error: BaseException, chunks: int, secrets: tuple[str, ...] = ()) -> str:
    """Return a readable message for a failed model stream, for an ``error`` event.

    API keys in the upstream text are removed (:func:`quickstart_helpers._scrub.scrub`).
    A question no recording answers (offline) gets :data:`UNRECORDED_MESSAGE`.
    """
    if is_unrecorded_request(error):
        logger.info("No recording answers this question: %s", scrub(str(error), secrets))
        record_handled_error(error)
        text = UNRECORDED_MESSAGE
    elif isinstance(error, genai_errors.APIError):
        text = explain_api_error(error)  # also records it for `quickstart run`
    else:
        record_handled_error(error)
        detail = " ".join(str(error).split()) or "no details"
        if len(detail) > 160:
            detail = detail[:159] + "…"
        text = (
            f"The connection to the model broke ({type(error).__name__}: {detail}). "
            "Try again in a moment."
        )
    if chunks:
        plural = "s" if chunks != 1 else ""
        text = f"The answer stopped after {chunks} chunk{plural}; the text so far is kept. {text}"
    return scrub(text, secrets)


def _uncancel() -> None:
    """Forget a cancellation this task handled (Python 3.11+ counts them)."""
    task = asyncio.current_task()
    if task is not None and sys.version_info >= (3, 11):
        task.uncancel()


async def _chat_stream(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    message = _check_message(request.query.get("message"), state.max_message_chars)
    if state.api == "interactions":
        resume = _resume_point(request, state)
        return await _relay(request, state, _interactions_frames(state, message, resume))
    return await _relay(request, state, _generate_frames(state, message))


async def _relay(
    request: web.Request, state: _State, frames: AsyncIterator[tuple[bytes, bool]]
) -> web.StreamResponse:
    """Send the SSE ``frames`` of one model stream to the browser, then a done event.

    ``frames`` yields ``(frame, is_text_chunk)``; closing it closes the model stream.
    A failure becomes an error event and each stream counts once in ``state.stats``.
    """
    stream = await _open_sse(request, upstream=True)
    state.stats.started += 1
    outcome = "failed"
    chunks = 0
    try:
        async with contextlib.aclosing(frames):
            async for frame, is_chunk in frames:
                await stream.write(frame)
                chunks += is_chunk
        await stream.write(done_event())
        outcome = "completed"
    except asyncio.CancelledError:
        # The client went away (aiohttp cancelled this handler) or the server is
        # stopping: leaving the ``async with`` closed the model stream. A browser
        # that reconnects to an Interactions stream resumes from its last event id.
        outcome = "cancelled"
        if not state.stopping:
            raise
        _uncancel()
        with contextlib.suppress(ConnectionError):
            await stream.write(error_event(STOPPING_MESSAGE))
    except ConnectionError:
        # A write found the connection closed (a server run without handler
        # cancellation notices a departed client only here).
        outcome = "cancelled"
    except Exception as exc:  # noqa: BLE001 - reported to the client as an error event
        with contextlib.suppress(ConnectionError):
            await stream.write(error_event(_failure_text(exc, chunks, state.secrets)))
    finally:
        state.streams.discard(stream)
        _touch(state)
        setattr(state.stats, outcome, getattr(state.stats, outcome) + 1)
    return stream.response


async def _generate_frames(state: _State, message: str) -> AsyncIterator[tuple[bytes, bool]]:
    """Yield the text chunks of a ``generate_content_stream`` reply as SSE frames."""
    upstream = await state.client.aio.models.generate_content_stream(
        model=state.model, contents=message
    )
    async with contextlib.aclosing(upstream):
        async for chunk in upstream:
            yield format_event(chunk_text(chunk)), True


def _resume_point(request: web.Request, state: _State) -> tuple[str, str] | None:
    """Return ``(interaction id, event id)`` from ``Last-Event-ID``, or None without one.

    Raises:
        BadChatInput: The id is not one this relay handed out.
    """
    last = request.headers.get("Last-Event-ID", "")
    if not last:
        return None
    interaction_id, _, event_id = last.partition("/")
    if not event_id or interaction_id not in state.interactions:
        raise BadChatInput(
            400,
            "unknown_last_event_id",
            "The stream to resume is unknown (the server may have restarted); ask again.",
        )
    return interaction_id, event_id


def _remember_interaction(state: _State, interaction_id: str) -> None:
    state.interactions[interaction_id] = None
    while len(state.interactions) > MAX_RESUMABLE:
        del state.interactions[next(iter(state.interactions))]


async def _interactions_frames(
    state: _State, message: str, resume: tuple[str, str] | None
) -> AsyncIterator[tuple[bytes, bool]]:
    """Yield an Interactions API stream as SSE frames; resume it from ``resume`` if given.

    Raises:
        RuntimeError: The Interactions API reported an error event.
    """
    interactions = state.client.aio.interactions
    if resume is None:
        upstream = await interactions.create(model=state.model, input=message, stream=True)
        interaction_id = ""
    else:
        interaction_id, event_id = resume
        upstream = await interactions.get(interaction_id, stream=True, last_event_id=event_id)
    try:
        async for event in upstream:
            if event.event_type == "interaction.created":
                interaction_id = event.interaction.id
                _remember_interaction(state, interaction_id)
                frame = format_event(
                    interaction_id,
                    event="started",
                    id=f"{interaction_id}/{event.event_id}",
                    retry_ms=RECONNECT_MS,
                )
                yield frame, False
            elif event.event_type == "step.delta" and event.delta.type == "text":
                yield format_event(event.delta.text, id=f"{interaction_id}/{event.event_id}"), True
            elif event.event_type == "error":
                detail = event.error.message if event.error else None
                raise RuntimeError(detail or "The Interactions API reported an error.")
    finally:
        await upstream.close()


async def _read_json(request: web.Request, timeout: float) -> Any:
    try:
        raw = await asyncio.wait_for(request.read(), timeout)
    except asyncio.TimeoutError:
        raise BadChatInput(
            408, "body_timeout", f"The body did not arrive within {timeout:g} s; send it again."
        ) from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadChatInput(
            400,
            "invalid_json",
            'The body must be JSON like {"message": "Hello", "conversationId": null}.',
        ) from None
    except RecursionError:
        raise BadChatInput(400, "invalid_json", "The JSON body is nested too deeply.") from None


async def _post_chat(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    if state.stopping:
        raise BadChatInput(503, "server_stopping", "The server is stopping; try again shortly.")
    body = await _read_json(request, state.body_timeout)
    if not isinstance(body, dict):
        raise BadChatInput(400, "invalid_json", "The body must be a JSON object.")
    text = _check_message(body.get("message"), state.max_message_chars)
    entry = _find_or_create(state, body.get("conversationId"))
    turn = entry.turn = _Turn()
    entry.task = asyncio.get_running_loop().create_task(_run_turn(state, entry, turn, text))
    state.tasks.add(entry.task)
    entry.task.add_done_callback(state.tasks.discard)
    return web.json_response({"conversationId": entry.id, "status": "streaming"}, status=202)


def _find_or_create(state: _State, conversation_id: Any) -> _Entry:
    if conversation_id is not None:
        entry = (
            state.conversations.get(conversation_id) if isinstance(conversation_id, str) else None
        )
        if entry is None:
            raise BadChatInput(
                404,
                "unknown_conversation",
                f"There is no conversation {conversation_id!r:.80}; leave conversationId out "
                "to start a new one.",
            )
        if entry.busy:
            raise BadChatInput(
                409,
                "conversation_busy",
                "The model is still answering the previous message; wait for its completed "
                "event, then send the next one.",
            )
        if sum(m.role == "user" for m in entry.conversation.messages) >= state.max_turns:
            raise BadChatInput(
                409,
                "conversation_full",
                f"This conversation has reached its limit of {state.max_turns} questions; "
                "leave conversationId out to start a new one.",
                limit=state.max_turns,
            )
        # Most recently used last, so the oldest idle conversation is dropped first.
        state.conversations[entry.id] = state.conversations.pop(entry.id)
        return entry
    if len(state.conversations) >= state.max_conversations:
        idle = next((k for k, e in state.conversations.items() if not e.busy), None)
        if idle is None:
            raise BadChatInput(
                429,
                "too_many_conversations",
                f"All {state.max_conversations} conversations are busy; try again shortly.",
            )
        del state.conversations[idle]
    entry = _Entry(id=uuid.uuid4().hex, conversation=Conversation(model=state.model))
    state.conversations[entry.id] = entry
    return entry


def _state_event(conversation_id: str, message: Message, delta: str) -> bytes:
    data = {
        "conversationId": conversation_id,
        "messageId": message.id,
        "role": message.role,
        "status": message.status,
        "text": message.text,
        "delta": delta,
        "chunkCount": message.chunk_count,
        "finishReason": message.finish_reason,
        "error": message.error,
    }
    return format_event(json.dumps(data, ensure_ascii=False), event=message.status)


async def _run_turn(state: _State, entry: _Entry, turn: _Turn, text: str) -> None:
    """Run one answer of a conversation, publishing its state updates to ``turn``.

    Every path ends with the model message ``completed`` or ``failed`` and the turn
    finished with ``done`` or ``error``, whatever fails on the way (the model call, a
    state event's encoding, publishing).
    """
    seen: dict[str, int] = {}

    def on_change(message: Message) -> None:
        delta = message.text[seen.get(message.id, 0) :]
        seen[message.id] = len(message.text)
        turn.publish(_state_event(entry.id, message, delta))

    state.stats.started += 1
    _touch(state)
    chunks = 0
    outcome, final = "failed", b""
    try:
        chat = entry.conversation.open_async_chat(state.client)
        async for _chunk in astream_reply(chat, entry.conversation, text, on_change=on_change):
            chunks += 1
        reply = entry.conversation.messages[-1]
        if reply.status == "completed":
            outcome, final = "completed", done_event()
        else:  # the stream ended without a finish reason: the tracker failed the message
            final = error_event(reply.error or "The answer is incomplete.")
    except asyncio.CancelledError:
        outcome, final = "cancelled", error_event(STOPPING_MESSAGE)
        raise
    except Exception as exc:  # noqa: BLE001 - reported to subscribers as an error event
        final = error_event(_failure_text(exc, chunks, state.secrets))
    finally:
        busy = entry.conversation.in_progress
        if busy is not None:  # e.g. the conversation refused the turn part-way
            busy.fail("The answer could not be completed.")
        setattr(state.stats, outcome, getattr(state.stats, outcome) + 1)
        _touch(state)
        turn.publish(final or error_event("The answer could not be completed."), final=True)


async def _conversation_stream(request: web.Request) -> web.StreamResponse:
    entry = _lookup(request)
    stream = await _open_sse(request, upstream=False)
    try:
        if entry.turn is None:
            await stream.write(done_event())
            return stream.response
        async for frame in entry.turn.follow():
            await stream.write(frame)
    except ConnectionError:
        pass
    finally:
        request.app[_STATE].streams.discard(stream)
    return stream.response


async def _get_conversation(request: web.Request) -> web.Response:
    entry = _lookup(request)
    body = {"conversationId": entry.id, **entry.conversation.model_dump(mode="json")}
    return web.json_response(body)


def _lookup(request: web.Request) -> _Entry:
    conversation_id = request.match_info["id"]
    entry = request.app[_STATE].conversations.get(conversation_id)
    if entry is None:
        raise BadChatInput(
            404,
            "unknown_conversation",
            f"There is no conversation {conversation_id!r:.80}; POST /chat starts one.",
        )
    return entry


async def _keepalive_pings(app: web.Application) -> AsyncIterator[None]:
    """One task for the whole app: a comment on every SSE stream idle for a while, and
    the model connections released once no stream has run for :data:`POOL_IDLE_S`."""
    state = app[_STATE]

    async def ping() -> None:
        interval = state.keepalive_interval
        while True:
            await asyncio.sleep(min(interval / 2, 1.0))
            now = time.monotonic()
            if state.streams or state.tasks:
                _touch(state)
            elif not state.pool_released and now - state.last_busy >= POOL_IDLE_S:
                state.pool_released = True
                await _release_upstream_pool(app)
            for stream in list(state.streams):
                transport = stream.transport
                if now - stream.last_write < interval or transport is None:
                    continue
                if transport.get_write_buffer_size() > _KEEPALIVE_MAX_BUFFER:
                    continue  # the client is not reading; do not queue more
                with contextlib.suppress(Exception):
                    await stream.write(_KEEPALIVE_FRAME)

    task = asyncio.get_running_loop().create_task(ping())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_upstream_pool(app: web.Application) -> AsyncIterator[None]:
    """Close the SDK's connection pool of this app's loop when the app stops.

    The async client keeps one aiohttp session (one pool of connections to the model)
    per event loop; this app's loop ends with the server, so its pool is closed then
    and no descriptor outlives the server.
    """
    yield
    await _release_upstream_pool(app, trim=False)


async def _release_upstream_pool(app: web.Application, *, trim: bool = True) -> None:
    """Close this loop's SDK session (its idle model connections); the SDK opens a new
    one on the next request. Then return freed heap memory to the OS (glibc only)."""
    api_client = getattr(app[_STATE].client, "_api_client", None)
    session = getattr(api_client, "_aiohttp_session", None)  # the current loop's
    if session is not None and not getattr(session, "closed", True):
        with contextlib.suppress(Exception):
            await session.close()
    if trim and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc (e.g. musl)
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def _lean_tls_buffers() -> None:
    """Give each asyncio TLS connection a 32 KiB read buffer instead of 256 KiB.

    asyncio (Python 3.11+) allocates ``SSLProtocol.max_size`` bytes per TLS connection
    up front; the relay holds one TLS connection to the model per concurrent stream, so
    at 200 streams the default buffers alone take 50 MiB. A TLS record is at most
    16 KiB, so 32 KiB reads lose nothing. This is a process-wide setting (a class
    attribute); it is only ever lowered.
    """
    from asyncio import sslproto

    current = getattr(sslproto.SSLProtocol, "max_size", None)
    if isinstance(current, int) and current > TLS_READ_BUFFER_BYTES:
        sslproto.SSLProtocol.max_size = TLS_READ_BUFFER_BYTES


async def _stop_streams(app: web.Application) -> None:
    """On shutdown: end every answer and every open stream with a final ``error`` event."""
    state = app[_STATE]
    state.stopping = True
    turns = list(state.tasks)
    for task in turns:
        task.cancel()  # each publishes STOPPING_MESSAGE to its subscribers
    await asyncio.gather(*turns, return_exceptions=True)
    handlers = []
    for stream in list(state.streams):
        if stream.task is None:
            continue
        handlers.append(stream.task)
        if stream.upstream:
            stream.task.cancel()  # closes the model stream, then writes STOPPING_MESSAGE
    # Conversation subscribers send the frames their turn published and end by themselves.
    if handlers:
        await asyncio.wait(handlers, timeout=1.0)


@dataclass
class ChatServer:
    """The web chat, served over HTTP on 127.0.0.1 from a background thread.

    Args:
        client: A ``google.genai.Client`` (e.g. from
            :func:`quickstart_helpers.client.make_client`).
        model: Model to ask. Defaults to :data:`DEFAULT_MODEL`.
        host: Address to listen on. Defaults to ``127.0.0.1`` (this machine only).
        port: TCP port; 0 picks a free one. Defaults to 0.
        max_message_chars: Longest accepted message, in characters. Defaults to
            :data:`DEFAULT_MAX_MESSAGE_CHARS`.
        max_turns: Questions one conversation may hold; see :data:`DEFAULT_MAX_TURNS`.
        api: What ``/chat/stream`` asks, ``"generate"`` (default) or ``"interactions"``
            (resumable streams); see :func:`create_app`.
        allowed_hosts: More ``Host`` values to accept (``name:port``), for serving
            beyond loopback; see :func:`create_app`.
        allowed_origins: More page origins to accept; see :func:`create_app`.
        header_timeout: Seconds a connection has to send a request head; see
            :data:`HEADER_TIMEOUT_S`.
        body_timeout: Seconds a request has to send its body; see
            :data:`BODY_TIMEOUT_S`.
        keepalive_interval: Seconds of silence before an SSE stream gets a
            ``: keep-alive`` comment; see :data:`KEEPALIVE_INTERVAL_S`.
    """

    client: Any
    model: str = DEFAULT_MODEL
    host: str = "127.0.0.1"
    port: int = 0
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS
    max_turns: int = DEFAULT_MAX_TURNS
    api: str = "generate"
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    header_timeout: float = HEADER_TIMEOUT_S
    body_timeout: float = BODY_TIMEOUT_S
    keepalive_interval: float = KEEPALIVE_INTERVAL_S
    _server: BackgroundServer | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The chat page's URL, ``http://{host}:{port}/``."""
        return f"http://{self.host}:{self.port}/"

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    @property
    def stats(self) -> StreamStats:
        """Counts of the model streams run so far.

        Raises:
            RuntimeError: The server is not running.
        """
        return app_stats(self._require().app)

    def _require(self) -> BackgroundServer:
        if self._server is None:
            raise RuntimeError("The chat server is not running; call start() first.")
        return self._server

    def start(self) -> ChatServer:
        """Start serving in a daemon thread; return self once the port is open.

        Also raises the process's soft limit of open files where the OS allows it
        (:func:`raise_open_file_limit`), and lowers asyncio's per-connection TLS read
        buffer of the process from 256 KiB to :data:`TLS_READ_BUFFER_BYTES` (each
        concurrent stream holds a TLS connection to the model).

        Raises:
            RuntimeError: The server could not start (e.g. the port is taken).
        """
        if self._server is not None:
            return self
        if self.header_timeout <= 0:
            raise ValueError(f"header_timeout must be > 0 seconds, not {self.header_timeout}")
        raise_open_file_limit()
        _lean_tls_buffers()
        self._server = start_background_server(
            lambda: create_app(
                self.client,
                model=self.model,
                max_message_chars=self.max_message_chars,
                max_turns=self.max_turns,
                allowed_hosts=self.allowed_hosts,
                allowed_origins=self.allowed_origins,
                body_timeout=self.body_timeout,
                keepalive_interval=self.keepalive_interval,
                api=self.api,
            ),
            host=self.host,
            port=self.port,
            name="The chat server",
            runner_class=ErrorAnsweringRunner,
            error_answer=_unparsable,
            access_log=None,
            handler_cancellation=True,
            max_line_size=MAX_REQUEST_LINE_BYTES,
            # aiohttp closes a connection still waiting for a complete request head
            # this long after it opened or after its last response.
            keepalive_timeout=self.header_timeout,
            shutdown_timeout=0.5,
        )
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop serving: end open streams with an ``error`` event, close connections.

        Every open SSE stream first gets a final ``error`` event whose data is
        :data:`STOPPING_MESSAGE`; running answers are cancelled (their model streams
        closed). Returns once the server thread has ended (well under a second unless
        a client stops reading).
        """
        server, self._server = self._server, None
        if server is not None:
            server.stop(10)

    def running_tasks(self) -> int:
        """Return how many asyncio tasks run on the server's loop now (for tests).

        Raises:
            RuntimeError: The server is not running.
        """
        server = self._require()

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1  # not counting this one

        return server.call(count())

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

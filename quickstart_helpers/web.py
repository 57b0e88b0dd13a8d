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

Bad input (no message, a blank one, one over ``max_message_chars``, a bad JSON body,
an unknown conversation) gets a 4xx JSON body ``{"error": <code>, "reason": <what to
do>}``.

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
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from google.genai import errors as genai_errors

from . import settings
from ._background import BackgroundServer, start_background_server
from .chat import Conversation, Message, astream_reply, chunk_text
from .errors import explain_api_error
from .sse import CONTENT_TYPE, done_event, error_event, format_event

__all__ = [
    "APIS",
    "DEFAULT_MAX_MESSAGE_CHARS",
    "DEFAULT_MODEL",
    "MAX_REQUEST_LINE_BYTES",
    "RECONNECT_MS",
    "SAMPLE_QUESTION",
    "STATIC_DIR",
    "ChatServer",
    "StreamStats",
    "app_stats",
    "create_app",
]

#: Model the web chat asks when none is given.
DEFAULT_MODEL = settings.DEFAULT_TEXT_MODEL

#: A question recorded for the offline emulator (``assets/cassettes/web/web_sse_chat.json``).
SAMPLE_QUESTION = "How does a web page show a streamed answer while it is still being written?"

#: Longest accepted message, in characters (Unicode code points).
DEFAULT_MAX_MESSAGE_CHARS = 4000

#: Folder of the chat page (``index.html``, ``chat.js``, ``chat.css``).
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Longest request line (method, URL and query) the server reads, in bytes. It leaves
#: room for ``DEFAULT_MAX_MESSAGE_CHARS`` characters percent-encoded, so an over-long
#: message gets this app's JSON reason rather than aiohttp's bare "line too long".
MAX_REQUEST_LINE_BYTES = 64 * 1024

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
        self.frames.append(frame)
        self.finished = self.finished or final
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
    api: str = "generate"
    stats: StreamStats = field(default_factory=StreamStats)
    conversations: dict[str, _Entry] = field(default_factory=dict)
    #: Interactions this relay created (``/chat/stream`` with ``api="interactions"``).
    interactions: dict[str, None] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


_STATE = web.AppKey("quickstart_chat_state", _State)


class _BadInput(Exception):
    def __init__(self, status: int, code: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason, self.extra = status, code, reason, extra

    def response(self) -> web.Response:
        body = {"error": self.code, "reason": self.reason, **self.extra}
        return web.json_response(body, status=self.status)


def _check_message(value: Any, limit: int) -> str:
    if value is None:
        raise _BadInput(
            400,
            "missing_message",
            "Send the question in the 'message' field (e.g. /chat/stream?message=Hello).",
        )
    if not isinstance(value, str):
        raise _BadInput(
            400, "invalid_message", f"'message' must be a string, not {type(value).__name__}."
        )
    if not value.strip():
        raise _BadInput(400, "empty_message", "The message is empty; type a question first.")
    if len(value) > limit:
        raise _BadInput(
            413,
            "message_too_long",
            f"The message has {len(value)} characters; the limit is {limit}. "
            "Shorten it and send it again.",
            limit=limit,
        )
    return value


def create_app(
    client: Any,
    *,
    model: str = DEFAULT_MODEL,
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
    max_conversations: int = 1000,
    api: str = "generate",
) -> web.Application:
    """Return the chat's aiohttp application.

    Serve it with ``handler_cancellation=True`` (``web.run_app(app,
    handler_cancellation=True)`` or an ``AppRunner`` with it, as :class:`ChatServer`
    does) so that a client that disconnects cancels its model stream at once; without
    it the stream stops only at the next chunk it fails to write.

    Args:
        client: A ``google.genai.Client`` (its ``aio`` side is used).
        model: Model to ask. Defaults to :data:`DEFAULT_MODEL`.
        max_message_chars: Longest accepted message, in characters. Defaults to
            :data:`DEFAULT_MAX_MESSAGE_CHARS`.
        max_conversations: Conversations kept in memory; the oldest idle one is
            dropped to make room. Defaults to 1000.
        api: What ``/chat/stream`` asks: ``"generate"`` (``generate_content_stream``,
            the default) or ``"interactions"`` (the Interactions API; the stream
            resumes after a reconnect, see the module docstring).

    Returns:
        The application; its :class:`StreamStats` is ``app_stats(app)``.

    Raises:
        ValueError: ``max_message_chars`` or ``max_conversations`` is below 1, or
            ``api`` is not one of :data:`APIS`.
    """
    if max_message_chars < 1:
        raise ValueError(f"max_message_chars must be >= 1, not {max_message_chars}")
    if max_conversations < 1:
        raise ValueError(f"max_conversations must be >= 1, not {max_conversations}")
    if api not in APIS:
        raise ValueError(f"api must be one of {', '.join(APIS)}, not {api!r}")
    app = web.Application()
    app[_STATE] = _State(client, model, max_message_chars, max_conversations, api=api)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR)
    app.router.add_get("/chat/stream", _chat_stream)
    app.router.add_post("/chat", _post_chat)
    app.router.add_get("/conversations/{id}", _get_conversation)
    app.router.add_get("/conversations/{id}/stream", _conversation_stream)
    app.on_shutdown.append(_cancel_turns)
    return app


def app_stats(app: web.Application) -> StreamStats:
    """Return the :class:`StreamStats` of an app made by :func:`create_app`."""
    return app[_STATE].stats


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def _open_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    await response.prepare(request)
    return response


def _failure_text(error: BaseException, chunks: int) -> str:
    """Return a readable message for a failed model stream, for an ``error`` event."""
    if isinstance(error, genai_errors.APIError):
        text = explain_api_error(error)
    else:
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
    return text


async def _chat_stream(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    try:
        message = _check_message(request.query.get("message"), state.max_message_chars)
    except _BadInput as bad:
        return bad.response()
    if state.api == "interactions":
        return await _interactions_stream(request, state, message)
    response = await _open_sse(request)
    state.stats.started += 1
    outcome = "failed"
    chunks = 0
    try:
        stream = await state.client.aio.models.generate_content_stream(
            model=state.model, contents=message
        )
        async with contextlib.aclosing(stream):
            async for chunk in stream:
                await response.write(format_event(chunk_text(chunk)))
                chunks += 1
        await response.write(done_event())
        outcome = "completed"
    except asyncio.CancelledError:
        # The client went away and aiohttp cancelled this handler: leaving the
        # ``async with`` closed the model stream.
        outcome = "cancelled"
        raise
    except ConnectionResetError:
        # A write found the connection closed (a server run without handler
        # cancellation notices a departed client only here).
        outcome = "cancelled"
    except Exception as exc:  # noqa: BLE001 - reported to the client as an error event
        with contextlib.suppress(ConnectionResetError):
            await response.write(error_event(_failure_text(exc, chunks)))
    finally:
        setattr(state.stats, outcome, getattr(state.stats, outcome) + 1)
    return response


def _resume_point(request: web.Request, state: _State) -> tuple[str, str] | None:
    """Return ``(interaction id, event id)`` from ``Last-Event-ID``, or None without one.

    Raises:
        _BadInput: The id is not one this relay handed out.
    """
    last = request.headers.get("Last-Event-ID", "")
    if not last:
        return None
    interaction_id, _, event_id = last.partition("/")
    if not event_id or interaction_id not in state.interactions:
        raise _BadInput(
            400,
            "unknown_last_event_id",
            "The stream to resume is unknown (the server may have restarted); ask again.",
        )
    return interaction_id, event_id


async def _interactions_stream(
    request: web.Request, state: _State, message: str
) -> web.StreamResponse:
    """Relay an Interactions API stream; resume it when the browser sends Last-Event-ID."""
    try:
        resume = _resume_point(request, state)
    except _BadInput as bad:
        return bad.response()
    response = await _open_sse(request)
    state.stats.started += 1
    outcome = "failed"
    chunks = 0
    interactions = state.client.aio.interactions
    try:
        if resume is None:
            stream = await interactions.create(model=state.model, input=message, stream=True)
            interaction_id = ""
        else:
            interaction_id, event_id = resume
            stream = await interactions.get(interaction_id, stream=True, last_event_id=event_id)
        try:
            async for event in stream:
                if event.event_type == "interaction.created":
                    interaction_id = event.interaction.id
                    state.interactions[interaction_id] = None
                    while len(state.interactions) > MAX_RESUMABLE:
                        del state.interactions[next(iter(state.interactions))]
                    frame = format_event(
                        interaction_id,
                        event="started",
                        id=f"{interaction_id}/{event.event_id}",
                        retry_ms=RECONNECT_MS,
                    )
                    await response.write(frame)
                elif event.event_type == "step.delta" and event.delta.type == "text":
                    frame = format_event(event.delta.text, id=f"{interaction_id}/{event.event_id}")
                    await response.write(frame)
                    chunks += 1
                elif event.event_type == "error":
                    detail = event.error.message if event.error else None
                    raise RuntimeError(detail or "The Interactions API reported an error.")
        finally:
            await stream.close()
        await response.write(done_event())
        outcome = "completed"
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    except ConnectionResetError:
        outcome = "cancelled"
    except Exception as exc:  # noqa: BLE001 - reported to the client as an error event
        with contextlib.suppress(ConnectionResetError):
            await response.write(error_event(_failure_text(exc, chunks)))
    finally:
        setattr(state.stats, outcome, getattr(state.stats, outcome) + 1)
    return response


async def _post_chat(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    try:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _BadInput(
                400,
                "invalid_json",
                'The body must be JSON like {"message": "Hello", "conversationId": null}.',
            ) from None
        if not isinstance(body, dict):
            raise _BadInput(400, "invalid_json", "The body must be a JSON object.")
        text = _check_message(body.get("message"), state.max_message_chars)
        entry = _find_or_create(state, body.get("conversationId"))
    except _BadInput as bad:
        return bad.response()
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
            raise _BadInput(
                404,
                "unknown_conversation",
                f"There is no conversation {conversation_id!r}; leave conversationId out to "
                "start a new one.",
            )
        if entry.busy:
            raise _BadInput(
                409,
                "conversation_busy",
                "The model is still answering the previous message; wait for its completed "
                "event, then send the next one.",
            )
        # Most recently used last, so the oldest idle conversation is dropped first.
        state.conversations[entry.id] = state.conversations.pop(entry.id)
        return entry
    if len(state.conversations) >= state.max_conversations:
        idle = next((k for k, e in state.conversations.items() if not e.busy), None)
        if idle is None:
            raise _BadInput(
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
    seen: dict[str, int] = {}

    def on_change(message: Message) -> None:
        delta = message.text[seen.get(message.id, 0) :]
        seen[message.id] = len(message.text)
        turn.publish(_state_event(entry.id, message, delta))

    state.stats.started += 1
    chunks = 0
    try:
        chat = entry.conversation.open_async_chat(state.client)
        async for _chunk in astream_reply(chat, entry.conversation, text, on_change=on_change):
            chunks += 1
    except asyncio.CancelledError:
        state.stats.cancelled += 1
        turn.publish(error_event("The server stopped before the answer was complete."), final=True)
        raise
    except Exception as exc:  # noqa: BLE001 - reported to subscribers as an error event
        state.stats.failed += 1
        turn.publish(error_event(_failure_text(exc, chunks)), final=True)
        return
    reply = entry.conversation.messages[-1]
    if reply.status == "completed":
        state.stats.completed += 1
        turn.publish(done_event(), final=True)
    else:  # the stream ended without a finish reason: the tracker failed the message
        state.stats.failed += 1
        turn.publish(error_event(reply.error or "The answer is incomplete."), final=True)


async def _conversation_stream(request: web.Request) -> web.StreamResponse:
    entry = _lookup(request)
    if isinstance(entry, web.Response):
        return entry
    response = await _open_sse(request)
    if entry.turn is None:
        await response.write(done_event())
        return response
    with contextlib.suppress(ConnectionResetError):
        async for frame in entry.turn.follow():
            await response.write(frame)
    return response


async def _get_conversation(request: web.Request) -> web.Response:
    entry = _lookup(request)
    if isinstance(entry, web.Response):
        return entry
    body = {"conversationId": entry.id, **entry.conversation.model_dump(mode="json")}
    return web.json_response(body)


def _lookup(request: web.Request) -> _Entry | web.Response:
    conversation_id = request.match_info["id"]
    entry = request.app[_STATE].conversations.get(conversation_id)
    if entry is None:
        return _BadInput(
            404,
            "unknown_conversation",
            f"There is no conversation {conversation_id!r}; POST /chat starts one.",
        ).response()
    return entry


async def _cancel_turns(app: web.Application) -> None:
    tasks = list(app[_STATE].tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


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
        api: What ``/chat/stream`` asks, ``"generate"`` (default) or ``"interactions"``
            (resumable streams); see :func:`create_app`.
    """

    client: Any
    model: str = DEFAULT_MODEL
    host: str = "127.0.0.1"
    port: int = 0
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS
    api: str = "generate"
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

        Raises:
            RuntimeError: The server could not start (e.g. the port is taken).
        """
        if self._server is not None:
            return self
        self._server = start_background_server(
            lambda: create_app(
                self.client,
                model=self.model,
                max_message_chars=self.max_message_chars,
                api=self.api,
            ),
            host=self.host,
            port=self.port,
            name="The chat server",
            access_log=None,
            handler_cancellation=True,
            max_line_size=MAX_REQUEST_LINE_BYTES,
            shutdown_timeout=2.0,
        )
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop serving: cancel running answers, close connections, end the thread."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(15)

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

"""The browser chat relay (``quickstart serve``, notebook 05): model chunks as SSE events.

``GET /`` is the chat page (``static/``). ``GET /chat/stream?message=...`` sends one unnamed
event per chunk (a ``data:`` line per line of text), then ``event: done`` (``data: [DONE]``)
or ``event: error`` saying what to do. With ``api="interactions"`` each event has an ``id:``
(``<interaction>/<event>``; the first is ``started``, with ``retry:``): an ``EventSource``
that reconnects sends it back as ``Last-Event-ID`` and the answer goes on after it.
Conversations: ``_conversations``; who may call, and errors as JSON: ``_front_door``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from google.genai import errors as genai_errors

from . import _conversations, settings
from ._api_errors import explain_api_error, is_unrecorded_request, record_handled_error
from ._background import BackgroundServer
from ._conversations import STOPPING_MESSAGE as STOPPING_MESSAGE
from ._conversations import Turn
from ._front_door import MAX_BODY_BYTES, ChatError, front_door, http_error, logger
from ._scrub import scrub
from .display import chunk_text

#: A question recorded for the offline emulator (``assets/cassettes/web/web_sse_chat.json``).
SAMPLE_QUESTION = "How did lighthouse keepers keep the light burning all night?"
#: The ``error`` event offline for a question no recording answers (details go to the log).
UNRECORDED_MESSAGE = (
    "No answer is recorded for this question: offline, the chat only replays recorded "
    f'answers. Ask "{SAMPLE_QUESTION}", or set GEMINI_API_KEY (or record an answer with '
    "`quickstart record`) to ask your own."
)
MAX_MESSAGE_CHARS = 4000  # characters (code points) in a question, then 413
DEFAULT_MAX_TURNS = 100  # questions in a conversation, then 409 conversation_full
RECONNECT_MS = 500  # the ``retry:`` of resumable streams
MAX_RESUMABLE = 1000  # interactions kept for resuming, the oldest forgotten first
STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass
class StreamStats:
    """Model streams begun, ended ``done``, ended ``error``, cancelled (client gone, stop)."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def active(self) -> int:
        return self.started - self.completed - self.failed - self.cancelled


@dataclass(kw_only=True)
class Relay:
    """One chat app's options (those of :func:`create_app`), state and handlers of ``/``,
    ``/static/{name}`` and ``/chat/stream``; ``app[RELAY]``."""

    client: Any  # a genai.Client
    model: str = settings.DEFAULT_TEXT_MODEL
    api: str = "generate"  # what /chat/stream asks: "generate" or "interactions"
    max_turns: int = DEFAULT_MAX_TURNS
    allowed_hosts: Iterable[str] = ()  # ``name:port``, or ``name`` for any port
    allowed_origins: Iterable[str] = ()  # such as ``"https://chat.example.com"``
    body_timeout: float = 15.0  # seconds for a POST body, then 408
    keepalive_interval: float = 15.0  # seconds between ``: ping`` comments
    stats: StreamStats = field(default_factory=StreamStats, init=False)
    interactions: dict[str, None] = field(default_factory=dict, init=False)  # oldest first
    answers: set[asyncio.Task[Any]] = field(default_factory=set, init=False)  # Turn.start
    stopping: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, not {self.max_turns}")
        if self.api not in ("generate", "interactions"):
            raise ValueError(f"api must be one of generate, interactions, not {self.api!r}")
        self.allowed_hosts = frozenset(h.lower() for h in self.allowed_hosts)
        self.allowed_origins = frozenset(o.lower().rstrip("/") for o in self.allowed_origins)
        key = getattr(getattr(self.client, "_api_client", None), "api_key", None)
        self.secrets = (key,) if isinstance(key, str) and key else ()  # scrubbed from errors

    @staticmethod
    def check_message(value: Any) -> str:
        """The question, or a 400/413 ChatError (missing, blank, too long, not text)."""
        if not isinstance(value, str):
            code = "missing_message" if value is None else "invalid_message"
            kind = "none was sent" if value is None else f"not {type(value).__name__}"
            raise ChatError(400, code, f"Send the question as the 'message' string ({kind}).")
        if not value.strip():
            raise ChatError(400, "empty_message", "The message is empty; type a question.")
        if len(value) > MAX_MESSAGE_CHARS:
            reason = f"The message has {len(value)} characters; the limit is {MAX_MESSAGE_CHARS}."
            reason += " Shorten it and send it again."
            raise ChatError(413, "message_too_long", reason, limit=MAX_MESSAGE_CHARS)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            reason = f"The message holds a lone surrogate (at {exc.start}), not text; remove it."
            raise ChatError(400, "invalid_text", reason) from None
        return value

    def failure_text(self, error: BaseException, chunks: int) -> str:
        """The ``error`` event for a failed model call: what to do, without API keys."""
        if is_unrecorded_request(error):
            logger.info("No recording answers this question: %s", scrub(str(error), self.secrets))
            record_handled_error(error)
            text = UNRECORDED_MESSAGE
        elif isinstance(error, genai_errors.APIError):
            text = explain_api_error(error)  # also notes it as handled
        else:
            record_handled_error(error)
            detail = f"{type(error).__name__}: {' '.join(str(error).split())[:160]}"
            text = f"The connection to the model broke ({detail}). Try again in a moment."
        if chunks:
            s = "s" if chunks != 1 else ""
            text = f"The answer stopped after {chunks} chunk{s}; the text so far is kept. {text}"
        return scrub(text, self.secrets)

    async def page(self, request: web.Request) -> web.FileResponse:
        name = request.match_info.get("name", "index.html")
        if name not in {p.name for p in STATIC_DIR.iterdir()}:
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC_DIR / name)

    async def chat_stream(self, request: web.Request) -> web.StreamResponse:
        message, turn = self.check_message(request.query.get("message")), Turn()
        if self.api == "interactions":
            answer = self.ask_interactions(turn, message, self.resume_point(request))
        else:
            answer = self.ask_generate(turn, message)
        task = turn.start(self, answer)
        try:
            return await turn.send(request, self.keepalive_interval)
        finally:
            task.cancel()  # the client left (or the answer is over): close the model stream

    async def ask_generate(self, turn: Turn, message: str) -> None:
        """Publish each chunk's text into ``turn`` (one unnamed event each)."""
        models = self.client.aio.models
        stream = await models.generate_content_stream(model=self.model, contents=message)
        async with contextlib.aclosing(stream):
            async for chunk in stream:
                turn.chunks += 1
                turn.publish(chunk_text(chunk))

    def resume_point(self, request: web.Request) -> tuple[str, str]:
        """``(interaction id, event id)`` from ``Last-Event-ID``, one this relay handed out."""
        interaction_id, _, event_id = request.headers.get("Last-Event-ID", "").partition("/")
        if interaction_id and (not event_id or interaction_id not in self.interactions):
            reason = "The stream to resume is unknown (the server may have restarted); ask again."
            raise ChatError(400, "unknown_last_event_id", reason)
        return interaction_id, event_id

    async def ask_interactions(self, turn: Turn, text: str, after: tuple[str, str]) -> None:
        """Publish the interaction's text into ``turn``, each event with an ``id:``; ``after``
        a stored interaction's event (not ``("", "")``), go on after it instead of asking."""
        interactions, (interaction_id, event_id) = self.client.aio.interactions, after
        if interaction_id:
            upstream = await interactions.get(interaction_id, stream=True, last_event_id=event_id)
        else:
            upstream = await interactions.create(model=self.model, input=text, stream=True)
        try:
            async for event in upstream:
                if event.event_type == "interaction.created":
                    interaction_id = event.interaction.id
                    self.interactions[interaction_id] = None
                    if len(self.interactions) > MAX_RESUMABLE:
                        del self.interactions[next(iter(self.interactions))]
                    sse_id = f"{interaction_id}/{event.event_id}"
                    turn.publish(interaction_id, id=sse_id, event="started", retry=RECONNECT_MS)
                elif event.event_type == "step.delta" and event.delta.type == "text":
                    turn.chunks += 1
                    turn.publish(event.delta.text, id=f"{interaction_id}/{event.event_id}")
                elif event.event_type == "error":
                    detail = event.error.message if event.error else None
                    raise RuntimeError(detail or "The Interactions API reported an error.")
        finally:
            await upstream.close()

    async def stop_answers(self, app: web.Application) -> None:
        """On shutdown: end every answer, its readers getting STOPPING_MESSAGE as last event."""
        self.stopping = True
        for task in self.answers:
            task.cancel()
        await asyncio.gather(*self.answers, return_exceptions=True)


RELAY = web.AppKey("quickstart_relay", Relay)


def create_app(client: Any, **options: Any) -> web.Application:
    """The chat's aiohttp app for ``client`` (a ``genai.Client``); ``options`` are the fields
    of :class:`Relay` (ValueError for a bad one). Serve it with ``handler_cancellation=True``
    (as :class:`ChatServer` does) so that a client that leaves cancels its model call."""
    relay = Relay(client=client, **options)
    app = web.Application(middlewares=[front_door(relay)], client_max_size=MAX_BODY_BYTES)
    app[RELAY] = relay
    app.router.add_get("/", relay.page)
    app.router.add_get("/static/{name}", relay.page)
    app.router.add_get("/chat/stream", relay.chat_stream)
    _conversations.add_routes(app, relay)
    app.on_shutdown.append(relay.stop_answers)
    app.on_cleanup.append(lambda app: client.aio.aclose())  # this loop's connections
    return app


class ChatServer(BackgroundServer):
    """The web chat on 127.0.0.1 (this machine only) and ``port`` (0 picks a free one), from a
    daemon thread once started (``start()`` or ``with``); ``stop()`` ends every open stream
    with an ``error`` event. A connection has ``header_timeout`` seconds to send a request
    head. ``options`` go to :func:`create_app` (ValueError at once for a bad one)."""

    def __init__(self, client: Any, *, port: int = 0, header_timeout: float = 15.0, **options: Any):
        create_app(client, **options)
        new_loop = asyncio.new_event_loop  # uvloop's where it installs (not Windows): its TLS
        with contextlib.suppress(ImportError):  # read buffers take memory only as data comes
            from uvloop import new_event_loop as new_loop
        super().__init__(
            lambda: create_app(client, **options),
            port=port,
            name="The chat server",
            error_answer=http_error,
            new_loop=new_loop,
            access_log=None,
            max_line_size=64 * 1024,  # room for a whole message, percent-encoded
            keepalive_timeout=header_timeout,  # a silent connection is closed then
            lingering_time=0,  # after an error such as 408, do not wait for the body
        )

    @property
    def stats(self) -> StreamStats:
        """Counts of the model streams run so far (while it runs)."""
        return self.runner.app[RELAY].stats  # type: ignore[union-attr]

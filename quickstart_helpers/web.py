"""The browser chat relay (``quickstart serve``, notebook 05): model chunks as SSE events.

``GET /`` is the chat page (``static/``). ``GET /chat/stream?message=...`` sends one unnamed
event per chunk (a ``data:`` line per line of text), then ``event: done`` (``data: [DONE]``)
or ``event: error`` saying what to do. With ``api="interactions"`` each event has an ``id:``
(``<interaction>/<event>``; the first is ``started``, with ``retry:``): an ``EventSource``
that reconnects sends it back as ``Last-Event-ID`` and the answer goes on after it.
Conversations: ``_conversations``; who may call, and errors as JSON: ``_front_door``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from ._conversations import Turn, send_turn, start_answer
from ._front_door import MAX_BODY_BYTES, ChatError, front_door, http_error
from ._scrub import scrub
from .display import chunk_text

logger = logging.getLogger(__name__)

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


@dataclass
class Relay:
    """One chat app's settings and state, ``app[RELAY]``."""

    client: Any  # a genai.Client
    model: str
    api: str  # what /chat/stream asks: "generate" or "interactions"
    max_turns: int
    body_timeout: float  # seconds for a POST body, then 408
    keepalive_interval: float  # seconds between ``: ping`` comments
    secrets: tuple[str, ...]  # scrubbed from relayed errors
    stats: StreamStats = field(default_factory=StreamStats)
    interactions: dict[str, None] = field(default_factory=dict)  # resumable, oldest first
    answers: set[asyncio.Task[Any]] = field(default_factory=set)  # running (start_answer)
    stopping: bool = False

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


RELAY = web.AppKey("quickstart_relay", Relay)


def create_app(
    client: Any,
    *,
    model: str = settings.DEFAULT_TEXT_MODEL,
    api: str = "generate",
    max_turns: int = DEFAULT_MAX_TURNS,
    allowed_hosts: Iterable[str] = (),
    allowed_origins: Iterable[str] = (),
    body_timeout: float = 15.0,
    keepalive_interval: float = 15.0,
) -> web.Application:
    """The chat's aiohttp app for ``client`` (a ``genai.Client``). Serve it with
    ``handler_cancellation=True`` (as :class:`ChatServer` does) so that a client that leaves
    cancels its model call. ``allowed_hosts`` (``name:port``, or ``name`` for any port) and
    ``allowed_origins`` (``"https://chat.example.com"``) are accepted besides loopback."""
    if max_turns < 1:
        raise ValueError(f"max_turns must be >= 1, not {max_turns}")
    if api not in ("generate", "interactions"):
        raise ValueError(f"api must be one of generate, interactions, not {api!r}")
    key = getattr(getattr(client, "_api_client", None), "api_key", None)
    secrets = (key,) if isinstance(key, str) and key else ()
    hosts = frozenset(h.lower() for h in allowed_hosts)
    door = front_door(hosts, frozenset(o.lower().rstrip("/") for o in allowed_origins), secrets)
    app = web.Application(middlewares=[door], client_max_size=MAX_BODY_BYTES)
    relay = Relay(client, model, api, max_turns, body_timeout, keepalive_interval, secrets)
    app[RELAY] = relay
    app.router.add_get("/", _page)
    app.router.add_get("/static/{name}", _page)
    app.router.add_get("/chat/stream", _chat_stream)
    _conversations.add_routes(app, relay)
    app.on_shutdown.append(_stop_answers)
    app.on_cleanup.append(lambda app: client.aio.aclose())  # this loop's connections
    return app


async def _page(request: web.Request) -> web.FileResponse:
    name = request.match_info.get("name", "index.html")
    if name not in {p.name for p in STATIC_DIR.iterdir()}:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC_DIR / name)


async def _chat_stream(request: web.Request) -> web.StreamResponse:
    relay = request.app[RELAY]
    message, turn = relay.check_message(request.query.get("message")), Turn()
    if relay.api == "interactions":
        answer = _ask_interactions(relay, turn, message, _resume_point(request, relay))
    else:
        answer = _ask_generate(relay, turn, message)
    task = start_answer(relay, turn, answer)
    try:
        return await send_turn(relay, request, turn)
    finally:
        task.cancel()  # the client left (or the answer is over): close the model stream


async def _ask_generate(relay: Relay, turn: Turn, message: str) -> None:
    """Publish each chunk's text into ``turn`` (one unnamed event each)."""
    models = relay.client.aio.models
    stream = await models.generate_content_stream(model=relay.model, contents=message)
    async with contextlib.aclosing(stream):
        async for chunk in stream:
            turn.chunks += 1
            turn.publish(chunk_text(chunk))


def _resume_point(request: web.Request, relay: Relay) -> tuple[str, str] | None:
    """``(interaction id, event id)`` from ``Last-Event-ID``, one this relay handed out."""
    interaction_id, _, event_id = request.headers.get("Last-Event-ID", "").partition("/")
    if interaction_id and (not event_id or interaction_id not in relay.interactions):
        reason = "The stream to resume is unknown (the server may have restarted); ask again."
        raise ChatError(400, "unknown_last_event_id", reason)
    return (interaction_id, event_id) if interaction_id else None


async def _ask_interactions(
    relay: Relay, turn: Turn, message: str, resume: tuple[str, str] | None
) -> None:
    """Publish the interaction's text into ``turn``, each event with an ``id:``; ``resume``
    goes on after that event of a stored interaction instead of asking again."""
    interactions = relay.client.aio.interactions
    if resume is None:
        upstream = await interactions.create(model=relay.model, input=message, stream=True)
        interaction_id = ""
    else:
        interaction_id, after = resume
        upstream = await interactions.get(interaction_id, stream=True, last_event_id=after)
    try:
        async for event in upstream:
            if event.event_type == "interaction.created":
                interaction_id = event.interaction.id
                relay.interactions[interaction_id] = None
                if len(relay.interactions) > MAX_RESUMABLE:
                    del relay.interactions[next(iter(relay.interactions))]
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


async def _stop_answers(app: web.Application) -> None:
    """On shutdown: end every answer, its readers getting STOPPING_MESSAGE as last event."""
    relay = app[RELAY]
    relay.stopping = True
    for task in relay.answers:
        task.cancel()
    await asyncio.gather(*relay.answers, return_exceptions=True)


class ChatServer(BackgroundServer):
    """The web chat on 127.0.0.1 (this machine only) and ``port`` (0 picks a free one), from a
    daemon thread once started (``start()`` or ``with``); ``stop()`` ends every open stream
    with an ``error`` event. A connection has ``header_timeout`` seconds to send a request
    head. ``options`` go to :func:`create_app` (ValueError at once for a bad one)."""

    def __init__(self, client: Any, *, port: int = 0, header_timeout: float = 15.0, **options: Any):
        create_app(client, **options)
        super().__init__(
            lambda: create_app(client, **options),
            port=port,
            name="The chat server",
            error_answer=http_error,
            access_log=None,
            max_line_size=64 * 1024,  # room for a whole message, percent-encoded
            keepalive_timeout=header_timeout,  # a silent connection is closed then
            lingering_time=0,  # after an error such as 408, do not wait for the body
        )

    @property
    def stats(self) -> StreamStats:
        """Counts of the model streams run so far (while it runs)."""
        return self.runner.app[RELAY].stats  # type: ignore[union-attr]

"""The web chat's conversations, each a :class:`~quickstart_helpers.chat.Conversation`.

``POST /chat`` (JSON ``{"message", "conversationId"?}``; without an id a new conversation
starts) starts an answer that runs to its end even if every reader leaves; 202.
``GET /conversations/{id}/stream`` relays the latest turn's state updates: each event is
named after the message's new status (``created``, ``streaming``, ``completed``,
``failed``) with JSON data (:func:`_state_event`); a late reader gets the earlier ones
first; it ends with ``done`` or ``error``. ``GET /conversations/{id}``: its JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ._front_door import ChatError
from .chat import Conversation, Message, astream_reply

MAX_CONVERSATIONS = 1000  # kept in memory; the oldest idle one makes room, else 429
#: The last ``error`` event of every stream still open when the server stops.
STOPPING_MESSAGE = (
    "The server is stopping, so this answer ends here; the text so far is kept. "
    "Ask again once the server is back."
)


class _Turn:
    """The ``(data, event)`` updates of one answer, for any number of readers."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, str]] = []
        self.finished = False
        self._changed = asyncio.Event()

    def publish(self, data: str, event: str, *, final: bool = False) -> None:
        if not self.finished:
            self.updates.append((data, event))
            self.finished = final
            self._changed.set()
            self._changed = asyncio.Event()

    async def follow(self) -> AsyncIterator[tuple[str, str]]:
        """Every update from the first, then each new one until the last."""
        sent = 0
        while sent < len(self.updates) or not self.finished:
            if sent == len(self.updates):
                await self._changed.wait()
            for update in self.updates[sent:]:
                yield update
                sent += 1


@dataclass(eq=False)
class _Entry:
    id: str
    conversation: Conversation
    turn: _Turn = field(default_factory=_Turn)
    task: asyncio.Task[None] | None = None  # the answer running, if any


def _state_event(conversation_id: str, m: Message, delta: str) -> str:
    """An update's JSON data: the message's state and the text this change added."""
    data = {"conversationId": conversation_id, "messageId": m.id, "role": m.role}
    data.update(status=m.status, text=m.text, delta=delta, chunkCount=m.chunk_count)
    data.update(finishReason=m.finish_reason, error=m.error)
    return json.dumps(data, ensure_ascii=False)


def add_routes(app: web.Application, relay: Any) -> None:
    """Add the conversation routes; ``relay`` is the app's ``web.Relay``."""
    entries: dict[str, _Entry] = {}  # the most recently used last

    def lookup(conversation_id: Any, hint: str) -> _Entry:
        entry = entries.get(conversation_id) if isinstance(conversation_id, str) else None
        if entry is None:
            raise ChatError(404, "unknown_conversation", f"There is no such conversation; {hint}")
        return entry

    def find_or_create(conversation_id: Any) -> _Entry:
        if conversation_id is None:
            if len(entries) >= MAX_CONVERSATIONS:
                idle = [k for k, e in entries.items() if e.task is None or e.task.done()]
                if not idle:
                    reason = "Every conversation kept is busy; try again shortly."
                    raise ChatError(429, "too_many_conversations", reason)
                del entries[idle[0]]
            entry = _Entry(uuid.uuid4().hex, Conversation(model=relay.model))
        else:
            entry = lookup(conversation_id, "leave conversationId out to start one.")
            if entry.task is not None and not entry.task.done():
                reason = "The model is still answering the last message; wait for its end."
                raise ChatError(409, "conversation_busy", reason)
            if sum(m.role == "user" for m in entry.conversation.messages) >= relay.max_turns:
                reason = f"This conversation has reached its limit of {relay.max_turns} "
                reason += "questions; leave conversationId out to start a new one."
                raise ChatError(409, "conversation_full", reason, limit=relay.max_turns)
            del entries[entry.id]
        entries[entry.id] = entry
        return entry

    async def post_chat(request: web.Request) -> web.Response:
        if relay.stopping:
            raise ChatError(503, "server_stopping", "The server is stopping; try again soon.")
        try:
            body = await asyncio.wait_for(request.json(), relay.body_timeout)
        except asyncio.TimeoutError:
            reason = f"The body did not arrive within {relay.body_timeout:g} s; send it again."
            raise ChatError(408, "body_timeout", reason) from None
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deeply
            body = None
        if not isinstance(body, dict):
            reason = 'The body must be a JSON object like {"message": "Hello"}.'
            raise ChatError(400, "invalid_json", reason)
        text = relay.check_message(body.get("message"))
        entry = find_or_create(body.get("conversationId"))
        entry.turn = _Turn()
        entry.task = asyncio.get_running_loop().create_task(answer(entry, entry.turn, text))
        relay.answers.add(entry.task)
        entry.task.add_done_callback(relay.answers.discard)
        return web.json_response({"conversationId": entry.id, "status": "streaming"}, status=202)

    async def answer(entry: _Entry, turn: _Turn, text: str) -> None:
        """Answer one question, publishing each change of its messages, then a final
        ``done`` or ``error``, whatever fails on the way."""
        sent: dict[str, int] = {}  # characters of each message's text published

        def publish(m: Message) -> None:
            turn.publish(_state_event(entry.id, m, m.text[sent.get(m.id, 0) :]), m.status)
            sent[m.id] = len(m.text)

        relay.stats.started += 1
        outcome, chunks, final = "failed", 0, "The answer could not be completed."
        try:
            chat = entry.conversation.open_async_chat(relay.client)  # the turns so far
            async for _ in astream_reply(chat, entry.conversation, text, on_change=publish):
                chunks += 1
            reply = entry.conversation.messages[-1]
            if reply.status == "completed":
                outcome, final = "completed", "[DONE]"
            final = reply.error or final
        except asyncio.CancelledError:  # the server is stopping
            outcome, final = "cancelled", STOPPING_MESSAGE
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the readers as an error event
            final = relay.failure_text(exc, chunks)
        finally:
            relay.stats.end(outcome)
            turn.publish(final, "done" if outcome == "completed" else "error", final=True)

    async def stream(request: web.Request) -> web.StreamResponse:
        entry = lookup(request.match_info["id"], "POST /chat starts one.")
        sse = await relay.open_sse(request)
        with contextlib.suppress(ConnectionError):  # the reader left
            async with sse:
                async for data, event in entry.turn.follow():
                    await sse.send(data, event=event)
        return sse

    async def get(request: web.Request) -> web.Response:
        entry = lookup(request.match_info["id"], "POST /chat starts one.")
        state = entry.conversation.model_dump(mode="json")
        return web.json_response({"conversationId": entry.id, **state})

    app.router.add_post("/chat", post_chat)
    app.router.add_get("/conversations/{id}", get)
    app.router.add_get("/conversations/{id}/stream", stream)

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

from .chat import Conversation
from .errors import BadChatInput

#: The data of the last ``error`` event of every stream still open when the server stops.
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
    task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()


def _state_event(conversation_id: str, m: Any, delta: str) -> str:
    """An update's JSON data: the message's state and the text this change added."""
    data = {"conversationId": conversation_id, "messageId": m.id, "role": m.role}
    data.update(status=m.status, text=m.text, delta=delta, chunkCount=m.chunk_count)
    data.update(finishReason=m.finish_reason, error=m.error)
    return json.dumps(data, ensure_ascii=False)


class Conversations:
    """The conversation routes of a relay (``relay``: the app's state in ``web``)."""

    def __init__(self, app: web.Application, relay: Any) -> None:
        self.relay = relay
        self.entries: dict[str, _Entry] = {}  # the most recently used last
        app.router.add_post("/chat", self.post_chat)
        app.router.add_get("/conversations/{id}", self.get)
        app.router.add_get("/conversations/{id}/stream", self.stream)

    async def post_chat(self, request: web.Request) -> web.Response:
        relay = self.relay
        if relay.stopping:
            raise BadChatInput(503, "server_stopping", "The server is stopping; try again soon.")
        try:
            raw = await asyncio.wait_for(request.read(), relay.body_timeout)
        except asyncio.TimeoutError:
            reason = f"The body did not arrive within {relay.body_timeout:g} s; send it again."
            raise BadChatInput(408, "body_timeout", reason) from None
        try:  # not JSON, not UTF-8, or nested too deeply: None
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            reason = 'The body must be a JSON object like {"message": "Hello"}.'
            raise BadChatInput(400, "invalid_json", reason)
        text = relay.check_message(body.get("message"))
        entry = self._find_or_create(body.get("conversationId"))
        entry.turn = turn = _Turn()
        entry.task = asyncio.get_running_loop().create_task(self._answer(entry, turn, text))
        relay.tasks.add(entry.task)
        entry.task.add_done_callback(relay.tasks.discard)
        return web.json_response({"conversationId": entry.id, "status": "streaming"}, status=202)

    def _find_or_create(self, conversation_id: Any) -> _Entry:
        relay, entries = self.relay, self.entries
        if conversation_id is None:
            if len(entries) >= relay.max_conversations:
                idle = next((k for k, e in entries.items() if not e.busy), None)
                if idle is None:
                    reason = "Every conversation kept is busy; try again shortly."
                    raise BadChatInput(429, "too_many_conversations", reason)
                del entries[idle]
            entry = _Entry(uuid.uuid4().hex, Conversation(model=relay.model))
        else:
            entry = self._lookup(conversation_id, "leave conversationId out to start one.")
            if entry.busy:
                reason = "The model is still answering the last message; wait for its end."
                raise BadChatInput(409, "conversation_busy", reason)
            if sum(m.role == "user" for m in entry.conversation.messages) >= relay.max_turns:
                reason = f"This conversation has reached its limit of {relay.max_turns} "
                reason += "questions; leave conversationId out to start a new one."
                raise BadChatInput(409, "conversation_full", reason, limit=relay.max_turns)
            del entries[entry.id]
        entries[entry.id] = entry
        return entry

    def _lookup(self, conversation_id: Any, hint: str) -> _Entry:
        entry = self.entries.get(conversation_id) if isinstance(conversation_id, str) else None
        if entry is None:
            reason = f"There is no conversation {conversation_id!r:.80}; {hint}"
            raise BadChatInput(404, "unknown_conversation", reason)
        return entry

    async def _answer(self, entry: _Entry, turn: _Turn, text: str) -> None:
        """Answer one question, publishing each state change of its messages.

        Every path ends with the model message ``completed`` or ``failed`` and a final
        ``done`` or ``error`` update, whatever fails on the way.
        """
        relay, conversation, seen = self.relay, entry.conversation, {}

        def publish(message: Any) -> None:
            delta = message.text[seen.get(message.id, 0) :]
            seen[message.id] = len(message.text)
            turn.publish(_state_event(entry.id, message, delta), message.status)

        relay.stats.started += 1
        outcome, chunks, error = "failed", 0, None
        final = ("The answer could not be completed.", "error")
        try:
            chat = conversation.open_async_chat(relay.client)  # the whole turns so far
            publish(conversation.add_user_message(text))
            publish(reply := conversation.start_model_message())
            finish = None
            async for chunk in await chat.send_message_stream(text):
                chunks += 1
                if started := reply.status == "created":
                    reply.start()
                if chunk.candidates:
                    finish = chunk.candidates[0].finish_reason or finish
                if piece := relay.chunk_text(chunk):
                    reply.append(piece)
                if started or piece:
                    publish(reply)
            if finish is None:
                reply.fail("The stream ended without a finish reason; the answer may be cut.")
                publish(reply)
                final = (reply.error or final[0], "error")
            else:
                publish(reply.complete(finish_reason=getattr(finish, "value", str(finish))))
                outcome, final = "completed", ("[DONE]", "done")
        except asyncio.CancelledError as exc:  # the server is stopping
            outcome, final, error = "cancelled", (STOPPING_MESSAGE, "error"), exc
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the readers as an error event
            final, error = (relay.failure_text(exc, chunks), "error"), exc
        finally:
            busy = conversation.in_progress
            if busy is not None:
                busy.fail(error or final[0])
                with contextlib.suppress(Exception):
                    publish(busy)
            relay.count(outcome)
            turn.publish(*final, final=True)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        entry = self._lookup(request.match_info["id"], "POST /chat starts one.")
        sse = await self.relay.open_sse(request, upstream=False)
        try:
            async for data, event in entry.turn.follow():
                await sse.send(data, event=event)
        except ConnectionError:
            pass
        finally:
            self.relay.close_sse(sse)
        return sse

    async def get(self, request: web.Request) -> web.Response:
        entry = self._lookup(request.match_info["id"], "POST /chat starts one.")
        return web.json_response(
            {"conversationId": entry.id, **entry.conversation.model_dump(mode="json")}
        )

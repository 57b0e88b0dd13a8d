"""The web chat's answers, each a :class:`Turn` of SSE events, and its conversations.

An answer is a task publishing into its turn; readers follow it (a late one gets the earlier
events first) to its ``done`` or ``error``. The conversation routes (``POST /chat``, ``GET
/conversations/{id}[/stream]``): ``docs/web-chat.md``; their state events: :func:`_state_event`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from ._front_door import ChatError
from .chat import Conversation, Message, astream_reply

MAX_CONVERSATIONS = 1000  # kept in memory
#: The last ``error`` event of every answer still running when the server stops.
STOPPING_MESSAGE = (
    "The server is stopping, so this answer ends here; the text so far is kept. "
    "Ask again once the server is back."
)


@dataclass
class Turn:
    """One answer's SSE events, ``(data, fields)``, for any number of readers."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    chunks: int = 0  # model chunks received
    finished: bool = False  # True once the last event (``done`` or ``error``) is in
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def publish(self, data: str, *, final: bool = False, **fields: Any) -> None:
        if not self.finished:
            self.events.append((data, fields))
            self.finished = final
            self.changed.set()
            self.changed = asyncio.Event()

    async def follow(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Every event from the first, then each new one until the last."""
        sent = 0
        while sent < len(self.events) or not self.finished:
            if sent == len(self.events):
                await self.changed.wait()
            for event in self.events[sent:]:
                yield event
                sent += 1

    def start(self, relay: Any, answer: Coroutine[Any, Any, None]) -> asyncio.Task:
        """Run ``answer`` (it publishes into this turn) as a task, then the final event."""

        async def run() -> None:
            relay.stats.started += 1
            outcome, event, final = "failed", "error", ""
            try:
                await answer
                outcome, event, final = "completed", "done", "[DONE]"
            except asyncio.CancelledError:  # the server is stopping (or the reader left)
                outcome, final = "cancelled", STOPPING_MESSAGE
                raise
            except Exception as exc:  # noqa: BLE001 - reported to the readers as an error event
                final = relay.failure_text(exc, self.chunks)
            finally:
                setattr(relay.stats, outcome, getattr(relay.stats, outcome) + 1)
                self.publish(final, event=event, final=True)

        relay.answers.add(task := asyncio.create_task(run()))
        task.add_done_callback(relay.answers.discard)
        return task

    async def send(self, request: web.Request, ping_interval: float) -> web.StreamResponse:
        """Send the events until the last with aiohttp-sse (``: ping`` comments meanwhile)."""
        sse = EventSourceResponse(sep="\n", ping_interval=ping_interval)
        sse.headers["Content-Type"] = "text/event-stream; charset=utf-8"
        await sse.prepare(request)
        with contextlib.suppress(ConnectionError):  # the reader left
            async with sse:  # stops its pings at the end
                async for data, fields in self.follow():
                    await sse.send(data, **fields)
        return sse


def _state_event(conversation_id: str, m: Message, delta: str) -> str:
    """An update's JSON data: the message's state and the text this change added."""
    data = {"conversationId": conversation_id, "messageId": m.id, "role": m.role}
    data.update(status=m.status, text=m.text, delta=delta, chunkCount=m.chunk_count)
    data.update(finishReason=m.finish_reason, error=m.error)
    return json.dumps(data, ensure_ascii=False)


def add_routes(app: web.Application, relay: Any) -> None:
    """Add the conversation routes; ``relay`` is the app's ``web.Relay``."""
    entries: dict[str, tuple[Conversation, Turn]] = {}  # with its latest turn; last used last

    def lookup(conversation_id: Any, hint: str) -> tuple[Conversation, Turn]:
        if not isinstance(conversation_id, str) or conversation_id not in entries:
            raise ChatError(404, "unknown_conversation", f"There is no such conversation; {hint}")
        return entries[conversation_id]

    def next_turn(conversation_id: Any) -> tuple[str, Conversation, Turn]:
        if conversation_id is None:
            if len(entries) >= MAX_CONVERSATIONS:  # forget the least recently used
                del entries[next(iter(entries))]
            conversation_id, conversation = uuid.uuid4().hex, Conversation(model=relay.model)
        else:
            conversation, turn = lookup(conversation_id, "leave conversationId out for a new one.")
            if not turn.finished:
                reason = "The model is still answering the last message; wait for its end."
                raise ChatError(409, "conversation_busy", reason)
            if sum(m.role == "user" for m in conversation.messages) >= relay.max_turns:
                reason = f"This conversation has reached its limit of {relay.max_turns} "
                reason += "questions; leave conversationId out to start a new one."
                raise ChatError(409, "conversation_full", reason, limit=relay.max_turns)
            del entries[conversation_id]
        entries[conversation_id] = conversation, Turn()
        return conversation_id, *entries[conversation_id]

    async def post_chat(request: web.Request) -> web.Response:
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
        if relay.stopping:  # its body came after the answers were stopped
            raise ChatError(503, "server_stopping", "The server is stopping; try again soon.")
        text = relay.check_message(body.get("message"))
        conversation_id, conversation, turn = next_turn(body.get("conversationId"))
        sent: dict[str, int] = {}  # characters of each message's text published

        def publish(m: Message) -> None:
            delta = m.text[sent.get(m.id, 0) :]
            turn.publish(_state_event(conversation_id, m, delta), event=m.status)
            sent[m.id] = len(m.text)

        async def answer() -> None:
            chat = conversation.open_chat(relay.client.aio)  # with the turns so far
            async for _ in astream_reply(chat, conversation, text, on_change=publish):
                turn.chunks += 1
            if (reply := conversation.messages[-1]).status == "failed":
                raise RuntimeError(reply.error)

        turn.start(relay, answer())
        answered = {"conversationId": conversation_id, "status": "streaming"}
        return web.json_response(answered, status=202)

    async def stream(request: web.Request) -> web.StreamResponse:
        _, turn = lookup(request.match_info["id"], "POST /chat starts one.")
        return await turn.send(request, relay.keepalive_interval)

    async def get(request: web.Request) -> web.Response:
        conversation, _ = lookup(request.match_info["id"], "POST /chat starts one.")
        state = conversation.model_dump(mode="json")
        return web.json_response({"conversationId": request.match_info["id"], **state})

    app.router.add_post("/chat", post_chat)
    app.router.add_get("/conversations/{id}", get)
    app.router.add_get("/conversations/{id}/stream", stream)

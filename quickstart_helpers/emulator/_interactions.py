"""The Interactions API routes (any version segment, as the SDK's paths in
``google/genai/_gaos/interactions.py``), replayed from ``interactions`` cassettes: create (framed
as rules ``interactions.*`` say), get, cancel and delete, as docs/offline.md, "What the emulator
serves", lists them. With ``store`` true (the default) interactions are kept by id while the
emulator runs, so ``previous_interaction_id`` chains a conversation; a create request is matched
by :func:`~._matching.key_of`, the previous interaction counting as its cassette's name. Events
are generated from creation, each after its ``delay_ms`` (realtime pacing), whether or not a
client listens; ``"break": true`` drops the create request's connection there."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..sse import format_event
from . import _protocol
from ._cassette import InteractionsCassette
from ._faults import abort
from ._matching import no_recording
from ._protocol import ReceivedRequest, api_error, bare_model, hinted, key_error, off_loop

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["StoredInteraction", "add_routes"]


@dataclass
class StoredInteraction:
    """An interaction the emulator created, kept by id while it runs."""

    cassette: InteractionsCassette  # the recording that answers it
    started: float  # event-loop time (seconds) when it was created
    cancelled_at: int | None = None  # events (breaks too) generated before a cancel, or None

    def due(self, index: int) -> float:
        """Return the loop time at which event ``index`` (breaks counted) is generated."""
        return self.started + sum(e.delay_ms for e in self.cassette.events[: index + 1]) / 1000

    def generated(self, now: float, realtime: bool) -> int:
        """Return how many recorded events (breaks counted) exist at loop time ``now``."""
        if self.cancelled_at is not None:
            return self.cancelled_at
        total = len(self.cassette.events)
        return sum(self.due(i) <= now for i in range(total)) if realtime else total

    def status(self, now: float, realtime: bool) -> str:
        """Return ``cancelled``, ``in_progress`` or the recording's final status."""
        if self.cancelled_at is not None:
            return "cancelled"
        if self.generated(now, realtime) < len(self.cassette.events):
            return "in_progress"
        return str(self.cassette.interaction.get("status", "completed"))

    def resource(self, now: float, realtime: bool) -> dict[str, Any]:
        """The ``Interaction`` JSON as of ``now``: as recorded once finished; before that, or
        cancelled, without its output (``steps``, ``usage``) and with its status."""
        status, recorded = self.status(now, realtime), self.cassette.interaction
        if status == recorded.get("status", "completed"):
            return dict(recorded)
        rest = {k: v for k, v in recorded.items() if k not in ("steps", "usage", "updated")}
        return {**rest, "status": status}


#: The interactions an emulator app keeps, by id.
_STORE = web.AppKey("quickstart_interactions", dict)


def add_routes(app: web.Application, emulator: Emulator) -> None:
    app[_STORE] = {}
    app.router.add_post("/{version}/interactions", partial(_create, emulator))
    app.router.add_get("/{version}/interactions/{id}", partial(_get, emulator))
    app.router.add_delete("/{version}/interactions/{id}", partial(_delete, emulator))
    app.router.add_post("/{version}/interactions/{id}/cancel", partial(_cancel, emulator))


def _now() -> float:
    return asyncio.get_running_loop().time()


def _not_found(interaction_id: str) -> web.Response:
    kept = "the interactions created (with store on) since it started; create it again first."
    message = f"Interaction {interaction_id!r} was not found. The offline emulator keeps {kept}"
    return api_error(404, "NOT_FOUND", message)


async def _create(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    received = ReceivedRequest("interactions.create", "", request.match_info["version"])
    read = await _protocol.read_keyed_json(request, received, object_only=True)
    if isinstance(read, web.Response):
        return read
    raw, body = read
    model = body.get("model")
    received.model = bare_model(str(model or body.get("agent") or ""))
    emulator.requests.append(received)
    if not isinstance(model, str) or not model:
        message = "The offline emulator replays model interactions only: give 'model'."
        return api_error(400, "INVALID_ARGUMENT", message)
    store = request.app[_STORE]
    previous: str | None = None
    if previous_id := body.get("previous_interaction_id"):
        if (parent := store.get(str(previous_id))) is None:
            return _not_found(str(previous_id))
        previous = parent.cassette.name
    # The first time, this imports the SDK's Interactions models: off the event loop.
    await asyncio.get_running_loop().run_in_executor(None, emulator.store.check_interactions)
    cassette = await off_loop(len(raw), emulator.store.find_interaction, model, body, previous)
    if cassette is None:
        best = await hinted(len(raw), emulator.store.closest, model, body, previous, "interactions")
        found = (model, body, best, previous)
        message = await off_loop(len(raw), no_recording, "interactions", *found)
        return api_error(404, "NOT_FOUND", message)
    received.cassette = cassette.name
    stored = StoredInteraction(cassette, _now())
    if body.get("store", True) is not False:
        store[cassette.interaction_id] = stored
    if body.get("stream") is True:
        return await _replay(emulator, request, stored, 0, create=True)
    await emulator.sleep(sum(e.delay_ms for e in cassette.events))
    return web.json_response(stored.resource(_now(), emulator.pacing == "realtime"))


def _stored(request: web.Request) -> StoredInteraction | web.Response:
    """The interaction a request names, or the API's error (no key, not found)."""
    if (error := key_error(request)) is not None:
        return error
    interaction_id = request.match_info["id"]
    found = request.app[_STORE].get(interaction_id)
    return _not_found(interaction_id) if found is None else found


async def _get(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    if key_error(request) is None:
        query, version = dict(request.query), request.match_info["version"]
        emulator.requests.append(ReceivedRequest("interactions.get", "", version, query))
    if isinstance(stored := _stored(request), web.Response):
        return stored
    last_event_id = request.query.get("last_event_id")
    if request.query.get("stream", "").lower() != "true":
        if last_event_id:
            message = "last_event_id can only be used with stream=true."
            return api_error(400, "INVALID_ARGUMENT", message)
        return web.json_response(stored.resource(_now(), emulator.pacing == "realtime"))
    ids = [e.event.get("event_id") if e.event else None for e in stored.cassette.events]
    if last_event_id and last_event_id not in ids:
        where = f"interaction {stored.cassette.interaction_id!r}"
        message = f"last_event_id {last_event_id!r} is not an event of {where}."
        return api_error(400, "INVALID_ARGUMENT", message)
    start = ids.index(last_event_id) + 1 if last_event_id else 0
    return await _replay(emulator, request, stored, start, create=False)


async def _cancel(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    if isinstance(stored := _stored(request), web.Response):
        return stored
    now, realtime = _now(), emulator.pacing == "realtime"
    if (status := stored.status(now, realtime)) != "in_progress":
        why = "only an interaction still in progress can be cancelled."
        message = f"Interaction {stored.cassette.interaction_id!r} is {status}; {why}"
        return api_error(400, "FAILED_PRECONDITION", message)
    stored.cancelled_at = stored.generated(now, realtime)
    return web.json_response(stored.resource(now, realtime))


async def _delete(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    if isinstance(stored := _stored(request), web.Response):
        return stored
    del request.app[_STORE][stored.cassette.interaction_id]
    return web.json_response({})


async def _replay(
    emulator: Emulator, request: web.Request, stored: StoredInteraction, start: int, *, create: bool
) -> web.StreamResponse:
    """Stream the recorded events from index ``start``, each when it is generated, then
    ``event: done`` / ``data: [DONE]``; compact JSON and LF line ends, as the API."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    try:
        for index in range(start, len(stored.cassette.events)):
            await emulator.sleep(round((stored.due(index) - _now()) * 1000))  # fast: at once
            if stored.cancelled_at is not None and index >= stored.cancelled_at:
                break
            event = stored.cassette.events[index].event
            if event is None:
                if create:
                    abort(request)  # the connection drops, as a network failure
                    return response
                continue
            data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            await response.write(format_event(data, event=str(event.get("event_type"))))
        await response.write(format_event("[DONE]", event="done"))
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response

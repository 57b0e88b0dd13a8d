"""The emulator's Interactions API routes, replayed from ``interactions`` cassettes.

For any API version segment (the SDK's paths, ``google/genai/_gaos/interactions.py``):

- ``POST /{version}/interactions``: create. With ``"stream": true`` the answer is
  ``text/event-stream``: per recorded event an ``event: <event_type>`` line and a
  ``data: <JSON>`` line (the JSON carries ``event_type`` and ``event_id``), a blank
  line, and at the end ``data: [DONE]``, the sentinel the SDK stops at. Without
  ``stream`` the answer is the recorded ``Interaction`` JSON.
- ``GET /{version}/interactions/{id}``: the interaction as JSON; with ``stream=true``
  its events again, and with ``last_event_id=<event_id>`` only the events after that
  one (resuming a dropped stream).
- ``POST /{version}/interactions/{id}/cancel``: cancel an interaction still being
  generated (the rest of its events are not sent); a finished one gets 400
  ``FAILED_PRECONDITION``.
- ``DELETE /{version}/interactions/{id}``: forget it (``{}``).

Interactions created with ``store`` true (the default) are kept by id while the
emulator runs, so ``previous_interaction_id`` chains a conversation and ``get``
works; a create request is matched to a cassette by
:func:`~quickstart_helpers.emulator._matching.interactions_request_key`, where the
previous interaction counts as the name of the cassette that recorded it.

The emulator keeps the API's timeline: an interaction's events are generated from the
moment it is created, each after its recorded ``delay_ms`` (realtime pacing), whether
or not a client is connected. A ``"break": true`` in the cassette drops the create
request's connection there; ``get`` with ``last_event_id`` then streams the rest, each
event when its time has come. Nothing is made up: unmatched requests get the API's
error JSON naming the fields in which they differ from the nearest recording (found
off the event loop; see :mod:`._matching`).

The routes go through the emulator's middlewares like every other route
(:mod:`._middleware`: JSON errors, local ``Host``/``Origin`` and CORS, merged
slashes, the body timeout).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..sse import format_event
from ._cassette import InteractionsCassette
from ._matching import no_interaction_recording
from ._protocol import ReceivedRequest, api_error, bare_model, key_error, read_keyed_json

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["StoredInteraction", "add_routes", "stored_interactions"]

#: The data of the event that ends every Interactions API stream.
DONE = "[DONE]"


@dataclass
class StoredInteraction:
    """An interaction the emulator created, kept by id while it runs.

    Attributes:
        cassette: The recording that answers it.
        started: Event-loop time (seconds) when it was created.
        cancelled_at: Number of recorded events (breaks included) generated before a
            cancel, or None when not cancelled.
    """

    cassette: InteractionsCassette
    started: float
    cancelled_at: int | None = None

    def due(self, index: int) -> float:
        """Return the loop time at which event ``index`` (breaks counted) is generated."""
        delays = [e.delay_ms for e in self.cassette.events[: index + 1]]
        return self.started + sum(delays) / 1000

    def generated(self, now: float, realtime: bool) -> int:
        """Return how many recorded events (breaks counted) exist at loop time ``now``."""
        total = len(self.cassette.events)
        if self.cancelled_at is not None:
            return self.cancelled_at
        if not realtime:
            return total
        return sum(1 for i in range(total) if self.due(i) <= now)

    def status(self, now: float, realtime: bool) -> str:
        """Return ``cancelled``, ``in_progress`` or the recording's final status."""
        if self.cancelled_at is not None:
            return "cancelled"
        if self.generated(now, realtime) < len(self.cassette.events):
            return "in_progress"
        return str(self.cassette.interaction.get("status", "completed"))

    def resource(self, now: float, realtime: bool) -> dict[str, Any]:
        """Return the ``Interaction`` JSON as of ``now``.

        A finished interaction is the recorded resource; an unfinished or cancelled one
        is that resource without its output (``steps``, ``usage``) and with its status.
        """
        status = self.status(now, realtime)
        recorded = self.cassette.interaction
        if status == recorded.get("status", "completed"):
            return dict(recorded)
        partial = {k: v for k, v in recorded.items() if k not in ("steps", "usage", "updated")}
        partial["status"] = status
        return partial


_STORE = web.AppKey("quickstart_interactions", dict)


def stored_interactions(app: web.Application) -> dict[str, StoredInteraction]:
    """Return the interactions an emulator app keeps, by id (for tests)."""
    return app[_STORE]


def add_routes(app: web.Application, emulator: Emulator) -> None:
    """Register the Interactions API routes on the emulator's aiohttp app."""
    app[_STORE] = {}

    async def create(request: web.Request) -> web.StreamResponse:
        return await _create(emulator, request)

    async def get(request: web.Request) -> web.StreamResponse:
        return await _get(emulator, request)

    async def cancel(request: web.Request) -> web.StreamResponse:
        return await _cancel(emulator, request)

    async def delete(request: web.Request) -> web.StreamResponse:
        return await _delete(emulator, request)

    app.router.add_post("/{version}/interactions", create)
    app.router.add_get("/{version}/interactions/{id}", get)
    app.router.add_delete("/{version}/interactions/{id}", delete)
    app.router.add_post("/{version}/interactions/{id}/cancel", cancel)


def _now() -> float:
    return asyncio.get_running_loop().time()


def _realtime(emulator: Emulator) -> bool:
    return emulator.pacing == "realtime"


def _not_found(interaction_id: str) -> web.Response:
    return api_error(
        404,
        "NOT_FOUND",
        f"Interaction {interaction_id!r} was not found. The offline emulator keeps the "
        "interactions created (with store on) since it started; create it again first.",
    )


def _unmatched(
    emulator: Emulator,
    model: str,
    body: dict[str, Any],
    previous: str | None,
    best: InteractionsCassette | None,
) -> web.Response:
    return api_error(404, "NOT_FOUND", no_interaction_recording(model, body, previous, best))


async def _create(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    read = await read_keyed_json(request, object_only=True)
    if isinstance(read, web.Response):
        return read
    raw, body = read
    model = body.get("model")
    received = ReceivedRequest(
        "interactions.create",
        bare_model(str(model or body.get("agent") or "")),
        request.match_info["version"],
        body,
        size=len(raw),
    )
    emulator.requests.append(received)
    if not isinstance(model, str) or not model:
        return api_error(
            400,
            "INVALID_ARGUMENT",
            "The offline emulator replays model interactions only: give 'model'.",
        )
    store = stored_interactions(request.app)
    previous: str | None = None
    previous_id = body.get("previous_interaction_id")
    if previous_id:
        parent = store.get(str(previous_id))
        if parent is None:
            return _not_found(str(previous_id))
        previous = parent.cassette.name
    loop = asyncio.get_running_loop()
    # The first time, this imports the SDK's Interactions models: off the event loop.
    await loop.run_in_executor(None, emulator.store.check_interactions)
    cassette = emulator.store.find_interaction(model, body, previous)
    if cassette is None:
        # The hint is searched off the event loop.
        best = await loop.run_in_executor(
            None, emulator.store.closest_interaction, model, body, previous
        )
        return _unmatched(emulator, model, body, previous, best)
    received.cassette = cassette.name
    stored = StoredInteraction(cassette, _now())
    if body.get("store", True) is not False:
        store[cassette.interaction_id] = stored
    if body.get("stream") is True:
        return await _replay(emulator, request, stored, 0, create=True)
    await emulator.sleep(sum(e.delay_ms for e in cassette.events))
    return web.json_response(stored.resource(_now(), _realtime(emulator)))


async def _get(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    error = key_error(request)
    if error is not None:
        return error
    interaction_id = request.match_info["id"]
    emulator.requests.append(
        ReceivedRequest("interactions.get", "", request.match_info["version"], dict(request.query))
    )
    stored = stored_interactions(request.app).get(interaction_id)
    if stored is None:
        return _not_found(interaction_id)
    stream = request.query.get("stream", "").lower() == "true"
    last_event_id = request.query.get("last_event_id")
    if not stream:
        if last_event_id:
            return api_error(
                400, "INVALID_ARGUMENT", "last_event_id can only be used with stream=true."
            )
        return web.json_response(stored.resource(_now(), _realtime(emulator)))
    start = 0
    if last_event_id:
        ids = [e.event.get("event_id") if e.event else None for e in stored.cassette.events]
        if last_event_id not in ids:
            return api_error(
                400,
                "INVALID_ARGUMENT",
                f"last_event_id {last_event_id!r} is not an event of interaction "
                f"{interaction_id!r}.",
            )
        start = ids.index(last_event_id) + 1
    return await _replay(emulator, request, stored, start, create=False)


async def _cancel(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    error = key_error(request)
    if error is not None:
        return error
    interaction_id = request.match_info["id"]
    stored = stored_interactions(request.app).get(interaction_id)
    if stored is None:
        return _not_found(interaction_id)
    now, realtime = _now(), _realtime(emulator)
    if stored.status(now, realtime) != "in_progress":
        return api_error(
            400,
            "FAILED_PRECONDITION",
            f"Interaction {interaction_id!r} is {stored.status(now, realtime)}; only an "
            "interaction still in progress can be cancelled.",
        )
    stored.cancelled_at = stored.generated(now, realtime)
    return web.json_response(stored.resource(now, realtime))


async def _delete(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    error = key_error(request)
    if error is not None:
        return error
    interaction_id = request.match_info["id"]
    if stored_interactions(request.app).pop(interaction_id, None) is None:
        return _not_found(interaction_id)
    return web.json_response({})


def _frame(event: dict[str, Any], newline: str) -> bytes:
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return format_event(data, event=str(event.get("event_type")), newline=newline)


async def _replay(
    emulator: Emulator,
    request: web.Request,
    stored: StoredInteraction,
    start: int,
    *,
    create: bool,
) -> web.StreamResponse:
    """Stream the recorded events from index ``start``, each when it is generated."""
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
    )
    await response.prepare(request)
    realtime = _realtime(emulator)
    try:
        for index in range(start, len(stored.cassette.events)):
            if realtime:
                wait_ms = round((stored.due(index) - _now()) * 1000)
                await emulator.sleep(wait_ms)
            if stored.cancelled_at is not None and index >= stored.cancelled_at:
                break
            item = stored.cassette.events[index]
            if item.event is None:
                if create and request.transport is not None:
                    # Drop the connection mid-stream, as a network failure would.
                    request.transport.abort()
                    return response
                continue
            await response.write(_frame(item.event, emulator.sse_newline))
        await response.write(format_event(DONE, newline=emulator.sse_newline))
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response

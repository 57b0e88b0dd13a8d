"""Fault directives: what breaks streams in production, replayed on the real wire.

A cassette's ``faults`` (validated in :mod:`._cassette`) are carried out here, called by
:mod:`._http` and :mod:`._live`. ``generate`` cassettes: ``http_error`` (the API's error
JSON before any chunk; with ``times``, that many requests in a row fail, then one
succeeds), ``error_event`` (an ``{"error": ...}`` event after chunk N, then the end),
``drop`` (the connection dropped after chunk N, or ``at_byte`` bytes into chunk N+1),
``split`` (a chunk written in several flushed TCP writes, :data:`SPLIT_PAUSE_S` apart,
also in fast pacing; an offset may split a UTF-8 character). ``live`` cassettes, at
message N of turn T: ``close`` (a close code and reason), ``drop`` (no close frame),
``go_away`` (``{"goAway": {"timeLeft": "10s"}}``; the turn goes on, then no new turn is
taken and the connection closes with 1001 once the time is up, at once in fast pacing).
Session resumption is not a fault: :mod:`._live` sends and honours its handles.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import LiveSessionClosed
from ._cassette import (
    CloseFault,
    DropFault,
    ErrorEventFault,
    GenerateCassette,
    GoAwayFault,
    HttpErrorFault,
    LiveCassette,
    SplitFault,
)
from ._protocol import error_response

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["CLOSE_GOING_AWAY", "SPLIT_PAUSE_S", "LiveFaults", "StreamFaults", "http_error"]

#: Pause after each piece of a split chunk, in seconds, so the pieces arrive in
#: separate reads (in fast pacing too).
SPLIT_PAUSE_S = 0.05

#: Close code once a ``goAway``'s time is up (RFC 6455: the endpoint is going away).
CLOSE_GOING_AWAY = 1001

_FLUSH_STEPS = 200  # x 5 ms: wait at most a second for a write buffer to empty


async def _flush(request: web.Request) -> None:
    """Wait (bounded) until the transport has handed its buffered bytes to the kernel."""
    transport = request.transport
    for _ in range(_FLUSH_STEPS):
        if transport is None or transport.is_closing() or not transport.get_write_buffer_size():
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def http_error(emulator: Emulator, cassette: GenerateCassette) -> web.Response | None:
    """Return the cassette's ``http_error`` response for this attempt, or None to answer.

    Each call counts one attempt in ``emulator.fault_attempts[cassette.name]``.
    """
    fault = next((f for f in cassette.faults if isinstance(f, HttpErrorFault)), None)
    if fault is None:
        return None
    attempt = emulator.fault_attempts.get(cassette.name, 0)
    emulator.fault_attempts[cassette.name] = attempt + 1
    if fault.times is not None and attempt % (fault.times + 1) == fault.times:
        return None  # the attempt after ``times`` failures succeeds
    return error_response(fault.error.model_dump(exclude_none=True), fault.status)


class StreamFaults:
    """The in-stream faults of one ``generate`` cassette, for one streamed response."""

    def __init__(self, cassette: GenerateCassette, request: web.Request) -> None:
        self.request = request
        self.error = next((f for f in cassette.faults if isinstance(f, ErrorEventFault)), None)
        self.drop = next((f for f in cassette.faults if isinstance(f, DropFault)), None)
        self.splits = {f.chunk: f.at for f in cassette.faults if isinstance(f, SplitFault)}

    async def interrupt(
        self, response: web.StreamResponse, index: int, frame: Callable[..., bytes]
    ) -> bool:
        """Before chunk ``index`` (``len(chunks)`` after the last): end the stream if a
        fault says so; return True when it was ended. ``frame`` frames a payload as the
        stream does (an SSE event, or a JSON array item; ``last=True`` closes the array).
        """
        if self.error is not None and self.error.after == index:
            payload = self.error.error.model_dump(exclude_none=True)
            await response.write(frame(payload, last=True))
            await response.write_eof()
            return True
        if self.drop is not None and self.drop.after == index and self.drop.at_byte is None:
            await _flush(self.request)
            _abort(self.request)
            return True
        return False

    async def write(self, response: web.StreamResponse, index: int, event: bytes) -> bool:
        """Write chunk ``index``'s framed bytes, split or cut short if a fault says so;
        return True when the connection was dropped in the middle of the event."""
        cut = None
        if self.drop is not None and self.drop.after == index and self.drop.at_byte is not None:
            cut = self.drop.at_byte
        offsets = [o for o in self.splits.get(index, []) if o < len(event)]
        if cut is None and not offsets:
            await response.write(event)
            return False
        end = len(event) if cut is None else min(cut, len(event))
        bounds = [0, *(o for o in offsets if o < end), end]
        for start, stop in zip(bounds, bounds[1:], strict=False):
            await response.write(event[start:stop])
            await _flush(self.request)
            await asyncio.sleep(SPLIT_PAUSE_S)
        if cut is not None:
            _abort(self.request)
            return True
        return False


# -- Live API ------------------------------------------------------------------------


class LiveFaults:
    """The fault directives of one Live API connection (``emulator``: for its pacing)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.going_away_at: float | None = None  # loop time the connection ends

    async def before_message(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        cassette: LiveCassette,
        turn: int,
        index: int,
    ) -> None:
        """Carry out the faults placed before message ``index`` of ``turn``.

        ``index`` is the turn's message count after its last message.

        Raises:
            LiveSessionClosed: A ``close`` fault (its code and reason).
            ConnectionResetError: A ``drop`` fault (the connection was aborted).
        """
        for fault in cassette.faults:
            if (getattr(fault, "turn", None) or 0, getattr(fault, "after", None)) != (turn, index):
                continue
            if isinstance(fault, GoAwayFault):
                go_away = {"goAway": {"timeLeft": fault.time_left}}  # as _live sends messages
                await ws.send_bytes(json.dumps(go_away, separators=(",", ":")).encode())
                seconds = 0.0 if self.emulator.pacing == "fast" else float(fault.time_left[:-1])
                self.going_away_at = asyncio.get_running_loop().time() + seconds
            elif isinstance(fault, CloseFault):
                raise LiveSessionClosed(fault.code, fault.reason)
            elif isinstance(fault, DropFault):
                _abort(request)
                raise ConnectionResetError("drop fault")

    async def next_turn(self, queue: asyncio.Queue[Any]) -> Any:
        """Wait for the next queued turn; after a ``goAway``, only until the time is up.

        Raises:
            LiveSessionClosed: 1001 once a ``goAway``'s time is up.
        """
        if self.going_away_at is None:
            return await queue.get()
        left = self.going_away_at - asyncio.get_running_loop().time()
        try:
            if left <= 0:
                raise TimeoutError
            return await asyncio.wait_for(queue.get(), timeout=left)
        except (TimeoutError, asyncio.TimeoutError):
            raise LiveSessionClosed(
                CLOSE_GOING_AWAY,
                "The session's time is up after goAway; reconnect with a session "
                "resumption handle.",
            ) from None

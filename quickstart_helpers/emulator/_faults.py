"""Fault directives: what breaks streams in production, replayed on the real wire.

A cassette's ``faults`` list (validated in :mod:`._cassette`) names the faults; this
module carries them out. :mod:`._http` and :mod:`._live` call it at a few points:

``generate`` cassettes (REST and SSE):

- ``http_error``: :func:`http_error` answers the request with the API's error JSON
  before any chunk; with ``times``, only that many requests in a row fail, then one
  succeeds, and the count starts over (per cassette, per emulator);
- ``error_event``: an ``{"error": {...}}`` event (SSE, or a JSON array item) after
  chunk N, then the stream ends (what the live API sends when it fails mid-answer);
- ``drop``: the connection is dropped after chunk N, or in the middle of chunk N+1
  after ``at_byte`` bytes of its SSE event;
- ``split``: a chunk's SSE event is written in several TCP writes, each flushed and
  followed by a short pause (:data:`SPLIT_PAUSE_S`, also in fast pacing) so the client
  reads the pieces separately; an offset inside a UTF-8 character splits it.

``live`` cassettes (WebSocket), at message N of turn T:

- ``close``: close the WebSocket with a code and reason (1007, 1011 ...);
- ``drop``: drop the connection without a close frame;
- ``go_away``: send ``{"goAway": {"timeLeft": "10s"}}``; the turn goes on to its end,
  then the connection takes no new turn and is closed with code 1001 once the time
  is up (at once in fast pacing).

Session resumption is not a fault: :mod:`._live` sends its handles (after each
``turnComplete``) and resumes from them. A client that reconnects after ``goAway``
reads on until that update arrives, then reconnects with the handle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import LiveSessionClosed
from ._cassette import GenerateCassette, LiveCassette, LiveMessage
from ._cassette_faults import (
    CloseFault,
    DropFault,
    ErrorEventFault,
    GoAwayFault,
    HttpErrorFault,
    SplitFault,
)

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = [
    "CLOSE_GOING_AWAY",
    "SPLIT_PAUSE_S",
    "LiveFaults",
    "StreamFaults",
    "http_error",
]

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
    return web.json_response(fault.error.model_dump(exclude_none=True), status=fault.status)


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
        """Before chunk ``index`` (or after the last): end the stream if a fault says so.

        Args:
            response: The streamed response.
            index: The index of the next chunk (``len(chunks)`` after the last).
            frame: Frames a payload as the stream does (an SSE event, or a JSON array
                item; ``last=True`` also closes the array).

        Returns:
            True when the stream was ended (error event written, or connection dropped).
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
        """Write chunk ``index``'s framed bytes, split or cut short if a fault says so.

        Returns:
            True when the connection was dropped in the middle of the event.
        """
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
    """The fault directives of one Live API connection.

    Args:
        emulator: The emulator (for its pacing).
    """

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
        message: LiveMessage | None,
    ) -> None:
        """Carry out the faults placed before message ``index`` of ``turn``.

        ``message`` is None after the turn's last message.

        Raises:
            LiveSessionClosed: A ``close`` fault (its code and reason).
            ConnectionResetError: A ``drop`` fault (the connection was aborted).
        """
        from ._live import send_message

        for fault in cassette.faults:
            if (getattr(fault, "turn", None) or 0) != turn:
                continue
            if getattr(fault, "after", None) != index:
                continue
            if isinstance(fault, GoAwayFault):
                await send_message(ws, {"goAway": {"timeLeft": fault.time_left}})
                seconds = float(fault.time_left[:-1])
                if self.emulator.pacing == "fast":
                    seconds = 0.0
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

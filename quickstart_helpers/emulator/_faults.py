"""Fault directives: what breaks streams in production, replayed on the real wire for
:mod:`._http` and :mod:`._live`. A cassette's ``faults`` (each model in :mod:`._cassette` says
what it does); a ``split`` chunk's pieces are flushed :data:`SPLIT_PAUSE_S` apart, in fast pacing
too; after a ``go_away`` no new turn is taken and the socket closes with 1001."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import LiveSessionClosed
from ._cassette import GenerateCassette, LiveCassette
from ._live_wire import encode_message
from ._protocol import error_response

if TYPE_CHECKING:
    from ._server import Emulator

SPLIT_PAUSE_S = 0.05  # seconds after each piece of a split chunk: read apart
CLOSE_GOING_AWAY = 1001  # once a goAway's time is up (RFC 6455: the endpoint is going away)


async def _flush(request: web.Request) -> None:
    """Wait (bounded) until the transport has handed its buffered bytes to the kernel."""
    transport = request.transport
    for _ in range(200):  # 5 ms steps: a second at most
        if transport is None or transport.is_closing() or not transport.get_write_buffer_size():
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)


def abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def http_error(emulator: Emulator, cassette: GenerateCassette) -> web.Response | None:
    """Return the cassette's ``http_error`` response for this attempt (counted in
    ``emulator.fault_attempts[cassette.name]``), or None to answer."""
    fault = next((f for f in cassette.faults if f.fault == "http_error"), None)
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
        self.error = next((f for f in cassette.faults if f.fault == "error_event"), None)
        self.drop = next((f for f in cassette.faults if f.fault == "drop"), None)
        self.splits = {f.chunk: f.at for f in cassette.faults if f.fault == "split"}

    async def interrupt(
        self, response: web.StreamResponse, index: int, frame: Callable[..., bytes]
    ) -> bool:
        """Before chunk ``index`` (``len(chunks)``: after the last), end the stream if a fault
        says so (True). ``frame`` frames a payload as the stream does (``last=True``: the end)."""
        if self.error is not None and self.error.after == index:
            await response.write(frame(self.error.error.model_dump(exclude_none=True), last=True))
            await response.write_eof()
            return True
        if self.drop is not None and self.drop.after == index and self.drop.at_byte is None:
            await _flush(self.request)
            abort(self.request)
            return True
        return False

    async def write(self, response: web.StreamResponse, index: int, event: bytes) -> bool:
        """Write chunk ``index``'s framed bytes, split or cut short if a fault says so;
        return True when the connection was dropped in the middle of the event."""
        cut = self.drop.at_byte if self.drop is not None and self.drop.after == index else None
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
            abort(self.request)
            return True
        return False


class LiveFaults:
    """The fault directives of one Live API connection (``fast``: in fast pacing)."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, fast: bool) -> None:
        self.ws, self.request, self.fast = ws, request, fast
        self.going_away_at: float | None = None  # loop time the connection ends

    async def before_message(self, cassette: LiveCassette, turn: int, index: int) -> None:
        """Carry out the faults before message ``index`` of ``turn`` (the message count:
        after the last). Raises LiveSessionClosed (``close``), ConnectionResetError (``drop``)."""
        for fault in cassette.faults:
            if (getattr(fault, "turn", None) or 0, getattr(fault, "after", None)) != (turn, index):
                continue
            if fault.fault == "go_away":
                await self.ws.send_bytes(encode_message({"goAway": {"timeLeft": fault.time_left}}))
                seconds = 0.0 if self.fast else float(fault.time_left[:-1])
                self.going_away_at = asyncio.get_running_loop().time() + seconds
            elif fault.fault == "close":
                raise LiveSessionClosed(fault.code, fault.reason)
            elif fault.fault == "drop":
                abort(self.request)
                raise ConnectionResetError("drop fault")

    async def next_turn(self, queue: asyncio.Queue[Any]) -> Any:
        """Wait for the next queued turn; after a ``goAway`` only until its time is up, then
        raise LiveSessionClosed (1001)."""
        at = self.going_away_at
        try:
            if at is not None and at <= asyncio.get_running_loop().time():
                raise TimeoutError  # a turn already queued is not taken either
            async with asyncio.timeout_at(at):
                return await queue.get()
        except TimeoutError:
            message = "The session's time is up after goAway; reconnect with a resumption handle."
            raise LiveSessionClosed(CLOSE_GOING_AWAY, message) from None

"""The fault directives of a cassette's ``faults`` list: what breaks streams in
production, replayed on purpose (carried out by :mod:`._faults`). ``fault`` picks the
directive; ``generate`` cassettes take ``http_error``, ``error_event``, ``drop`` and
``split``, ``live`` cassettes ``drop``, ``close`` and ``go_away``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_after = model_validator(mode="after")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _short_reason(reason: str) -> str:
    if len(reason.encode("utf-8")) > 123:
        raise ValueError("a close reason holds at most 123 UTF-8 bytes")
    return reason


#: A WebSocket close reason: at most 123 UTF-8 bytes (RFC 6455).
CloseReason = Annotated[str, AfterValidator(_short_reason)]


class ApiErrorDetail(_Strict):
    """The inside of the API's error JSON: ``code``, ``message``, ``status``, ``details``."""

    code: int = Field(ge=400, le=599)
    message: str = Field(min_length=1)
    status: str = Field(pattern=r"^[A-Z_]+$")
    details: list[dict[str, Any]] | None = None


class ApiErrorBody(_Strict):
    """The API's error JSON, ``{"error": {"code", "message", "status"}}``."""

    error: ApiErrorDetail


class HttpErrorFault(_Strict):
    """``generate``: answer ``status`` with ``error`` before the first chunk; with
    ``times``, fail that many requests, answer one, and start over (per cassette and
    emulator); without, fail every time."""

    fault: Literal["http_error"]
    status: int = Field(ge=400, le=599)
    error: ApiErrorBody
    times: int | None = Field(default=None, ge=1)

    @_after
    def _same_code(self) -> HttpErrorFault:
        if self.error.error.code != self.status:
            raise ValueError(f"error.error.code must equal status ({self.status})")
        return self


class ErrorEventFault(_Strict):
    """``generate``: send an ``{"error": {...}}`` SSE event after ``after`` chunks, then end."""

    fault: Literal["error_event"]
    after: int = Field(ge=0)
    error: ApiErrorBody


class DropFault(_Strict):
    """Drop the connection after ``after`` chunks (``generate``; ``at_byte`` also sends
    that many bytes of the next chunk's event) or messages of turn ``turn`` (``live``)."""

    fault: Literal["drop"]
    after: int = Field(ge=0)
    at_byte: int | None = Field(default=None, ge=1)
    turn: int | None = Field(default=None, ge=0)


class SplitFault(_Strict):
    """``generate``: write chunk ``chunk``'s event in several TCP writes, cut at byte
    offsets ``at`` (an offset inside a UTF-8 character splits it across two reads)."""

    fault: Literal["split"]
    chunk: int = Field(ge=0)
    at: list[int] = Field(min_length=1)

    @_after
    def _increasing(self) -> SplitFault:
        if self.at[0] < 1 or any(b <= a for a, b in zip(self.at, self.at[1:], strict=False)):
            raise ValueError("at must be byte offsets >= 1 in increasing order")
        return self


class CloseFault(_Strict):
    """``live``: close the WebSocket with ``code`` and ``reason`` after ``after`` messages
    of turn ``turn``."""

    fault: Literal["close"]
    code: int = Field(ge=1000, le=4999)
    reason: CloseReason = ""
    turn: int = Field(default=0, ge=0)
    after: int = Field(ge=0)


class GoAwayFault(_Strict):
    """``live``: send ``{"goAway": {"timeLeft": ...}}`` after ``after`` messages of turn
    ``turn``; the turn goes on, then no more turns are taken and the connection closes
    (1000) once ``time_left`` has passed (at once in fast pacing)."""

    fault: Literal["go_away"]
    turn: int = Field(default=0, ge=0)
    after: int = Field(ge=0)
    time_left: str = Field(default="10s", pattern=r"^[0-9]+(\.[0-9]+)?s$")


#: Any fault directive; ``fault`` picks the model.
Fault = Annotated[
    HttpErrorFault | ErrorEventFault | DropFault | SplitFault | CloseFault | GoAwayFault,
    Field(discriminator="fault"),
]
_ALLOWED = {
    "generate": ("http_error", "error_event", "drop", "split"),
    "live": ("drop", "close", "go_away"),
}
#: Faults that end a stream; a cassette has at most one (per turn, for ``live``).
_ENDING = ("error_event", "drop", "close")


def check_faults(cassette: Any) -> None:
    """Check that each fault suits the cassette's kind, lies within it and is not repeated."""
    kind, seen = cassette.kind, {}
    for i, fault in enumerate(cassette.faults):
        where, turn = f"faults[{i}]", getattr(fault, "turn", None)
        at_byte = getattr(fault, "at_byte", None)
        if fault.fault not in _ALLOWED[kind]:
            raise ValueError(f"{where}: a {kind!r} cassette cannot hold a {fault.fault!r} fault")
        if kind == "generate" and turn is not None:
            raise ValueError(f"{where}: 'turn' is for live cassettes")
        if kind == "live" and at_byte is not None:
            raise ValueError(f"{where}: 'at_byte' is for generate cassettes")
        if isinstance(fault, SplitFault):
            key, position, limit = ("split", fault.chunk), fault.chunk, len(cassette.chunks) - 1
        else:
            group = "ending" if fault.fault in _ENDING else fault.fault
            key, position = (group, turn or 0), getattr(fault, "after", 0)
            if kind == "live":
                if (turn or 0) >= len(cassette.turns):
                    raise ValueError(f"{where}: turn {turn} does not exist")
                count = len(cassette.turns[turn or 0].messages)
            else:
                count = len(cassette.chunks)
            limit = count - 1 if at_byte is not None else count
        if key in seen:
            raise ValueError(f"{where}: repeats faults[{seen[key]}] at the same place")
        seen[key] = i
        if position > limit:
            raise ValueError(f"{where}: position {position} lies past the end (at most {limit})")

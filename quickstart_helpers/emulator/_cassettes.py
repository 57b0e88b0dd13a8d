"""Cassettes: recorded Gemini API exchanges that the emulator replays.

A cassette is one JSON file (any sub-folder of a cassette folder). Its ``kind``
selects the schema; unknown keys are refused everywhere, and ``format`` is the
version of the file format (:data:`FORMAT`).

A ``generate`` cassette answers one ``generateContent`` / ``streamGenerateContent``
request::

    {
      "format": 1,
      "name": "text_first_stream",
      "kind": "generate",
      "description": "What the cassette shows (optional).",
      "model": "gemini-3.8-flash",
      "request": {
        "contents": [{"role": "user", "parts": [{"text": "Explain streaming"}]}],
        "systemInstruction": {"parts": [{"text": "..."}]}
      },
      "chunks": [
        {"delay_ms": 420, "response": {"candidates": [...], "usageMetadata": {...}}},
        {"delay_ms": 90, "break": true}
      ]
    }

``response`` is one ``GenerateContentResponse`` exactly as the API sends it in an SSE
event (camelCase JSON); at load it is validated with the SDK's own model
(``google.genai.types.GenerateContentResponse``, which refuses unknown fields).
``delay_ms`` is the wait before the chunk in realtime pacing, in milliseconds. A chunk
with ``"break": true`` drops the connection there, to teach broken streams.

A ``generate`` cassette may record an error answer instead of chunks (record mode
captures the upstream's errors this way, so error paths replay)::

    "error": {"status": 429, "delay_ms": 180,
              "body": {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED"}}}

``status`` is the HTTP status (400-599); ``body`` the API's error JSON, sent as is.
A cassette has either ``chunks`` or ``error``, never both.

A chunk may also be an error event inside a stream (the API sends one when a stream
fails after it started; the SDK raises ``APIError``): ``{"delay_ms": 40, "error":
{"code": 500, "message": "...", "status": "INTERNAL"}}``, sent as ``{"error": {...}}``.

A ``live`` cassette (Live API) has ``setup`` and ``turns``; each turn answers one
client turn (its text ``input``) with server messages, validated as
``types.LiveServerMessage``. The last message of the last turn may be a close,
``{"delay_ms": 5, "close": {"code": 1011, "reason": "..."}}``: the session ends there
with that close code and reason. See :mod:`quickstart_helpers.emulator._live`.

A ``count_tokens`` cassette answers one ``countTokens`` request: ``model``,
``request`` (the countTokens body: ``{"contents": [...]}`` or
``{"generateContentRequest": {...}}``) and ``response`` (``{"totalTokens": N,
"cachedContentTokenCount", "promptTokensDetails"}``, strictly validated) or ``error``
(as above). Its key is
:func:`count_key`; without one, ``countTokens`` answers from a ``generate`` cassette's
``promptTokenCount``.

A ``models`` cassette adds Model JSON (as ``GET /{version}/models/{model}`` answers
it) to the emulator's model catalog: ``{"format": 1, "name": "...", "kind": "models",
"models": [{"name": "models/gemini-3.8-flash", ...}]}``.

Precedence: a :class:`CassetteStore` reads its folders in order. A cassette in a later
folder overrides one from an earlier folder that answers the same request (the same
:func:`request_key`, :func:`count_key` or :func:`interactions_request_key`) or has the
same name; two such cassettes
in the same folder tree are refused.

``generate`` and ``live`` cassettes take an optional ``faults`` list: directives that
reproduce what breaks streams in production (an HTTP error before the first chunk,
possibly only the first N times; an error event, a dropped connection or a close frame
after chunk or message N; chunks written in several TCP writes; ``goAway``). One
vocabulary serves both protocols; see :data:`Fault` and :mod:`quickstart_helpers.emulator._faults`::

    "faults": [
      {"fault": "http_error", "status": 503, "times": 2,
       "error": {"error": {"code": 503, "message": "...", "status": "UNAVAILABLE"}}},
      {"fault": "split", "chunk": 1, "at": [7, 8]}
    ]

An ``interactions`` cassette answers one ``POST /{version}/interactions`` (the
Interactions API): ``request`` is the create body (``input``, ``tools``,
``system_instruction``, ...), ``previous`` the name of the cassette whose interaction
the request continues (its ``previous_interaction_id``), ``events`` the SSE events'
JSON exactly as the API streams them (each with its ``event_id``; ``"break": true``
drops the connection there), and ``interaction`` the finished ``Interaction`` resource
(the non-streamed answer and what ``get`` returns). Events and the resource are
validated with the SDK's models, refusing unknown fields and variants; a
:class:`CassetteStore` does it when it first looks an interaction up, since importing
those models takes about half a second that most emulators never need. See
:mod:`quickstart_helpers.emulator._interactions`.

Matching: a request and a ``generate`` cassette match when their
:func:`request_key` is equal. The key holds the model (a ``models/`` prefix is
ignored), the ``contents`` (roles lower-cased, default ``user``; consecutive contents
of one role merged; adjacent text parts joined; thought parts skipped; inline data by
MIME type and SHA-256; function call and function response parts by name and
arguments), the ``systemInstruction``, ``tools``, ``toolConfig`` and the
``responseModalities`` (as a set; none means ``TEXT``), and the ``thinkingConfig`` when
one is given (thinking changes the answer's parts and its time to first chunk). Other
generation settings (temperature, ...) do not select a recording. Field names may be
camelCase or snake_case.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from .. import settings
from ..errors import CassetteError
from ._protocol import bare_model

__all__ = [
    "FORMAT",
    "Cassette",
    "CassetteStore",
    "Chunk",
    "CloseFault",
    "DropFault",
    "ErrorEventFault",
    "Fault",
    "CountTokensCassette",
    "GenerateCassette",
    "GoAwayFault",
    "HttpErrorFault",
    "InteractionEvent",
    "InteractionsCassette",
    "LiveAudio",
    "LiveCassette",
    "LiveClose",
    "LiveMessage",
    "LiveTurn",
    "ModelsCassette",
    "RecordedError",
    "SplitFault",
    "cassette_dirs",
    "cassette_key",
    "count_key",
    "count_request",
    "load_cassette",
    "normalize_contents",
    "parse_cassette",
    "HINT_CHARS",
    "closest_text",
    "interactions_request_key",
    "prompt_text",
    "request_key",
    "shipped_cassette_dir",
]

#: The cassette file format version this package reads and writes.
FORMAT = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _ErrorDetail(BaseModel):
    # The API's ``error`` object: code, message and status are required; other fields
    # (``details``) are kept as they are.
    model_config = ConfigDict(extra="allow")

    code: int
    message: str
    status: str = ""


class Chunk(_Strict):
    """One streamed chunk: a ``GenerateContentResponse`` and the delay before it.

    Attributes:
        delay_ms: Wait before the chunk in realtime pacing, in milliseconds.
        response: The chunk's JSON as the API sends it; None for a ``break`` or an
            ``error``.
        error: An error event inside the stream: the API's error object
            (``{"code", "message", "status", ...}``), sent as ``{"error": {...}}``.
        break_: Drop the connection here instead of sending a chunk (JSON ``"break"``).
    """

    delay_ms: int = Field(default=0, ge=0)
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    break_: bool = Field(default=False, alias="break")

    @model_validator(mode="after")
    def _one_of(self) -> Chunk:
        given = [self.response is not None, self.error is not None, self.break_]
        if sum(given) != 1:
            raise ValueError(
                'a chunk has either a "response" or "break": true (or an "error"), '
                "exactly one of them"
            )
        if self.error is not None:
            try:
                _ErrorDetail.model_validate(self.error)
            except ValidationError as exc:
                where = "; ".join(f"error.{_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"not the API's error object ({where})") from None
        return self

    def payload(self) -> dict[str, Any] | None:
        """Return the JSON the chunk sends: its response, ``{"error": ...}``, or None."""
        if self.error is not None:
            return {"error": self.error}
        return self.response


class _ErrorBody(_Strict):
    error: _ErrorDetail


class RecordedError(_Strict):
    """An error answer recorded in place of chunks: the HTTP status and the error JSON.

    Attributes:
        status: HTTP status code, 400 to 599.
        delay_ms: Wait before the answer in realtime pacing, in milliseconds.
        body: The API's error JSON, ``{"error": {"code", "message", "status", ...}}``,
            sent as is.
    """

    status: int = Field(ge=400, le=599)
    delay_ms: int = Field(default=0, ge=0)
    body: dict[str, Any]

    @model_validator(mode="after")
    def _api_error(self) -> RecordedError:
        try:
            _ErrorBody.model_validate(self.body)
        except ValidationError as exc:
            where = "; ".join(f"body.{_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"not the API's error JSON ({where})") from None
        return self


class LiveAudio(_Strict):
    """A slice of a cassette's WAV file, sent as one audio inline data part.

    Attributes:
        file: WAV file (16-bit mono PCM), relative to the cassette's folder.
        start: First frame of the slice.
        frames: Number of frames in the slice.
    """

    file: str
    start: int = Field(ge=0)
    frames: int = Field(gt=0)


class LiveClose(_Strict):
    """The server closing a Live API session: a WebSocket close code and its reason.

    Attributes:
        code: The close code, e.g. 1007 (invalid argument) or 1011 (internal error).
        reason: The close reason, at most 123 UTF-8 bytes (RFC 6455).
    """

    code: int = Field(ge=1000, le=4999)
    reason: str = ""

    @model_validator(mode="after")
    def _short_reason(self) -> LiveClose:
        if len(self.reason.encode("utf-8")) > 123:
            raise ValueError("a close reason holds at most 123 UTF-8 bytes")
        return self


class LiveMessage(_Strict):
    """One Live API server message (``serverContent``, ``goAway`` ...) and its delay.

    ``audio`` adds an ``inlineData`` part (``audio/pcm;rate=<Hz>``, base64 PCM read
    from a WAV file next to the cassette) to ``serverContent.modelTurn.parts``.
    ``"break": true`` drops the connection there instead of sending a message;
    ``close`` closes the session with a close code and reason (nothing else is sent).
    """

    delay_ms: int = Field(default=0, ge=0)
    message: dict[str, Any] = Field(default_factory=dict)
    audio: LiveAudio | None = None
    break_: bool = Field(default=False, alias="break")
    close: LiveClose | None = None

    @model_validator(mode="after")
    def _close_alone(self) -> LiveMessage:
        if self.close is not None and (self.message or self.audio or self.break_):
            raise ValueError('a "close" message has no "message", "audio" or "break"')
        return self


class LiveTurn(_Strict):
    """The server's answer to one client turn of a Live API session."""

    input: str
    messages: list[LiveMessage] = Field(min_length=1)


# -- fault directives ------------------------------------------------------------------


class ApiErrorDetail(_Strict):
    """The inside of the API's error JSON: ``code``, ``message``, ``status``."""

    code: int = Field(ge=400, le=599)
    message: str = Field(min_length=1)
    status: str = Field(pattern=r"^[A-Z_]+$")
    details: list[dict[str, Any]] | None = None


class ApiErrorBody(_Strict):
    """The API's error JSON, ``{"error": {"code", "message", "status"}}``."""

    error: ApiErrorDetail


class HttpErrorFault(_Strict):
    """Answer with an HTTP error before the first chunk (``generate`` only).

    Attributes:
        status: The HTTP status, e.g. 429 or 503; must equal ``error.error.code``.
        error: The body, the API's error JSON.
        times: Fail this many requests, then answer one with the chunks, and start over
            (counted per cassette and emulator, so "fails twice, then succeeds" shows a
            retry; a re-run sees the same). None: fail every time.
    """

    fault: Literal["http_error"]
    status: int = Field(ge=400, le=599)
    error: ApiErrorBody
    times: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _same_code(self) -> HttpErrorFault:
        if self.error.error.code != self.status:
            raise ValueError(
                f"error.error.code ({self.error.error.code}) must equal status ({self.status})"
            )
        return self


class ErrorEventFault(_Strict):
    """Send an ``{"error": {...}}`` SSE event after ``after`` chunks, then end the stream."""

    fault: Literal["error_event"]
    after: int = Field(ge=0)
    error: ApiErrorBody


class DropFault(_Strict):
    """Drop the connection after ``after`` chunks (``generate``) or messages of ``turn`` (``live``).

    Attributes:
        after: Chunks (or messages of the turn) sent whole before the drop.
        at_byte: ``generate`` only: also send this many bytes of the next chunk's SSE
            event first, so the connection breaks in the middle of a chunk.
        turn: ``live`` only: the index of the turn it happens in.
    """

    fault: Literal["drop"]
    after: int = Field(ge=0)
    at_byte: int | None = Field(default=None, ge=1)
    turn: int | None = Field(default=None, ge=0)


class SplitFault(_Strict):
    """Write chunk ``chunk``'s SSE event in several TCP writes, cut at byte offsets ``at``.

    Each piece is flushed and followed by a short pause, so the client reads them
    separately: an offset inside a multi-byte UTF-8 character splits the character
    across two reads.
    """

    fault: Literal["split"]
    chunk: int = Field(ge=0)
    at: list[int] = Field(min_length=1)

    @model_validator(mode="after")
    def _increasing(self) -> SplitFault:
        if self.at[0] < 1 or any(b <= a for a, b in zip(self.at, self.at[1:], strict=False)):
            raise ValueError("at must be byte offsets >= 1 in increasing order")
        return self


class CloseFault(_Strict):
    """``live`` only: close the WebSocket with ``code`` and ``reason`` after ``after`` messages
    of turn ``turn``."""

    fault: Literal["close"]
    turn: int = Field(default=0, ge=0)
    after: int = Field(ge=0)
    code: int = Field(ge=1000, le=4999)
    reason: str = ""

    @model_validator(mode="after")
    def _short_reason(self) -> CloseFault:
        if len(self.reason.encode("utf-8")) > 123:
            raise ValueError("a close reason holds at most 123 UTF-8 bytes")
        return self


class GoAwayFault(_Strict):
    """``live`` only: send ``{"goAway": {"timeLeft": ...}}`` after ``after`` messages of turn
    ``turn``.

    The turn goes on to its end; the emulator then takes no more turns on that
    connection and closes it (code 1000) once ``time_left`` has passed in realtime
    pacing, at once in fast pacing. Reconnect with the session resumption handle.
    """

    fault: Literal["go_away"]
    turn: int = Field(default=0, ge=0)
    after: int = Field(ge=0)
    time_left: str = Field(default="10s", pattern=r"^[0-9]+(\.[0-9]+)?s$")


#: Any fault directive; ``fault`` picks the model.
Fault = Annotated[
    HttpErrorFault | ErrorEventFault | DropFault | SplitFault | CloseFault | GoAwayFault,
    Field(discriminator="fault"),
]

_GENERATE_FAULTS = ("http_error", "error_event", "drop", "split")
_LIVE_FAULTS = ("drop", "close", "go_away")
#: Faults that end a stream; a cassette has at most one (per turn, for ``live``).
_ENDING = ("error_event", "drop", "close")


def _check_faults(
    cassette: GenerateCassette | LiveCassette, allowed: tuple[str, ...], count: int
) -> None:
    """Check that each fault suits the cassette's kind, lies within it and is not repeated."""
    seen: dict[tuple[str, int], int] = {}
    for i, fault in enumerate(cassette.faults):
        where = f"faults[{i}]"
        kind = getattr(cassette, "kind", "")
        if fault.fault not in allowed:
            raise ValueError(
                f"{where}: a {kind!r} cassette cannot hold a {fault.fault!r} fault "
                f"(allowed: {', '.join(allowed)})"
            )
        turn = getattr(fault, "turn", None)
        at_byte = getattr(fault, "at_byte", None)
        if kind == "generate" and turn is not None:
            raise ValueError(f"{where}: 'turn' is for live cassettes")
        if kind == "live" and at_byte is not None:
            raise ValueError(f"{where}: 'at_byte' is for generate cassettes")
        if isinstance(fault, SplitFault):
            key, position, limit = ("split", fault.chunk), fault.chunk, count - 1
        else:
            group = "ending" if fault.fault in _ENDING else fault.fault
            key, position = (group, turn or 0), getattr(fault, "after", 0)
            if isinstance(cassette, LiveCassette):
                if (turn or 0) >= len(cassette.turns):
                    raise ValueError(f"{where}: turn {turn} does not exist")
                count = len(cassette.turns[turn or 0].messages)
            limit = count - 1 if at_byte is not None else count
        if key in seen:
            raise ValueError(f"{where}: repeats faults[{seen[key]}] at the same place")
        seen[key] = i
        if position > limit:
            raise ValueError(f"{where}: position {position} lies past the end (at most {limit})")


class _Named(_Strict):
    format: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        """The file the cassette was loaded from, or None when built in memory."""
        return self._path


class _CassetteBase(_Named):
    model: str = Field(min_length=1)


class GenerateCassette(_CassetteBase):
    """A recorded ``generateContent`` / ``streamGenerateContent`` exchange."""

    kind: Literal["generate"]
    faults: list[Fault] = Field(default_factory=list)
    request: dict[str, Any]
    chunks: list[Chunk] = Field(default_factory=list)
    error: RecordedError | None = None
    #: The emulator's frame function of each framing (see ``_http.framed_chunks``), with
    #: the chunk list and length it was made for.
    _frames: dict[Any, tuple[Any, ...]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _chunks_or_error(self) -> GenerateCassette:
        if self.error is None and not self.chunks:
            raise ValueError('a generate cassette needs at least one chunk (or an "error")')
        if self.error is not None and self.chunks:
            raise ValueError('a generate cassette has "chunks" or an "error", not both')
        return self

    @model_validator(mode="after")
    def _faults_fit(self) -> GenerateCassette:
        _check_faults(self, _GENERATE_FAULTS, len(self.chunks))
        for fault in self.faults:
            if isinstance(fault, SplitFault) and self.chunks[fault.chunk].response is None:
                raise ValueError(f"split: chunks[{fault.chunk}] is a break, not a chunk")
        return self

    def request_key(self) -> str:
        """Return the :func:`request_key` of the recorded request."""
        return request_key(self.model, self.request)

    def matches(self, model: str, body: dict[str, Any]) -> bool:
        """Return whether a request (model from the URL, JSON body) is the recorded one."""
        return request_key(model, body) == self.request_key()


class LiveCassette(_CassetteBase):
    """A recorded Live API session: its setup and the server's answer to each turn."""

    kind: Literal["live"]
    faults: list[Fault] = Field(default_factory=list)
    setup: dict[str, Any] = Field(default_factory=dict)
    turns: list[LiveTurn] = Field(min_length=1)
    #: ``(setup, the SDK's LiveClientSetup of it)``, made by the emulator's first session.
    _setup_model: tuple[Any, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _faults_fit(self) -> LiveCassette:
        _check_faults(self, _LIVE_FAULTS, 0)
        return self

    @model_validator(mode="after")
    def _close_last(self) -> LiveCassette:
        for t, turn in enumerate(self.turns):
            for m, message in enumerate(turn.messages):
                last = t == len(self.turns) - 1 and m == len(turn.messages) - 1
                if message.close is not None and not last:
                    raise ValueError(
                        f'turns[{t}].messages[{m}]: a "close" ends the session, so it can '
                        "only be the last message of the last turn"
                    )
        return self


class CountTokensCassette(_CassetteBase):
    """A recorded ``countTokens`` exchange: the request and the API's answer (or error)."""

    kind: Literal["count_tokens"]
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    error: RecordedError | None = None

    @model_validator(mode="after")
    def _response_or_error(self) -> CountTokensCassette:
        if (self.response is None) == (self.error is None):
            raise ValueError('a count_tokens cassette has a "response" or an "error", one of them')
        return self


class _CountTokensJson(_Strict):
    # The API's countTokens answer (the SDK's CountTokensResponse lacks
    # promptTokensDetails, which the API sends): unknown fields are refused.
    totalTokens: int = Field(ge=0)
    cachedContentTokenCount: int | None = Field(default=None, ge=0)
    promptTokensDetails: list[dict[str, Any]] | None = None
    cacheTokensDetails: list[dict[str, Any]] | None = None


class _ModelJson(BaseModel):
    # The API's Model JSON: ``name`` is required; other fields are kept as they are.
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^models/[^/]+$")


class ModelsCassette(_Named):
    """Model JSON recorded from ``GET /{version}/models[/{model}]``, added to the catalog."""

    kind: Literal["models"]
    models: list[dict[str, Any]] = Field(min_length=1)

    @model_validator(mode="after")
    def _model_json(self) -> ModelsCassette:
        for i, model in enumerate(self.models):
            try:
                _ModelJson.model_validate(model)
            except ValidationError as exc:
                where = "; ".join(f"models[{i}].{_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"not the API's Model JSON ({where})") from None
        return self


class InteractionEvent(_Strict):
    """One Interactions API SSE event (its ``data:`` JSON) and the delay before it.

    Attributes:
        delay_ms: Wait before the event in realtime pacing, in milliseconds.
        event: The event's JSON as the API sends it (``event_type``, ``event_id``, ...);
            None for a ``break``.
        break_: Drop the connection here (JSON ``"break"``); only the stream of the
            ``create`` request breaks, a resumed stream goes on.
    """

    delay_ms: int = Field(default=0, ge=0)
    event: dict[str, Any] | None = None
    break_: bool = Field(default=False, alias="break")

    @model_validator(mode="after")
    def _one_of(self) -> InteractionEvent:
        if (self.event is None) == (not self.break_):
            raise ValueError('an event has either an "event" or "break": true, not both')
        return self


class InteractionsCassette(_CassetteBase):
    """A recorded Interactions API exchange: one ``interactions.create`` request."""

    kind: Literal["interactions"]
    previous: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    events: list[InteractionEvent] = Field(min_length=1)
    interaction: dict[str, Any]

    @property
    def interaction_id(self) -> str:
        """The recorded interaction's id."""
        return str(self.interaction.get("id", ""))

    def sent_events(self) -> list[dict[str, Any]]:
        """Return the recorded events, without the breaks."""
        return [e.event for e in self.events if e.event is not None]

    def request_key(self) -> str:
        """Return the :func:`interactions_request_key` of the recorded request."""
        return interactions_request_key(self.model, self.request, self.previous)


#: Any cassette model.
AnyCassette = (
    GenerateCassette | LiveCassette | CountTokensCassette | ModelsCassette | InteractionsCassette
)
#: Any cassette; ``kind`` picks the model.
Cassette = Annotated[AnyCassette, Field(discriminator="kind")]

_ADAPTER: TypeAdapter[AnyCassette] = TypeAdapter(Cassette)


def _loc(loc: Iterable[Any]) -> str:
    text = ""
    for item in loc:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else str(item))
    return text or "(top level)"


def _interactions_errors(cassette: InteractionsCassette) -> list[str]:
    """Check an ``interactions`` cassette with the SDK's models and for consistency."""
    from ._interactions_schema import event_problems, interaction_problems

    problems = interaction_problems(cassette.interaction, "interaction")
    if not cassette.interaction_id:
        problems.append("interaction.id: the recorded interaction needs its id")
    seen: set[str] = set()
    for i, item in enumerate(cassette.events):
        if item.event is None:
            continue
        where = f"events[{i}].event"
        problems += event_problems(item.event, where)
        event_id = item.event.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            problems.append(f"{where}.event_id: every event needs an event_id (to resume)")
        elif event_id in seen:
            problems.append(f"{where}.event_id: {event_id!r} is used twice")
        else:
            seen.add(event_id)
    events = cassette.sent_events()
    first = events[0] if events else {}
    if first.get("event_type") != "interaction.created":
        problems.append("events[0].event: the first event must be interaction.created")
    elif (first.get("interaction") or {}).get("id") != cassette.interaction_id:
        problems.append("events[0].event.interaction.id: differs from interaction.id")
    return problems


def _sdk_errors(cassette: AnyCassette, *, interactions: bool = True) -> list[str]:
    """Check recorded responses with the SDK's models; return ``path: problem`` lines.

    ``interactions=False`` leaves an ``interactions`` cassette unchecked (see
    :meth:`CassetteStore.check_interactions`).
    """
    from google.genai import types

    problems: list[str] = []

    def check(model: type[BaseModel], data: dict[str, Any], where: str) -> None:
        try:
            model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(f"{where}.{_loc(err['loc'])}: {err['msg']}")

    if isinstance(cassette, InteractionsCassette):
        return _interactions_errors(cassette) if interactions else []
    if isinstance(cassette, GenerateCassette):
        for i, chunk in enumerate(cassette.chunks):
            response = chunk.response
            if response is not None and "serviceTier" in (response.get("usageMetadata") or {}):
                # The API sends it (tests/wire/generate/); the SDK has no field for it yet
                # and drops it, as it drops any field it does not know.
                usage = {k: v for k, v in response["usageMetadata"].items() if k != "serviceTier"}
                response = {**response, "usageMetadata": usage}
            if response is not None:
                check(types.GenerateContentResponse, response, f"chunks[{i}].response")
    elif isinstance(cassette, CountTokensCassette):
        if cassette.response is not None:
            check(_CountTokensJson, cassette.response, "response")
            for i, detail in enumerate(cassette.response.get("promptTokensDetails") or []):
                if isinstance(detail, dict):
                    check(types.ModalityTokenCount, detail, f"response.promptTokensDetails[{i}]")
    elif isinstance(cassette, LiveCassette):
        for t, turn in enumerate(cassette.turns):
            for m, message in enumerate(turn.messages):
                if message.message:
                    check(
                        types.LiveServerMessage,
                        message.message,
                        f"turns[{t}].messages[{m}].message",
                    )
    return problems


def parse_cassette(data: Any, source: str = "<memory>") -> AnyCassette:
    """Validate one cassette's JSON (already parsed) and return the model.

    Args:
        data: The cassette as a dict.
        source: Where it came from, for messages (a file name).

    Raises:
        CassetteError: Not a valid cassette; the message names ``source`` and the path
            of every bad field (e.g. ``chunks[2].response.candidates[0].content.partz``).
    """
    return _parse(data, source, interactions=True)


def _parse(data: Any, source: str, *, interactions: bool) -> AnyCassette:
    try:
        cassette = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        lines = [f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CassetteError(f"{source} is not a valid cassette:\n  " + "\n  ".join(lines)) from None
    _raise_sdk_problems(source, _sdk_errors(cassette, interactions=interactions))
    return cassette


def _raise_sdk_problems(source: str, problems: list[str]) -> None:
    if problems:
        raise CassetteError(
            f"{source} is not a valid cassette (the SDK's models refuse it):\n  "
            + "\n  ".join(problems)
        )


def load_cassette(path: str | os.PathLike[str]) -> AnyCassette:
    """Read and validate one cassette file.

    Raises:
        CassetteError: The file is not JSON or not a valid cassette (file and field named).
        OSError: It cannot be read.
    """
    return _load(path, interactions=True)


def _load(path: str | os.PathLike[str], *, interactions: bool) -> AnyCassette:
    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CassetteError(f"{path} is not valid JSON: {exc}") from None
    cassette = _parse(data, str(path), interactions=interactions)
    cassette._path = path
    return cassette


# -- matching --------------------------------------------------------------------------

_CAMEL = re.compile(r"_([a-z0-9])")
#: Keys whose values are user data (function arguments, schemas): left as they are.
_OPAQUE = frozenset({"args", "response", "parameters", "parametersJsonSchema", "responseSchema"})


def _camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = key
            if isinstance(key, str) and "_" in key:  # the SDKs send camelCase: no work
                name = _CAMEL.sub(lambda m: m.group(1).upper(), key)
            out[name] = item if name in _OPAQUE else _camel_keys(item)
        return out
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def _parts_of(content: Any) -> list[Any]:
    parts = content.get("parts")
    if isinstance(parts, dict):  # the API also accepts one part object
        return [parts]
    return parts if isinstance(parts, list) else []


def normalize_contents(contents: Any) -> list[dict[str, Any]]:
    """Reduce ``contents`` to what identifies a request.

    Args:
        contents: A list of ``Content`` dicts as sent on the wire (camelCase or
            snake_case), one ``Content`` dict, or None.

    Returns:
        A list of ``{"role", "parts"}`` dicts: roles lower-cased (default ``user``);
        text parts (thought parts skipped); inline data as its MIME type and the
        SHA-256 of its base64 text; file data as MIME type and URI; function calls and
        responses by name and arguments. Consecutive contents of the same role are
        merged and adjacent text parts joined, so a streamed answer sent back as one
        content per chunk (as SDK chat sessions do) equals the same answer joined.
    """
    return _normalize_camel_contents(_camel_keys(contents))


def _normalize_camel_contents(contents: Any) -> list[dict[str, Any]]:
    """:func:`normalize_contents` of contents whose keys are camelCase already."""
    if isinstance(contents, dict):
        contents = [contents]
    result: list[dict[str, Any]] = []
    for content in contents or []:
        if not isinstance(content, dict):
            continue
        parts: list[dict[str, Any]] = []
        for part in _parts_of(content):
            if not isinstance(part, dict):
                continue
            if "text" in part and not part.get("thought"):
                if parts and "text" in parts[-1]:
                    parts[-1] = {"text": parts[-1]["text"] + str(part["text"])}
                else:
                    parts.append({"text": str(part["text"])})
            if isinstance(part.get("inlineData"), dict):
                inline = part["inlineData"]
                digest = hashlib.sha256(str(inline.get("data", "")).encode()).hexdigest()
                parts.append({"inlineData": [inline.get("mimeType"), digest]})
            if isinstance(part.get("fileData"), dict):
                data = part["fileData"]
                parts.append({"fileData": [data.get("mimeType"), data.get("fileUri")]})
            if isinstance(part.get("functionCall"), dict):
                call = part["functionCall"]
                parts.append({"functionCall": [call.get("name"), call.get("args") or {}]})
            if isinstance(part.get("functionResponse"), dict):
                answer = part["functionResponse"]
                parts.append(
                    {"functionResponse": [answer.get("name"), answer.get("response") or {}]}
                )
        role = str(content.get("role") or "user").lower()
        if result and result[-1]["role"] == role:
            previous = result[-1]["parts"]
            if previous and parts and "text" in previous[-1] and "text" in parts[0]:
                previous[-1] = {"text": previous[-1]["text"] + parts.pop(0)["text"]}
            previous.extend(parts)
        else:
            result.append({"role": role, "parts": parts})
    return result


def request_key(model: str, body: dict[str, Any]) -> str:
    """Return the key that identifies a ``generateContent`` request, as canonical JSON.

    Both matching and the duplicate check of :class:`CassetteStore` use it, so two
    requests with equal keys get the same recording. See the module docstring for
    what the key holds.

    Args:
        model: Model name, with or without ``models/``.
        body: The request's JSON body (camelCase or snake_case).
    """
    body = _camel_keys(body if isinstance(body, dict) else {})
    config = body.get("generationConfig") if isinstance(body.get("generationConfig"), dict) else {}
    modalities = config.get("responseModalities") or []
    instruction = body.get("systemInstruction")
    thinking = (
        config.get("thinkingConfig") if isinstance(config.get("thinkingConfig"), dict) else {}
    )
    key = {
        "model": bare_model(model),
        "contents": _normalize_camel_contents(body.get("contents")),
        "systemInstruction": (
            _normalize_camel_contents([instruction])[0]["parts"] if instruction else []
        ),
        "tools": body.get("tools") or [],
        "toolConfig": body.get("toolConfig") or {},
        **({"thinkingConfig": thinking} if thinking else {}),
        "responseModalities": sorted({str(m).upper() for m in modalities} or {"TEXT"})
        if isinstance(modalities, list)
        else modalities,
    }
    return json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _digest_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: hashlib.sha256(str(v).encode()).hexdigest() if k == "data" else _digest_data(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_digest_data(v) for v in value]
    return value


def interactions_request_key(model: str, body: dict[str, Any], previous: str | None) -> str:
    """Return the key that identifies an ``interactions.create`` request, as canonical JSON.

    The key holds the model (without ``models/``), ``previous`` (the name of the
    cassette that recorded the interaction named by ``previous_interaction_id``, or
    None), the ``input`` (a string is one text content; base64 ``data`` by SHA-256),
    ``system_instruction``, ``tools``, ``response_format`` and ``response_modalities``
    (as a set; none means ``text``). Streaming, storage and other generation settings
    do not select a recording.

    Args:
        model: Model name, with or without ``models/``.
        body: The request's JSON body (snake_case, as the SDK sends it).
        previous: Name of the cassette the request continues, or None.
    """
    body = body if isinstance(body, dict) else {}
    given = body.get("input")
    items = [given] if isinstance(given, str | dict) else given or []
    items = [{"type": "text", "text": i} if isinstance(i, str) else i for i in items]
    modalities = body.get("response_modalities") or []
    key = {
        "kind": "interactions",
        "model": bare_model(model),
        "previous": previous,
        "input": _digest_data(items),
        "system_instruction": body.get("system_instruction") or "",
        "tools": body.get("tools") or [],
        "response_format": body.get("response_format"),
        "response_modalities": sorted({str(m).lower() for m in modalities} or {"text"})
        if isinstance(modalities, list)
        else modalities,
    }
    return json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def prompt_text(contents: Any) -> str:
    """Return the text of the last user turn in ``contents`` (for messages)."""
    for content in reversed(normalize_contents(contents)):
        if content["role"] == "user":
            return " ".join(p["text"] for p in content["parts"] if "text" in p)
    return ""


#: The request fields that decide a token count.
_COUNTED = ("contents", "systemInstruction", "system_instruction", "tools", "toolConfig")


def count_request(body: Any) -> dict[str, Any]:
    """Return the generate request a ``countTokens`` body counts.

    Args:
        body: ``{"contents": [...]}`` or ``{"generateContentRequest": {...}}``
            (snake_case too).
    """
    body = body if isinstance(body, dict) else {}
    inner = body.get("generateContentRequest") or body.get("generate_content_request")
    return inner if isinstance(inner, dict) else {"contents": body.get("contents")}


def count_key(model: str, request: dict[str, Any]) -> str:
    """Return the key of a token count: :func:`request_key` of the counted fields only.

    Args:
        model: Model name, with or without ``models/``.
        request: A generate request (see :func:`count_request`): its ``contents``,
            system instruction, tools and tool config decide the count.
    """
    subset = {k: v for k, v in request.items() if k in _COUNTED}
    return request_key(model, subset)


def cassette_key(cassette: AnyCassette) -> str | None:
    """Return the request key a cassette answers (kind first), or None for none.

    ``generate``: ``"generate "`` + :func:`request_key`; ``count_tokens``:
    ``"count_tokens "`` + :func:`count_key`; ``interactions``: ``"interactions "`` +
    :func:`interactions_request_key`. ``live`` and ``models`` cassettes answer no single
    request (None).
    """
    if isinstance(cassette, GenerateCassette):
        return "generate " + cassette.request_key()
    if isinstance(cassette, CountTokensCassette):
        return "count_tokens " + count_key(cassette.model, count_request(cassette.request))
    if isinstance(cassette, InteractionsCassette):
        return "interactions " + cassette.request_key()
    return None


#: Characters of each prompt compared when looking for the closest recording (the
#: hint in a "no cassette" error): the search takes the same short time however long
#: the unmatched prompt is.
HINT_CHARS = 2000


def closest_text(wanted: str, texts: Sequence[str]) -> int | None:
    """Return the index of the text most like ``wanted`` (first wins ties), or None.

    Only the first :data:`HINT_CHARS` characters of each are compared (difflib), so the
    time is bounded by the number of texts, not by their length.
    """
    head = wanted[:HINT_CHARS]
    best, best_ratio = None, -1.0
    for index, text in enumerate(texts):
        ratio = difflib.SequenceMatcher(None, head, text[:HINT_CHARS]).ratio()
        if ratio > best_ratio:
            best, best_ratio = index, ratio
    return best


# -- folders and the store -------------------------------------------------------------


def shipped_cassette_dir() -> Path:
    """Return the folder of the cassettes shipped with the package.

    In a source checkout that is ``assets/cassettes/``; in an installed wheel the same
    files live inside the package (``quickstart_helpers/assets/cassettes``), found with
    ``importlib.resources``.
    """
    packaged = resources.files("quickstart_helpers") / "assets" / "cassettes"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "assets" / "cassettes"


def cassette_dirs() -> list[Path]:
    """Return the default cassette folders: the shipped ones, then ``$QUICKSTART_CASSETTES``."""
    return [shipped_cassette_dir(), *settings.extra_cassette_dirs()]


class CassetteStore:
    """All cassettes found under one or more folders, indexed by request key.

    Args:
        folders: Folders searched recursively for ``*.json`` cassettes, in order.
            Defaults to :func:`cassette_dirs` (shipped, then ``$QUICKSTART_CASSETTES``).
            A folder that does not exist holds no cassettes; a file reached through two
            listed folders is read once.

    Precedence: a cassette from a later folder overrides one from an earlier folder
    that answers the same request (:func:`cassette_key`) or has the same name, so a
    folder of your own (``$QUICKSTART_CASSETTES``, a test's folder) can re-record a
    shipped request. :attr:`overridden` lists what was set aside.

    Raises:
        CassetteError: A file is not a valid cassette, or two cassettes in the same
            folder tree share a name or answer the same request. The SDK's models check
            ``interactions`` cassettes later, in :meth:`check_interactions`.
    """

    def __init__(self, folders: Iterable[str | os.PathLike[str]] | None = None) -> None:
        self.folders = [Path(f) for f in (cassette_dirs() if folders is None else folders)]
        self.cassettes: list[AnyCassette] = []
        #: ``(set aside, overriding)`` pairs, in load order.
        self.overridden: list[tuple[AnyCassette, AnyCassette]] = []
        self._by_key: dict[str, AnyCassette] = {}
        self._folder: dict[str, int | None] = {}
        #: Loaded ``interactions`` cassettes not yet checked with the SDK's models.
        self._unchecked: list[InteractionsCassette] = []
        self._checking = threading.Lock()
        seen: set[Path] = set()
        for index, folder in enumerate(self.folders):
            for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
                real = path.resolve()
                if real not in seen:
                    seen.add(real)
                    cassette = _load(path, interactions=False)
                    if isinstance(cassette, InteractionsCassette):
                        self._unchecked.append(cassette)
                    self.add(cassette, folder=index)

    def check_interactions(self) -> None:
        """Check the loaded ``interactions`` cassettes with the SDK's models, once.

        The store reads them without that check, which imports the SDK's Interactions
        models (about half a second), and makes it here: on the first
        :meth:`find_interaction`, or earlier when called (the emulator calls it off its
        event loop before it answers its first Interactions API request). Safe to call
        from several threads.

        Raises:
            CassetteError: A cassette the SDK's models refuse (it stays unchecked, so
                every later call raises again).
        """
        with self._checking:
            while self._unchecked:
                cassette = self._unchecked[0]
                _raise_sdk_problems(str(cassette.path), _interactions_errors(cassette))
                self._unchecked.pop(0)

    def add(self, cassette: AnyCassette, *, folder: int | None = None) -> None:
        """Add one cassette (loaded or built in memory).

        Args:
            cassette: The cassette.
            folder: Index of the folder it comes from in :attr:`folders`; it overrides
                cassettes of earlier folders. None (built in memory) overrides nothing.

        Raises:
            CassetteError: Its name is taken, or a cassette already answers the same
                request, and the other cassette is not from an earlier folder.
        """
        key = cassette_key(cassette)
        for other in list(self.cassettes):
            same_name = other.name == cassette.name
            if not same_name and (key is None or cassette_key(other) != key):
                continue
            earlier = self._folder.get(other.name)
            if folder is not None and earlier is not None and earlier < folder:
                self._remove(other)
                self.overridden.append((other, cassette))
                continue
            if same_name:
                raise CassetteError(
                    f"Cassette name {cassette.name!r} is used by {other.path} and "
                    f"{cassette.path}; names must be unique within a folder (a later "
                    "folder overrides an earlier one)."
                )
            raise CassetteError(
                f"Cassettes {other.name!r} ({other.path}) and {cassette.name!r} "
                f"({cassette.path}) answer the same request; remove one of them (within a "
                "folder a request has one cassette; a later folder overrides an earlier one)."
            )
        if key is not None:
            self._by_key[key] = cassette
        self._folder[cassette.name] = folder
        self.cassettes.append(cassette)

    def _remove(self, cassette: AnyCassette) -> None:
        self.cassettes.remove(cassette)
        self._folder.pop(cassette.name, None)
        key = cassette_key(cassette)
        if key is not None and self._by_key.get(key) is cassette:
            del self._by_key[key]

    def put(self, cassette: AnyCassette) -> None:
        """Add a cassette, replacing one with the same name or request.

        Record mode uses it for what it has just written.
        """
        key = cassette_key(cassette)
        for other in list(self.cassettes):
            if other.name == cassette.name or (key is not None and cassette_key(other) == key):
                self._remove(other)
        self.add(cassette)

    def find_key(self, key: str) -> AnyCassette | None:
        """Return the cassette stored under a :func:`cassette_key`, or None."""
        if key.startswith("interactions "):
            self.check_interactions()
        return self._by_key.get(key)

    def find_count(self, model: str, body: dict[str, Any]) -> CountTokensCassette | None:
        """Return the ``count_tokens`` cassette for a ``countTokens`` body, or None."""
        found = self._by_key.get("count_tokens " + count_key(model, count_request(body)))
        return found if isinstance(found, CountTokensCassette) else None

    def models(self) -> list[dict[str, Any]]:
        """Return the Model JSON of every ``models`` cassette (a later one wins), by name."""
        found: dict[str, dict[str, Any]] = {}
        for cassette in self.cassettes:
            if isinstance(cassette, ModelsCassette):
                for model in cassette.models:
                    found[bare_model(model["name"])] = model
        return [found[name] for name in sorted(found)]

    def find(
        self, model: str, body: dict[str, Any], *, key: str | None = None
    ) -> GenerateCassette | None:
        """Return the ``generate`` cassette recorded for this request, or None.

        Args:
            model: The request's model.
            body: The request's JSON body.
            key: ``request_key(model, body)`` when the caller has it already.
        """
        found = self._by_key.get("generate " + (key or request_key(model, body)))
        return found if isinstance(found, GenerateCassette) else None

    def find_interaction(
        self, model: str, body: dict[str, Any], previous: str | None
    ) -> InteractionsCassette | None:
        """Return the ``interactions`` cassette recorded for this create request, or None.

        Args:
            model: The request's model.
            body: The create request's JSON body.
            previous: Name of the cassette of the interaction it continues, or None.

        Raises:
            CassetteError: An ``interactions`` cassette the SDK's models refuse (see
                :meth:`check_interactions`).
        """
        self.check_interactions()
        found = self._by_key.get("interactions " + interactions_request_key(model, body, previous))
        return found if isinstance(found, InteractionsCassette) else None

    def closest(self, model: str, body: dict[str, Any]) -> GenerateCassette | None:
        """Return the ``generate`` cassette whose prompt is most like this one's.

        Cassettes for the same model rank first; among them, the closest prompt by
        :func:`closest_text` (the first :data:`HINT_CHARS` characters are compared, so
        a long prompt costs no more than a short one). Safe to call from another
        thread while the store is in use.
        """
        wanted = prompt_text(body.get("contents"))
        candidates = [c for c in list(self.cassettes) if isinstance(c, GenerateCassette)]
        same_model = [c for c in candidates if bare_model(c.model) == bare_model(model)]
        candidates = same_model or candidates
        index = closest_text(wanted, [prompt_text(c.request.get("contents")) for c in candidates])
        return None if index is None else candidates[index]

    def live(self, model: str) -> list[LiveCassette]:
        """Return the ``live`` cassettes recorded for ``model``."""
        return [
            c
            for c in self.cassettes
            if isinstance(c, LiveCassette) and bare_model(c.model) == bare_model(model)
        ]

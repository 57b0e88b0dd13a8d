"""The cassette file format: one pydantic model per kind, read by replay and written by
record mode and the authoring scripts.

A cassette is one JSON file (any sub-folder of a cassette folder); ``kind`` picks the
model, ``format`` is the file format's version (:data:`FORMAT`) and unknown keys are
refused everywhere. Recorded answers are checked with the SDK's own models
(``google.genai.types``), which refuse unknown fields. ``delay_ms`` is always the wait
before an item in realtime pacing, in milliseconds.

- ``generate`` answers one ``generateContent`` / ``streamGenerateContent`` request:
  ``request`` (the JSON body) and ``chunks`` (each a ``GenerateContentResponse`` as the
  API sends it in an SSE event, an ``{"error": ...}`` event inside the stream, or
  ``"break": true``, the connection dropped there), or instead of chunks ``error``,
  the HTTP status and the API's error JSON sent before any chunk.
- ``live`` is a Live API session: ``setup`` and ``turns``, each the server's messages
  (``types.LiveServerMessage``) answering one client turn (its text ``input``); audio
  is a slice of a WAV file beside the cassette; the last message may be a ``close``
  (code and reason). See :mod:`._live`.
- ``count_tokens`` answers one ``countTokens`` request (``response`` or ``error``);
  without one, ``countTokens`` answers from a ``generate`` cassette's
  ``promptTokenCount``.
- ``models`` adds Model JSON (as ``GET /{version}/models/{model}`` answers it) to the
  emulator's catalog.
- ``interactions`` answers one ``POST /{version}/interactions``: the create body,
  ``previous`` (the cassette whose interaction it continues), the SSE ``events`` (each
  with its ``event_id``; ``"break": true`` drops the connection) and the finished
  ``interaction``. The SDK's Interactions models take half a second to import, so
  :class:`~._store.CassetteStore` checks these cassettes when first asked for one.

``generate`` and ``live`` cassettes take an optional ``faults`` list, directives that
reproduce what breaks streams in production (:data:`Fault`, carried out by
:mod:`._faults`)::

    "faults": [{"fault": "http_error", "status": 503, "times": 2,
                "error": {"error": {"code": 503, "message": "...", "status": "UNAVAILABLE"}}},
               {"fault": "split", "chunk": 1, "at": [7, 8]}]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError
from pydantic import model_validator as after

from ..errors import CassetteError

#: The cassette file format version this package reads and writes.
FORMAT = 1

_after = after(mode="after")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ApiErrorDetail(_Strict):
    """The inside of the API's error JSON: ``code``, ``message``, ``status``, ``details``."""

    code: int = Field(ge=400, le=599)
    message: str = Field(min_length=1)
    status: str = Field(pattern=r"^[A-Z_]+$")
    details: list[dict[str, Any]] | None = None


class ApiErrorBody(_Strict):
    """The API's error JSON, ``{"error": {"code", "message", "status"}}``."""

    error: ApiErrorDetail


class _ErrorDetail(BaseModel):
    # A recorded error object: code, message and status; other fields kept as they are.
    model_config = ConfigDict(extra="allow")
    code: int
    message: str
    status: str = ""


class _ErrorBody(_Strict):
    error: _ErrorDetail


def _api_error(value: dict[str, Any], model: type[BaseModel], where: str) -> None:
    try:
        model.model_validate(value)
    except ValidationError as exc:
        raise ValueError(f"not the API's error JSON ({_problems(exc, where)})") from None


class Chunk(_Strict):
    """One streamed chunk: exactly one of ``response`` (the chunk's JSON), ``error`` (an
    error event inside the stream, sent as ``{"error": {...}}``) or ``break`` (drop the
    connection here)."""

    delay_ms: int = Field(default=0, ge=0)
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    break_: bool = Field(default=False, alias="break")

    @_after
    def _one_of(self) -> Chunk:
        if [self.response is not None, self.error is not None, self.break_].count(True) != 1:
            raise ValueError('a chunk has exactly one of "response", "error" or "break": true')
        if self.error is not None:
            _api_error(self.error, _ErrorDetail, "error")
        return self

    def payload(self) -> dict[str, Any] | None:
        """Return the JSON the chunk sends: its response, ``{"error": ...}``, or None."""
        return {"error": self.error} if self.error is not None else self.response


class RecordedError(_Strict):
    """An error answer in place of chunks: HTTP ``status`` (400-599) and ``body``, the
    API's error JSON sent as is."""

    status: int = Field(ge=400, le=599)
    delay_ms: int = Field(default=0, ge=0)
    body: dict[str, Any]

    @_after
    def _api_body(self) -> RecordedError:
        _api_error(self.body, _ErrorBody, "body")
        return self


class LiveAudio(_Strict):
    """A slice of a WAV file (16-bit mono PCM, relative to the cassette's folder): ``start``
    and ``frames``, sent as one ``audio/pcm;rate=<Hz>`` inline data part."""

    file: str
    start: int = Field(ge=0)
    frames: int = Field(gt=0)


class LiveClose(_Strict):
    """The server closing a Live API session: close ``code`` (e.g. 1007, 1011) and
    ``reason`` (at most 123 UTF-8 bytes, RFC 6455)."""

    code: int = Field(ge=1000, le=4999)
    reason: str = ""

    @_after
    def _short_reason(self) -> LiveClose:
        if len(self.reason.encode("utf-8")) > 123:
            raise ValueError("a close reason holds at most 123 UTF-8 bytes")
        return self


class LiveMessage(_Strict):
    """One Live API server ``message`` and its delay; ``audio`` adds an inline data part to
    ``serverContent.modelTurn.parts``; ``break`` drops the connection; ``close`` (alone)
    closes the session."""

    delay_ms: int = Field(default=0, ge=0)
    message: dict[str, Any] = Field(default_factory=dict)
    audio: LiveAudio | None = None
    break_: bool = Field(default=False, alias="break")
    close: LiveClose | None = None

    @_after
    def _close_alone(self) -> LiveMessage:
        if self.close is not None and (self.message or self.audio or self.break_):
            raise ValueError('a "close" message has no "message", "audio" or "break"')
        return self


class LiveTurn(_Strict):
    """The server's answer to one client turn (its text ``input``) of a Live API session."""

    input: str
    messages: list[LiveMessage] = Field(min_length=1)


# -- fault directives ------------------------------------------------------------------


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


class CloseFault(LiveClose):
    """``live``: close the WebSocket with ``code`` and ``reason`` after ``after`` messages
    of turn ``turn``."""

    fault: Literal["close"]
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


def _check_faults(cassette: GenerateCassette | LiveCassette) -> None:
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
            if isinstance(cassette, LiveCassette):
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


# -- the cassettes -----------------------------------------------------------------------


class _Named(_Strict):
    format: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: str
    description: str = ""
    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        """The file the cassette was loaded from (or written to), None when in memory."""
        return self._path

    @property
    def faulty(self) -> bool:
        """Whether it records a failure on purpose (faults, an error, a break, a close, or
        a file under a ``faults/`` folder): never offered as the nearest recording."""
        items = [*getattr(self, "chunks", []), *getattr(self, "events", [])]
        items += [m for t in getattr(self, "turns", []) for m in t.messages]
        return bool(
            getattr(self, "faults", None)
            or getattr(self, "error", None)
            or any(
                i.break_ or getattr(i, "error", None) or getattr(i, "close", None) for i in items
            )
            or (self._path is not None and "faults" in self._path.parent.parts)
        )


class _CassetteBase(_Named):
    model: str = Field(min_length=1)


class GenerateCassette(_CassetteBase):
    """A recorded ``generateContent`` / ``streamGenerateContent`` exchange."""

    kind: Literal["generate"] = "generate"
    faults: list[Fault] = Field(default_factory=list)
    request: dict[str, Any]
    chunks: list[Chunk] = Field(default_factory=list)
    error: RecordedError | None = None
    #: ``_http.framed_chunks``'s rendered events, per framing.
    _frames: dict[Any, tuple[Any, ...]] = PrivateAttr(default_factory=dict)

    @_after
    def _fits(self) -> GenerateCassette:
        if (self.error is None) == (not self.chunks):
            raise ValueError(
                'a generate cassette has "chunks" or an "error", not both (at least one chunk)'
            )
        _check_faults(self)
        for fault in self.faults:
            if isinstance(fault, SplitFault) and self.chunks[fault.chunk].response is None:
                raise ValueError(f"split: chunks[{fault.chunk}] is a break, not a chunk")
        return self


class LiveCassette(_CassetteBase):
    """A recorded Live API session: its setup and the server's answer to each turn."""

    kind: Literal["live"] = "live"
    faults: list[Fault] = Field(default_factory=list)
    setup: dict[str, Any] = Field(default_factory=dict)
    turns: list[LiveTurn] = Field(min_length=1)
    #: ``(setup, the SDK's LiveClientSetup of it)``, made by ``_live``'s first session.
    _setup_model: tuple[Any, Any] | None = PrivateAttr(default=None)

    @_after
    def _fits(self) -> LiveCassette:
        _check_faults(self)
        messages = [
            (t, m, x) for t, turn in enumerate(self.turns) for m, x in enumerate(turn.messages)
        ]
        for t, m, message in messages[:-1]:
            if message.close is not None:
                where = f"turns[{t}].messages[{m}]"
                raise ValueError(
                    f'{where}: a "close" can only be the last message of the last turn'
                )
        return self


class CountTokensCassette(_CassetteBase):
    """A recorded ``countTokens`` exchange: the request and the API's answer (or error)."""

    kind: Literal["count_tokens"] = "count_tokens"
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    error: RecordedError | None = None

    @_after
    def _one_of(self) -> CountTokensCassette:
        if (self.response is None) == (self.error is None):
            raise ValueError('a count_tokens cassette has a "response" or an "error", one of them')
        return self


class _CountTokensJson(_Strict):
    # The API's countTokens answer (the SDK's CountTokensResponse lacks
    # promptTokensDetails, which the API sends).
    totalTokens: int = Field(ge=0)
    cachedContentTokenCount: int | None = Field(default=None, ge=0)
    promptTokensDetails: list[dict[str, Any]] | None = None
    cacheTokensDetails: list[dict[str, Any]] | None = None


class _ModelJson(BaseModel):
    model_config = ConfigDict(extra="allow")  # the API's Model JSON, kept as it is
    name: str = Field(pattern=r"^models/[^/]+$")


class ModelsCassette(_Named):
    """Model JSON recorded from ``GET /{version}/models[/{model}]``, added to the catalog."""

    kind: Literal["models"] = "models"
    models: list[dict[str, Any]] = Field(min_length=1)

    @_after
    def _model_json(self) -> ModelsCassette:
        for i, model in enumerate(self.models):
            try:
                _ModelJson.model_validate(model)
            except ValidationError as exc:
                where = _problems(exc, f"models[{i}]")
                raise ValueError(f"not the API's Model JSON ({where})") from None
        return self


class InteractionEvent(_Strict):
    """One Interactions API SSE event's JSON (``event``) and its delay, or ``break``: drop
    the create request's connection here (a resumed stream goes on)."""

    delay_ms: int = Field(default=0, ge=0)
    event: dict[str, Any] | None = None
    break_: bool = Field(default=False, alias="break")

    @_after
    def _one_of(self) -> InteractionEvent:
        if (self.event is None) == (not self.break_):
            raise ValueError('an event has either an "event" or "break": true, not both')
        return self


class InteractionsCassette(_CassetteBase):
    """A recorded Interactions API exchange: one ``interactions.create`` request."""

    kind: Literal["interactions"] = "interactions"
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


def _problems(exc: ValidationError, where: str = "") -> str:
    return "; ".join(
        f"{where}{'.' if where else ''}{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()
    )


def interactions_problems(cassette: InteractionsCassette) -> list[str]:
    """Check an ``interactions`` cassette with the SDK's models and for consistency."""
    from ._interactions_schema import event_problems, interaction_problems

    problems = interaction_problems(cassette.interaction, "interaction")
    if not cassette.interaction_id:
        problems.append("interaction.id: the recorded interaction needs its id")
    seen: set[str] = set()
    for i, item in enumerate(cassette.events):
        where, event_id = f"events[{i}].event", (item.event or {}).get("event_id")
        if item.event is None:
            continue
        problems += event_problems(item.event, where)
        if not isinstance(event_id, str) or not event_id:
            problems.append(f"{where}.event_id: every event needs an event_id (to resume)")
        elif event_id in seen:
            problems.append(f"{where}.event_id: {event_id!r} is used twice")
        seen.add(str(event_id))
    first = next(iter(cassette.sent_events()), {})
    if first.get("event_type") != "interaction.created":
        problems.append("events[0].event: the first event must be interaction.created")
    elif (first.get("interaction") or {}).get("id") != cassette.interaction_id:
        problems.append("events[0].event.interaction.id: differs from interaction.id")
    return problems


def _sdk_problems(cassette: AnyCassette, interactions: bool) -> list[str]:
    """Check recorded answers with the SDK's models; return ``path: problem`` lines."""
    from google.genai import types

    checks: list[tuple[type[BaseModel], dict[str, Any], str]] = []
    if isinstance(cassette, InteractionsCassette):
        return interactions_problems(cassette) if interactions else []
    if isinstance(cassette, GenerateCassette):
        checks = [
            (types.GenerateContentResponse, c.response, f"chunks[{i}].response")
            for i, c in enumerate(cassette.chunks)
            if c.response is not None
        ]
    elif isinstance(cassette, CountTokensCassette) and cassette.response is not None:
        checks = [(_CountTokensJson, cassette.response, "response")]
        details = cassette.response.get("promptTokensDetails") or []
        checks += [
            (types.ModalityTokenCount, d, f"response.promptTokensDetails[{i}]")
            for i, d in enumerate(details)
            if isinstance(d, dict)
        ]
    elif isinstance(cassette, LiveCassette):
        checks = [
            (types.LiveServerMessage, m.message, f"turns[{t}].messages[{i}].message")
            for t, turn in enumerate(cassette.turns)
            for i, m in enumerate(turn.messages)
            if m.message
        ]
    problems = []
    for model, data, where in checks:
        try:
            model.model_validate(data)
        except ValidationError as exc:
            problems += [f"{where}.{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
    return problems


def raise_problems(source: str, problems: list[str]) -> None:
    """Raise :class:`CassetteError` listing ``problems`` (the SDK's models refused them)."""
    if problems:
        raise CassetteError(
            f"{source} is not a valid cassette (the SDK's models refuse it):\n  "
            + "\n  ".join(problems)
        )


def parse_cassette(
    data: Any, source: str = "<memory>", *, interactions: bool = True
) -> AnyCassette:
    """Validate one cassette's JSON (already parsed) and return the model.

    Args:
        data: The cassette as a dict.
        source: Where it came from, for messages (a file name).
        interactions: False leaves an ``interactions`` cassette to
            :func:`interactions_problems` (the store checks it when first used).

    Raises:
        CassetteError: Not a valid cassette; the message names ``source`` and the path
            of every bad field (e.g. ``chunks[2].response.candidates[0].content.partz``).
    """
    try:
        cassette = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        lines = [f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CassetteError(f"{source} is not a valid cassette:\n  " + "\n  ".join(lines)) from None
    raise_problems(source, _sdk_problems(cassette, interactions))
    return cassette


def load_cassette(path: str | os.PathLike[str], *, interactions: bool = True) -> AnyCassette:
    """Read and validate one cassette file (see :func:`parse_cassette`).

    Raises:
        CassetteError: The file is not JSON or not a valid cassette (file and field named).
        OSError: It cannot be read.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CassetteError(f"{path} is not valid JSON: {exc}") from None
    cassette = parse_cassette(data, str(path), interactions=interactions)
    cassette._path = path
    return cassette


def cassette_json(cassette: AnyCassette) -> dict[str, Any]:
    """Return a cassette as its file's JSON (what :func:`parse_cassette` reads back):
    ``format`` first, fields left at their defaults omitted."""
    data = cassette.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return {"format": FORMAT, "name": cassette.name, "kind": cassette.kind, **data}


def dump_cassette(cassette: AnyCassette, *, indent: int | None = 1) -> str:
    """Return a cassette's file text (JSON, UTF-8 kept, a final newline)."""
    return json.dumps(cassette_json(cassette), indent=indent, ensure_ascii=False) + "\n"

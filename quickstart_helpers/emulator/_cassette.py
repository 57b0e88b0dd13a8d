"""The cassette file format (docs/recording.md, "The cassette format", describes it): a
strict model per ``kind`` (:data:`Cassette`); ``delay_ms`` is the wait in milliseconds
before an item in realtime pacing. :mod:`._cassette_io` reads and writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from typing_extensions import NotRequired, Required, TypedDict

#: The cassette file format version this package reads and writes.
FORMAT = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


#: The longest close reason RFC 6455 allows, in UTF-8 bytes.
MAX_REASON_BYTES = 123


def _short_reason(reason: str) -> str:
    if len(reason.encode("utf-8")) > MAX_REASON_BYTES:
        raise ValueError(f"a close reason holds at most {MAX_REASON_BYTES} UTF-8 bytes")
    return reason


CloseReason = Annotated[str, AfterValidator(_short_reason)]
_Count = Annotated[int, Field(ge=0)]


# Recorded JSON: checked, and kept as the dict it was. The SDK's CountTokensResponse
# lacks promptTokensDetails, which the API sends.
class _RecordedErrorJson(TypedDict):
    __pydantic_config__ = ConfigDict(extra="allow")
    code: int
    message: str
    status: NotRequired[str]


class _RecordedErrorBody(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    error: _RecordedErrorJson


class _CountTokensJson(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="forbid")
    totalTokens: Required[_Count]
    cachedContentTokenCount: _Count
    promptTokensDetails: list[dict[str, Any]]
    cacheTokensDetails: list[dict[str, Any]]


class _ModelJson(TypedDict):
    __pydantic_config__ = ConfigDict(extra="allow")
    name: Annotated[str, Field(pattern=r"^models/[^/]+$")]


# -- fault directives (``faults``): production failures :mod:`._faults` replays ----------


class ApiErrorDetail(_Strict):
    code: int = Field(ge=400, le=599)
    message: str = Field(min_length=1)
    status: str = Field(pattern=r"^[A-Z_]+$")
    details: list[dict[str, Any]] | None = None


class ApiErrorBody(_Strict):  # the API's error JSON
    error: ApiErrorDetail


class HttpErrorFault(_Strict):
    """``generate``: answer ``status`` and ``error`` before the first chunk (``times``:
    fail that many requests, answer one, start over; default: always)."""

    fault: Literal["http_error"]
    status: int = Field(ge=400, le=599)
    error: ApiErrorBody
    times: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _same_code(self) -> HttpErrorFault:
        if self.error.error.code != self.status:
            raise ValueError(f"error.error.code must equal status ({self.status})")
        return self


class ErrorEventFault(_Strict):
    """``generate``: send an ``{"error": {...}}`` SSE event after ``after`` chunks, then end."""

    fault: Literal["error_event"]
    after: _Count
    error: ApiErrorBody


class DropFault(_Strict):
    """Drop the connection after ``after`` chunks (``generate``; ``at_byte`` also sends
    that many bytes of the next chunk's event) or messages of turn ``turn`` (``live``)."""

    fault: Literal["drop"]
    after: _Count
    at_byte: int | None = Field(default=None, ge=1)
    turn: int | None = Field(default=None, ge=0)


class SplitFault(_Strict):
    """``generate``: write chunk ``chunk``'s event in TCP writes cut at byte offsets ``at``
    (inside a UTF-8 character splits it across two reads)."""

    fault: Literal["split"]
    chunk: _Count
    at: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _increasing(self) -> SplitFault:
        if self.at != sorted(set(self.at)):
            raise ValueError("at must be byte offsets in increasing order")
        return self


class CloseFault(_Strict):
    """``live``: close with ``code`` and ``reason`` after ``after`` messages of ``turn``."""

    fault: Literal["close"]
    code: int = Field(ge=1000, le=4999)
    reason: CloseReason = ""
    turn: _Count = 0
    after: _Count


class GoAwayFault(_Strict):
    """``live``: send ``{"goAway": {"timeLeft": ...}}`` after ``after`` messages of ``turn``;
    the turn goes on, then the connection closes (1000) after ``time_left`` (fast: at once)."""

    fault: Literal["go_away"]
    turn: _Count = 0
    after: _Count
    time_left: str = Field(default="10s", pattern=r"^[0-9]+(\.[0-9]+)?s$")


#: Any fault directive; ``fault`` picks the model.
Fault = Annotated[
    HttpErrorFault | ErrorEventFault | DropFault | SplitFault | CloseFault | GoAwayFault,
    Field(discriminator="fault"),
]


def check_faults(cassette: GenerateCassette | LiveCassette) -> None:
    """Check that each fault suits the cassette's kind, lies within it and is not repeated
    (at most one fault ends the stream, per turn for ``live``)."""
    live, seen, kind = cassette.kind == "live", {}, cassette.kind
    kinds = ("drop", "close", "go_away") if live else ("error_event", "drop", "split")
    kinds += ("http_error",) * (kind == "generate")  # openai: its errors are another shape
    for i, fault in enumerate(cassette.faults):
        where, turn = f"faults[{i}]", getattr(fault, "turn", None)
        at_byte = getattr(fault, "at_byte", None)
        if fault.fault not in kinds:
            raise ValueError(f"{where}: a {kind!r} cassette cannot hold a {fault.fault!r} fault")
        if not live and turn is not None:
            raise ValueError(f"{where}: 'turn' is for live cassettes")
        if live and at_byte is not None:
            raise ValueError(f"{where}: 'at_byte' is for generate cassettes")
        turn = turn or 0
        if live and turn >= len(cassette.turns):
            raise ValueError(f"{where}: turn {turn} does not exist")
        if isinstance(fault, SplitFault):
            key, position, limit = ("split", fault.chunk), fault.chunk, len(cassette.chunks) - 1
        else:
            ending = fault.fault in ("error_event", "drop", "close")
            key, position = ("ending" if ending else fault.fault, turn), getattr(fault, "after", 0)
            items = cassette.turns[turn].messages if live else cassette.chunks
            limit = len(items) - (at_byte is not None)
        if key in seen:
            raise ValueError(f"{where}: repeats faults[{seen[key]}] at the same place")
        seen[key] = i
        if position > limit:
            raise ValueError(f"{where}: position {position} lies past the end (at most {limit})")
        if isinstance(fault, SplitFault) and cassette.chunks[position].response is None:
            raise ValueError(f"{where}: chunks[{position}] is not a response to split")


class Chunk(_Strict):
    """One SSE event: a ``GenerateContentResponse``, an in-stream ``error``, or ``break``."""

    delay_ms: _Count = 0
    response: dict[str, Any] | None = None
    error: _RecordedErrorJson | None = None
    break_: bool = Field(default=False, alias="break")

    @model_validator(mode="after")
    def _one_of(self) -> Chunk:
        if [self.response is not None, self.error is not None, self.break_].count(True) != 1:
            raise ValueError('a chunk has exactly one of "response", "error" or "break": true')
        return self

    def payload(self) -> dict[str, Any] | None:
        return {"error": self.error} if self.error is not None else self.response


class RecordedError(_Strict):
    """An error answer (HTTP ``status``, the API's error JSON) in place of chunks."""

    status: int = Field(ge=400, le=599)
    delay_ms: _Count = 0
    body: _RecordedErrorBody


class LiveAudio(_Strict):
    """``frames`` from ``start`` of a 16-bit mono WAV ``file`` (beside the cassette), sent
    as one ``audio/pcm;rate=<Hz>`` inline data part."""

    file: str
    start: _Count
    frames: int = Field(gt=0)


class LiveClose(_Strict):
    code: int = Field(ge=1000, le=4999)
    reason: CloseReason = ""


class LiveMessage(_Strict):
    """A ``LiveServerMessage`` (``audio`` adds a part to ``serverContent.modelTurn.parts``),
    a ``break``, or (alone, last) a ``close``."""

    delay_ms: _Count = 0
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
    """A client turn, its text ``input`` or its spoken ``audio`` (matched by the PCM, however
    it was chunked), and the server messages that answer it."""

    input: str = ""
    audio: LiveAudio | None = None
    messages: list[LiveMessage] = Field(min_length=1)


class InteractionEvent(_Strict):
    """One SSE ``event`` or ``break`` (drops the create stream; a resumed one goes on)."""

    delay_ms: _Count = 0
    event: dict[str, Any] | None = None
    break_: bool = Field(default=False, alias="break")

    @model_validator(mode="after")
    def _one_of(self) -> InteractionEvent:
        if (self.event is None) == (not self.break_):
            raise ValueError('an event has either an "event" or "break": true, not both')
        return self


class _Named(_Strict):
    format: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: str
    description: str = ""
    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def faulty(self) -> bool:
        """Whether it records a failure on purpose (a fault, error, break, close, or a
        ``faults/`` folder): never offered as the nearest recording."""
        items = [*getattr(self, "chunks", []), *getattr(self, "events", [])]
        items += [m for turn in getattr(self, "turns", []) for m in turn.messages]
        marks = ("faults", "error", "break_", "close")
        in_faults = self._path is not None and "faults" in self._path.parent.parts
        return in_faults or any(getattr(x, m, None) for x in (self, *items) for m in marks)


class _CassetteBase(_Named):
    model: str = Field(min_length=1)


class GenerateCassette(_CassetteBase):
    """A ``generateContent`` ``request`` body and its ``chunks`` or ``error``; with ``kind``
    ``openai``, a chat completion ``request`` (without ``model``) to the OpenAI compatibility
    endpoint and its ``chat.completion.chunk`` chunks (or one ``chat.completion``)."""

    kind: Literal["generate", "openai"] = "generate"
    faults: list[Fault] = Field(default_factory=list)
    request: dict[str, Any]
    chunks: list[Chunk] = Field(default_factory=list)
    error: RecordedError | None = None

    @model_validator(mode="after")
    def _fits(self) -> GenerateCassette:
        if (self.error is None) == (not self.chunks):
            why = 'has "chunks" or an "error", not both (at least one chunk)'
            raise ValueError(f"a {self.kind} cassette {why}")
        check_faults(self)
        return self


class LiveCassette(_CassetteBase):
    """A Live API session: its ``setup`` and the answer to each turn's text or audio input."""

    kind: Literal["live"] = "live"
    faults: list[Fault] = Field(default_factory=list)
    setup: dict[str, Any] = Field(default_factory=dict)
    turns: list[LiveTurn] = Field(min_length=1)
    #: Each replayed turn's wire bytes, by (turn, transcriptions): ``_live_wire.render_turn``.
    _wire: dict[tuple[int, bool, bool], list[bytes | None]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _fits(self) -> LiveCassette:
        check_faults(self)
        last = (len(self.turns) - 1, len(self.turns[-1].messages) - 1)
        for t, turn in enumerate(self.turns):
            for m, message in enumerate(turn.messages):
                if message.close is not None and (t, m) != last:
                    why = 'a "close" can only be the last message of the last turn'
                    raise ValueError(f"turns[{t}].messages[{m}]: {why}")
        return self


class CountTokensCassette(_CassetteBase):
    """A ``countTokens`` ``request`` and its ``response`` or ``error``."""

    kind: Literal["count_tokens"] = "count_tokens"
    request: dict[str, Any]
    response: _CountTokensJson | None = None
    error: RecordedError | None = None

    @model_validator(mode="after")
    def _one_of(self) -> CountTokensCassette:
        if (self.response is None) == (self.error is None):
            raise ValueError('a count_tokens cassette has a "response" or an "error", one of them')
        return self


class ModelsCassette(_Named):
    """Model JSON from ``GET /{version}/models[/{model}]``, added to the catalog."""

    kind: Literal["models"] = "models"
    models: list[_ModelJson] = Field(min_length=1)


class InteractionsCassette(_CassetteBase):
    """An ``interactions.create`` ``request`` (continuing cassette ``previous``), its SSE
    ``events`` and the finished ``interaction``."""

    kind: Literal["interactions"] = "interactions"
    previous: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    events: list[InteractionEvent] = Field(min_length=1)
    interaction: dict[str, Any]

    @property
    def interaction_id(self) -> str:
        return str(self.interaction.get("id", ""))

    def sent_events(self) -> list[dict[str, Any]]:
        return [e.event for e in self.events if e.event is not None]


AnyCassette = (
    GenerateCassette | LiveCassette | CountTokensCassette | ModelsCassette | InteractionsCassette
)
#: Any cassette; ``kind`` picks the model.
Cassette = Annotated[AnyCassette, Field(discriminator="kind")]

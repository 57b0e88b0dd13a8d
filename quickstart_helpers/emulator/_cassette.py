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

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError
from pydantic import model_validator as after

from ._cassette_faults import CloseReason, Fault, SplitFault, check_faults

#: The cassette file format version this package reads and writes.
FORMAT = 1

_after = after(mode="after")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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
    reason: CloseReason = ""


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

    @_after
    def _fits(self) -> GenerateCassette:
        if (self.error is None) == (not self.chunks):
            raise ValueError(
                'a generate cassette has "chunks" or an "error", not both (at least one chunk)'
            )
        check_faults(self)
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

    @_after
    def _fits(self) -> LiveCassette:
        check_faults(self)
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

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
      "model": "gemini-2.5-flash",
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

A ``live`` cassette (Live API) has ``setup`` and ``turns``; each turn answers one
client turn (its text ``input``) with server messages, validated as
``types.LiveServerMessage``. See :mod:`quickstart_helpers.emulator._live`.

An ``interactions`` cassette answers one ``POST /{version}/interactions`` (the
Interactions API): ``request`` is the create body (``input``, ``tools``,
``system_instruction``, ...), ``previous`` the name of the cassette whose interaction
the request continues (its ``previous_interaction_id``), ``events`` the SSE events'
JSON exactly as the API streams them (each with its ``event_id``; ``"break": true``
drops the connection there), and ``interaction`` the finished ``Interaction`` resource
(the non-streamed answer and what ``get`` returns). Events and the resource are
validated with the SDK's models, refusing unknown fields and variants. See
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
from collections.abc import Iterable
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
    "GenerateCassette",
    "InteractionEvent",
    "InteractionsCassette",
    "LiveAudio",
    "LiveCassette",
    "LiveMessage",
    "LiveTurn",
    "cassette_dirs",
    "load_cassette",
    "normalize_contents",
    "parse_cassette",
    "interactions_request_key",
    "prompt_text",
    "request_key",
    "shipped_cassette_dir",
]

#: The cassette file format version this package reads and writes.
FORMAT = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Chunk(_Strict):
    """One streamed chunk: a ``GenerateContentResponse`` and the delay before it.

    Attributes:
        delay_ms: Wait before the chunk in realtime pacing, in milliseconds.
        response: The chunk's JSON as the API sends it; None for a ``break``.
        break_: Drop the connection here instead of sending a chunk (JSON ``"break"``).
    """

    delay_ms: int = Field(default=0, ge=0)
    response: dict[str, Any] | None = None
    break_: bool = Field(default=False, alias="break")

    @model_validator(mode="after")
    def _one_of(self) -> Chunk:
        if (self.response is None) == (not self.break_):
            raise ValueError('a chunk has either a "response" or "break": true, not both')
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


class LiveMessage(_Strict):
    """One Live API server message (``serverContent``, ``goAway`` ...) and its delay.

    ``audio`` adds an ``inlineData`` part (``audio/pcm;rate=<Hz>``, base64 PCM read
    from a WAV file next to the cassette) to ``serverContent.modelTurn.parts``.
    ``"break": true`` drops the connection there instead of sending a message.
    """

    delay_ms: int = Field(default=0, ge=0)
    message: dict[str, Any] = Field(default_factory=dict)
    audio: LiveAudio | None = None
    break_: bool = Field(default=False, alias="break")


class LiveTurn(_Strict):
    """The server's answer to one client turn of a Live API session."""

    input: str
    messages: list[LiveMessage] = Field(min_length=1)


class _CassetteBase(_Strict):
    format: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    model: str = Field(min_length=1)
    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        """The file the cassette was loaded from, or None when built in memory."""
        return self._path


class GenerateCassette(_CassetteBase):
    """A recorded ``generateContent`` / ``streamGenerateContent`` exchange."""

    kind: Literal["generate"]
    request: dict[str, Any]
    chunks: list[Chunk] = Field(min_length=1)

    def request_key(self) -> str:
        """Return the :func:`request_key` of the recorded request."""
        return request_key(self.model, self.request)

    def matches(self, model: str, body: dict[str, Any]) -> bool:
        """Return whether a request (model from the URL, JSON body) is the recorded one."""
        return request_key(model, body) == self.request_key()


class LiveCassette(_CassetteBase):
    """A recorded Live API session: its setup and the server's answer to each turn."""

    kind: Literal["live"]
    setup: dict[str, Any] = Field(default_factory=dict)
    turns: list[LiveTurn] = Field(min_length=1)


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


#: Any cassette; ``kind`` picks the model.
Cassette = Annotated[
    GenerateCassette | LiveCassette | InteractionsCassette, Field(discriminator="kind")
]

_ADAPTER: TypeAdapter[GenerateCassette | LiveCassette | InteractionsCassette] = TypeAdapter(
    Cassette
)


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


def _sdk_errors(cassette: GenerateCassette | LiveCassette | InteractionsCassette) -> list[str]:
    """Check recorded responses with the SDK's models; return ``path: problem`` lines."""
    from google.genai import types

    problems: list[str] = []

    def check(model: type[BaseModel], data: dict[str, Any], where: str) -> None:
        try:
            model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(f"{where}.{_loc(err['loc'])}: {err['msg']}")

    if isinstance(cassette, InteractionsCassette):
        return _interactions_errors(cassette)
    if isinstance(cassette, GenerateCassette):
        for i, chunk in enumerate(cassette.chunks):
            if chunk.response is not None:
                check(types.GenerateContentResponse, chunk.response, f"chunks[{i}].response")
    else:
        for t, turn in enumerate(cassette.turns):
            for m, message in enumerate(turn.messages):
                if message.message:
                    check(
                        types.LiveServerMessage,
                        message.message,
                        f"turns[{t}].messages[{m}].message",
                    )
    return problems


def parse_cassette(
    data: Any, source: str = "<memory>"
) -> GenerateCassette | LiveCassette | InteractionsCassette:
    """Validate one cassette's JSON (already parsed) and return the model.

    Args:
        data: The cassette as a dict.
        source: Where it came from, for messages (a file name).

    Raises:
        CassetteError: Not a valid cassette; the message names ``source`` and the path
            of every bad field (e.g. ``chunks[2].response.candidates[0].content.partz``).
    """
    try:
        cassette = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        lines = [f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CassetteError(f"{source} is not a valid cassette:\n  " + "\n  ".join(lines)) from None
    problems = _sdk_errors(cassette)
    if problems:
        raise CassetteError(
            f"{source} is not a valid cassette (the SDK's models refuse it):\n  "
            + "\n  ".join(problems)
        )
    return cassette


def load_cassette(
    path: str | os.PathLike[str],
) -> GenerateCassette | LiveCassette | InteractionsCassette:
    """Read and validate one cassette file.

    Raises:
        CassetteError: The file is not JSON or not a valid cassette (file and field named).
        OSError: It cannot be read.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CassetteError(f"{path} is not valid JSON: {exc}") from None
    cassette = parse_cassette(data, str(path))
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
            name = _CAMEL.sub(lambda m: m.group(1).upper(), key) if isinstance(key, str) else key
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
    if isinstance(contents, dict):
        contents = [contents]
    result: list[dict[str, Any]] = []
    for content in _camel_keys(contents or []):
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
        "contents": normalize_contents(body.get("contents")),
        "systemInstruction": normalize_contents([instruction])[0]["parts"] if instruction else [],
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
            A folder that does not exist holds no cassettes.

    Raises:
        CassetteError: A file is not a valid cassette, two cassettes share a name, or two
            ``generate`` cassettes answer the same request.
    """

    def __init__(self, folders: Iterable[str | os.PathLike[str]] | None = None) -> None:
        self.folders = [Path(f) for f in (cassette_dirs() if folders is None else folders)]
        self.cassettes: list[GenerateCassette | LiveCassette | InteractionsCassette] = []
        self._by_key: dict[str, GenerateCassette | InteractionsCassette] = {}
        for folder in self.folders:
            for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
                self.add(load_cassette(path))

    def add(self, cassette: GenerateCassette | LiveCassette | InteractionsCassette) -> None:
        """Add one cassette (loaded or built in memory).

        Raises:
            CassetteError: Its name is taken, or a ``generate`` cassette already
                answers the same request.
        """
        for other in self.cassettes:
            if other.name == cassette.name:
                raise CassetteError(
                    f"Cassette name {cassette.name!r} is used by {other.path} and "
                    f"{cassette.path}; names must be unique."
                )
        if isinstance(cassette, GenerateCassette | InteractionsCassette):
            key = cassette.request_key()
            if key in self._by_key:
                first = self._by_key[key]
                raise CassetteError(
                    f"Cassettes {first.name!r} ({first.path}) and {cassette.name!r} "
                    f"({cassette.path}) answer the same request; remove one of them."
                )
            self._by_key[key] = cassette
        self.cassettes.append(cassette)

    def find(self, model: str, body: dict[str, Any]) -> GenerateCassette | None:
        """Return the ``generate`` cassette recorded for this request, or None."""
        found = self._by_key.get(request_key(model, body))
        return found if isinstance(found, GenerateCassette) else None

    def find_interaction(
        self, model: str, body: dict[str, Any], previous: str | None
    ) -> InteractionsCassette | None:
        """Return the ``interactions`` cassette recorded for this create request, or None.

        Args:
            model: The request's model.
            body: The create request's JSON body.
            previous: Name of the cassette of the interaction it continues, or None.
        """
        found = self._by_key.get(interactions_request_key(model, body, previous))
        return found if isinstance(found, InteractionsCassette) else None

    def closest(self, model: str, body: dict[str, Any]) -> GenerateCassette | None:
        """Return the ``generate`` cassette whose prompt is most like this one's.

        Cassettes for the same model rank first; ties go to text similarity.
        """
        wanted = prompt_text(body.get("contents"))
        candidates = [c for c in self.cassettes if isinstance(c, GenerateCassette)]
        if not candidates:
            return None

        def score(c: GenerateCassette) -> tuple[bool, float]:
            text = prompt_text(c.request.get("contents"))
            similar = difflib.SequenceMatcher(None, wanted, text).ratio()
            return (bare_model(c.model) == bare_model(model), similar)

        return max(candidates, key=score)

    def live(self, model: str) -> list[LiveCassette]:
        """Return the ``live`` cassettes recorded for ``model``."""
        return [
            c
            for c in self.cassettes
            if isinstance(c, LiveCassette) and bare_model(c.model) == bare_model(model)
        ]

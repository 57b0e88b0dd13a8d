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

A ``generate`` cassette may record an error answer instead of chunks (record mode
captures the upstream's errors this way, so error paths replay)::

    "error": {"status": 429, "delay_ms": 180,
              "body": {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED"}}}

``status`` is the HTTP status (400-599); ``body`` the API's error JSON, sent as is.
A cassette has either ``chunks`` or ``error``, never both.

A ``live`` cassette (Live API) has ``setup`` and ``turns``; each turn answers one
client turn (its text ``input``) with server messages, validated as
``types.LiveServerMessage``. See :mod:`quickstart_helpers.emulator._live`.

Matching: a request and a ``generate`` cassette match when their
:func:`request_key` is equal. The key holds the model (a ``models/`` prefix is
ignored), the ``contents`` (roles lower-cased, default ``user``; consecutive contents
of one role merged; adjacent text parts joined; thought parts skipped; inline data by
MIME type and SHA-256; function call and function response parts by name and
arguments), the ``systemInstruction``, ``tools``, ``toolConfig`` and the
``responseModalities`` (as a set; none means ``TEXT``). Other generation settings
(temperature, thinking) do not select a recording. Field names may be camelCase or snake_case.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
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
    "GenerateCassette",
    "LiveAudio",
    "LiveCassette",
    "LiveMessage",
    "LiveTurn",
    "RecordedError",
    "cassette_dirs",
    "load_cassette",
    "normalize_contents",
    "parse_cassette",
    "HINT_CHARS",
    "closest_text",
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


class _ErrorDetail(BaseModel):
    # The API's ``error`` object: code, message and status are required; other fields
    # (``details``) are kept as they are.
    model_config = ConfigDict(extra="allow")

    code: int
    message: str
    status: str = ""


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
    chunks: list[Chunk] = Field(default_factory=list)
    error: RecordedError | None = None

    @model_validator(mode="after")
    def _chunks_or_error(self) -> GenerateCassette:
        if self.error is None and not self.chunks:
            raise ValueError('a generate cassette needs at least one chunk (or an "error")')
        if self.error is not None and self.chunks:
            raise ValueError('a generate cassette has "chunks" or an "error", not both')
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
    setup: dict[str, Any] = Field(default_factory=dict)
    turns: list[LiveTurn] = Field(min_length=1)


#: Any cassette; ``kind`` picks the model.
Cassette = Annotated[GenerateCassette | LiveCassette, Field(discriminator="kind")]

_ADAPTER: TypeAdapter[GenerateCassette | LiveCassette] = TypeAdapter(Cassette)


def _loc(loc: Iterable[Any]) -> str:
    text = ""
    for item in loc:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else str(item))
    return text or "(top level)"


def _sdk_errors(cassette: GenerateCassette | LiveCassette) -> list[str]:
    """Check recorded responses with the SDK's models; return ``path: problem`` lines."""
    from google.genai import types

    problems: list[str] = []

    def check(model: type[BaseModel], data: dict[str, Any], where: str) -> None:
        try:
            model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(f"{where}.{_loc(err['loc'])}: {err['msg']}")

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


def parse_cassette(data: Any, source: str = "<memory>") -> GenerateCassette | LiveCassette:
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


def load_cassette(path: str | os.PathLike[str]) -> GenerateCassette | LiveCassette:
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
    key = {
        "model": bare_model(model),
        "contents": normalize_contents(body.get("contents")),
        "systemInstruction": normalize_contents([instruction])[0]["parts"] if instruction else [],
        "tools": body.get("tools") or [],
        "toolConfig": body.get("toolConfig") or {},
        "responseModalities": sorted({str(m).upper() for m in modalities} or {"TEXT"})
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
            A folder that does not exist holds no cassettes.

    Raises:
        CassetteError: A file is not a valid cassette, two cassettes share a name, or two
            ``generate`` cassettes answer the same request.
    """

    def __init__(self, folders: Iterable[str | os.PathLike[str]] | None = None) -> None:
        self.folders = [Path(f) for f in (cassette_dirs() if folders is None else folders)]
        self.cassettes: list[GenerateCassette | LiveCassette] = []
        self._by_key: dict[str, GenerateCassette] = {}
        for folder in self.folders:
            for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
                self.add(load_cassette(path))

    def add(self, cassette: GenerateCassette | LiveCassette) -> None:
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
        if isinstance(cassette, GenerateCassette):
            key = cassette.request_key()
            if key in self._by_key:
                first = self._by_key[key]
                raise CassetteError(
                    f"Cassettes {first.name!r} ({first.path}) and {cassette.name!r} "
                    f"({cassette.path}) answer the same request; remove one of them."
                )
            self._by_key[key] = cassette
        self.cassettes.append(cassette)

    def put(self, cassette: GenerateCassette | LiveCassette) -> None:
        """Add a cassette, replacing one with the same name or (``generate``) request.

        Record mode uses it for what it has just written.
        """
        drop = {cassette.name}
        if isinstance(cassette, GenerateCassette):
            old = self._by_key.pop(cassette.request_key(), None)
            if old is not None:
                drop.add(old.name)
        for other in [c for c in self.cassettes if c.name in drop]:
            self.cassettes.remove(other)
            if isinstance(other, GenerateCassette):
                self._by_key.pop(other.request_key(), None)
        self.add(cassette)

    def find(self, model: str, body: dict[str, Any]) -> GenerateCassette | None:
        """Return the ``generate`` cassette recorded for this request, or None."""
        return self._by_key.get(request_key(model, body))

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

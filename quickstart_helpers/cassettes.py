"""Cassettes: recorded Gemini API responses that the emulator replays.

A cassette is one JSON file under ``assets/cassettes/`` (any sub-folder). A
``generate`` cassette answers one ``generateContent`` / ``streamGenerateContent``
request::

    {
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
event (camelCase JSON). ``delay_ms`` is the wait before the chunk in realtime pacing.
A chunk with ``"break": true`` drops the connection there, to teach broken streams.

A request matches when the model is the same (a ``models/`` prefix is ignored) and its
``contents`` are equal after normalisation (role defaults to ``user``; only ``text``
and ``inlineData`` parts count, inline data by MIME type and SHA-256). When the
cassette's ``request`` also names ``systemInstruction`` or ``generationConfig`` keys,
those must match too. A ``live`` cassette (Live API) has ``setup`` and ``turns``
instead of ``request`` and ``chunks``; see :mod:`quickstart_helpers.live_emulator`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Cassette",
    "CassetteStore",
    "Chunk",
    "LiveAudio",
    "LiveMessage",
    "LiveTurn",
    "default_cassette_dir",
    "estimate_tokens",
    "normalize_contents",
    "prompt_text",
    "write_cassettes",
]


def default_cassette_dir() -> Path:
    """Return the cassette folder: ``$QUICKSTART_CASSETTES`` or the repository's."""
    env = os.environ.get("QUICKSTART_CASSETTES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "assets" / "cassettes"


class Chunk(BaseModel):
    """One streamed chunk: a ``GenerateContentResponse`` and the delay before it."""

    model_config = ConfigDict(populate_by_name=True)

    delay_ms: int = Field(default=0, ge=0)
    response: dict[str, Any] | None = None
    break_: bool = Field(default=False, alias="break")


class LiveAudio(BaseModel):
    """A slice of a cassette's WAV file, sent as one audio inline data part.

    Attributes:
        file: WAV file (16-bit mono PCM), relative to the cassette's folder.
        start: First frame of the slice.
        frames: Number of frames in the slice.
    """

    file: str
    start: int = Field(ge=0)
    frames: int = Field(gt=0)


class LiveMessage(BaseModel):
    """One Live API server message (``serverContent``, ``goAway`` ...) and its delay.

    ``audio`` adds an ``inlineData`` part (``audio/pcm;rate=<Hz>``, base64 PCM read
    from a WAV file next to the cassette) to ``serverContent.modelTurn.parts``.
    ``"break": true`` drops the connection there instead of sending a message.
    """

    model_config = ConfigDict(populate_by_name=True)

    delay_ms: int = Field(default=0, ge=0)
    message: dict[str, Any] = Field(default_factory=dict)
    audio: LiveAudio | None = None
    break_: bool = Field(default=False, alias="break")


class LiveTurn(BaseModel):
    """The server's answer to one client turn of a Live API session."""

    input: str
    messages: list[LiveMessage]


class Cassette(BaseModel):
    """A recorded exchange, loaded from one JSON file."""

    name: str
    kind: Literal["generate", "live"] = "generate"
    description: str = ""
    model: str
    request: dict[str, Any] = Field(default_factory=dict)
    chunks: list[Chunk] = Field(default_factory=list)
    setup: dict[str, Any] = Field(default_factory=dict)
    turns: list[LiveTurn] = Field(default_factory=list)
    path: Path | None = Field(default=None, exclude=True)

    def matches(self, model: str, body: dict[str, Any]) -> bool:
        """Return whether a ``generateContent`` request body is the recorded one.

        Args:
            model: Model name from the URL, with or without ``models/``.
            body: The request's JSON body (camelCase, as the SDK sends it).
        """
        if self.kind != "generate" or _bare_model(model) != _bare_model(self.model):
            return False
        if normalize_contents(body.get("contents")) != normalize_contents(
            self.request.get("contents")
        ):
            return False
        if "systemInstruction" in self.request:
            if normalize_contents([body.get("systemInstruction") or {}]) != normalize_contents(
                [self.request["systemInstruction"]]
            ):
                return False
        wanted_config = self.request.get("generationConfig") or {}
        sent_config = body.get("generationConfig") or {}
        return all(sent_config.get(k) == v for k, v in wanted_config.items())


def _bare_model(model: str) -> str:
    return model.removeprefix("models/")


def normalize_contents(contents: Any) -> list[dict[str, Any]]:
    """Reduce ``contents`` to what identifies a request: roles, text and inline data.

    Args:
        contents: A list of ``Content`` dicts as sent on the wire, or None.

    Returns:
        A list of ``{"role", "parts"}`` dicts; inline data appears as its MIME type
        and the SHA-256 of its base64 text. Consecutive contents of the same role are
        merged and adjacent text parts joined, so a streamed answer sent back as one
        content per chunk (as SDK chat sessions do) equals the same answer joined.
    """
    result: list[dict[str, Any]] = []
    for content in contents or []:
        if not isinstance(content, dict):
            continue
        parts = []
        for part in content.get("parts") or []:
            if not isinstance(part, dict):
                continue
            if "text" in part and not part.get("thought"):
                if parts and "text" in parts[-1]:
                    parts[-1] = {"text": parts[-1]["text"] + part["text"]}
                else:
                    parts.append({"text": part["text"]})
            inline = part.get("inlineData") or part.get("inline_data")
            if inline:
                digest = hashlib.sha256(str(inline.get("data", "")).encode()).hexdigest()
                parts.append({"inlineData": [inline.get("mimeType"), digest]})
        role = content.get("role") or "user"
        if result and result[-1]["role"] == role:
            previous = result[-1]["parts"]
            if previous and parts and "text" in previous[-1] and "text" in parts[0]:
                previous[-1] = {"text": previous[-1]["text"] + parts.pop(0)["text"]}
            previous.extend(parts)
        else:
            result.append({"role": role, "parts": parts})
    return result


def prompt_text(contents: Any) -> str:
    """Return the text of the last user turn in ``contents`` (for messages)."""
    for content in reversed(normalize_contents(contents)):
        if content["role"] == "user":
            return " ".join(p["text"] for p in content["parts"] if "text" in p)
    return ""


class CassetteStore:
    """All cassettes found under one or more folders.

    Args:
        folders: Folders searched recursively for ``*.json`` cassettes. Defaults to
            :func:`default_cassette_dir`.

    Raises:
        ValueError: A file is not a valid cassette, two cassettes share a name, or two
            ``generate`` cassettes answer the same request.
    """

    def __init__(self, folders: Iterable[str | os.PathLike[str]] | None = None) -> None:
        self.folders = [Path(f) for f in (folders or [default_cassette_dir()])]
        self.cassettes: list[Cassette] = []
        seen: dict[str, Path] = {}
        for folder in self.folders:
            for path in sorted(folder.rglob("*.json")):
                try:
                    cassette = Cassette.model_validate(json.loads(path.read_text("utf-8")))
                except (ValueError, json.JSONDecodeError) as exc:
                    raise ValueError(f"{path} is not a valid cassette: {exc}") from exc
                cassette.path = path
                if cassette.name in seen:
                    raise ValueError(
                        f"Cassette name {cassette.name!r} is used by {seen[cassette.name]} "
                        f"and {path}; names must be unique."
                    )
                seen[cassette.name] = path
                self.cassettes.append(cassette)
        answered: dict[str, Cassette] = {}
        for cassette in self.cassettes:
            if cassette.kind != "generate":
                continue
            key = json.dumps(
                [
                    _bare_model(cassette.model),
                    normalize_contents(cassette.request.get("contents")),
                    normalize_contents([cassette.request.get("systemInstruction") or {}]),
                    cassette.request.get("generationConfig") or {},
                ],
                sort_keys=True,
            )
            if key in answered:
                raise ValueError(
                    f"Cassettes {answered[key].name!r} ({answered[key].path}) and "
                    f"{cassette.name!r} ({cassette.path}) answer the same request; "
                    "remove one of them."
                )
            answered[key] = cassette

    def find(self, model: str, body: dict[str, Any]) -> Cassette | None:
        """Return the ``generate`` cassette recorded for this request, or None."""
        return next((c for c in self.cassettes if c.matches(model, body)), None)

    def closest(self, model: str, body: dict[str, Any]) -> Cassette | None:
        """Return the ``generate`` cassette whose prompt is most like this one's.

        Cassettes for the same model rank first; ties go to text similarity.
        """
        wanted = prompt_text(body.get("contents"))
        candidates = [c for c in self.cassettes if c.kind == "generate"]
        if not candidates:
            return None

        def score(c: Cassette) -> tuple[bool, float]:
            text = prompt_text(c.request.get("contents"))
            similar = difflib.SequenceMatcher(None, wanted, text).ratio()
            return (_bare_model(c.model) == _bare_model(model), similar)

        return max(candidates, key=score)

    def live(self, model: str) -> list[Cassette]:
        """Return the ``live`` cassettes recorded for ``model``."""
        return [
            c
            for c in self.cassettes
            if c.kind == "live" and _bare_model(c.model) == _bare_model(model)
        ]


# -- authoring (used by the scripts in scripts/) -------------------------------------


def estimate_tokens(text: str) -> int:
    """Estimate the token count of English text: about 1.3 tokens per word, at least 1.

    Used to give authored cassettes realistic ``usageMetadata``; not a tokenizer.
    """
    return max(1, math.ceil(len(text.split()) * 1.3))


def write_cassettes(
    folder: str | os.PathLike[str], cassettes: Iterable[dict[str, Any]]
) -> list[Path]:
    """Write each cassette dict to ``folder/<name>.json`` as indented UTF-8 JSON.

    Args:
        folder: Destination folder; created if missing.
        cassettes: Cassette dicts in the format :class:`Cassette` reads.

    Returns:
        The paths written, in order.

    Raises:
        ValueError: A cassette is not valid (checked before anything is written).
    """
    cassettes = list(cassettes)
    for cassette in cassettes:
        Cassette.model_validate(cassette)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for cassette in cassettes:
        path = out / f"{cassette['name']}.json"
        path.write_text(json.dumps(cassette, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths

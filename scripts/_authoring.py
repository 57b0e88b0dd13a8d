"""Build and write authored cassettes: the one module every ``scripts/make_*.py`` uses.

Development tooling, not part of the installed package. The scripts import it as
``_authoring`` (they put ``scripts/`` on ``sys.path`` first, so this works both when a
script is run as ``python scripts/make_x.py`` and when a test loads it with importlib).

The builders return plain dicts in the cassette JSON format that
:mod:`quickstart_helpers.emulator` reads (camelCase keys, as the API sends them);
:func:`write_cassettes` checks every cassette with
:func:`quickstart_helpers.emulator.parse_cassette` before it writes any file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from quickstart_helpers.emulator import FORMAT, parse_cassette

__all__ = [
    "estimate_tokens",
    "generate_cassette",
    "paced_delays",
    "response_id",
    "stream_chunks",
    "text_content",
    "usage_metadata",
    "write_cassettes",
]


def estimate_tokens(text: str) -> int:
    """Estimate the token count of English text: about 1.3 tokens per word, at least 1.

    Used to give authored cassettes realistic ``usageMetadata``; not a tokenizer.
    """
    return max(1, math.ceil(len(text.split()) * 1.3))


def response_id(name: str) -> str:
    """Return a stable ``responseId`` for a cassette: 22 hex digits of SHA-1 of its name."""
    return hashlib.sha1(name.encode()).hexdigest()[:22]


def text_content(role: str, text: str) -> dict[str, Any]:
    """Return one wire ``Content`` holding one text part, e.g. a user's message."""
    return {"role": role, "parts": [{"text": text}]}


def paced_delays(count: int, *, first_ms: int, every_ms: int, jitter_ms: int) -> list[int]:
    """Return ``count`` chunk delays in ms: ``first_ms``, then ``every_ms`` plus a little jitter.

    The jitter cycles ``jitter_ms, 2 * jitter_ms, 0`` so the stream does not tick evenly.
    """
    return [first_ms if i == 0 else every_ms + jitter_ms * (i % 3) for i in range(count)]


def usage_metadata(
    prompt_tokens: int,
    answer_tokens: int | None = None,
    *,
    thoughts: int = 0,
    prompt_details: bool = True,
    answer_details: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Return a chunk's ``usageMetadata``, as the API sends it while streaming.

    Args:
        prompt_tokens: Tokens of the request.
        answer_tokens: Tokens of the whole answer; only the last chunk carries them
            (None: a chunk before the last).
        thoughts: Thinking tokens (``thoughtsTokenCount``, counted in the total); 0 omits it.
        prompt_details: Add ``promptTokensDetails`` (all ``TEXT``).
        answer_details: ``candidatesTokensDetails`` as ``{modality: tokens}`` (last chunk).
    """
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "totalTokenCount": prompt_tokens + thoughts,
    }
    if prompt_details:
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if answer_tokens is not None:
        usage["candidatesTokenCount"] = answer_tokens
        usage["totalTokenCount"] = prompt_tokens + answer_tokens + thoughts
    if answer_details:
        usage["candidatesTokensDetails"] = [
            {"modality": modality, "tokenCount": tokens}
            for modality, tokens in answer_details.items()
        ]
    return usage


def stream_chunks(
    chunks: Sequence[str | list[dict[str, Any]]],
    delays_ms: Sequence[int],
    *,
    name: str,
    model: str,
    prompt_tokens: int,
    answer_tokens: int,
    thoughts: int = 0,
    prompt_details: bool = True,
    answer_details: dict[str, int] | None = None,
    complete: bool = True,
    finish_reason: str | None = "STOP",
) -> list[dict[str, Any]]:
    """Return a ``generate`` cassette's chunks: one streamed answer, chunk by chunk.

    Every chunk is a ``GenerateContentResponse`` with one candidate, the running
    ``usageMetadata`` (see :func:`usage_metadata`), ``modelVersion`` and a
    ``responseId`` made from ``name`` (:func:`response_id`).

    Args:
        chunks: Each chunk's model parts; a string is one text part.
        delays_ms: The wait before each chunk, in ms (as many as ``chunks``).
        name: The cassette's name.
        model: The model version the responses name.
        prompt_tokens: Tokens of the request.
        answer_tokens: Tokens of the whole answer (on the last chunk).
        thoughts: Thinking tokens; 0 omits them.
        prompt_details: Add ``promptTokensDetails`` to every chunk's usage.
        answer_details: ``candidatesTokensDetails`` of the last chunk, ``{modality: tokens}``.
        complete: The last chunk ends the answer: it carries the finish reason and the
            final usage. False for a stream cut short (follow it with a ``break``).
        finish_reason: The last chunk's ``finishReason``; None omits it.

    Raises:
        ValueError: ``chunks`` and ``delays_ms`` differ in length.
    """
    rid = response_id(name)
    out: list[dict[str, Any]] = []
    for i, (parts, delay) in enumerate(zip(chunks, delays_ms, strict=True)):
        last = complete and i == len(chunks) - 1
        if isinstance(parts, str):
            parts = [{"text": parts}]
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if last and finish_reason:
            candidate["finishReason"] = finish_reason
        usage = usage_metadata(
            prompt_tokens,
            answer_tokens if last else None,
            thoughts=thoughts,
            prompt_details=prompt_details,
            answer_details=answer_details if last else None,
        )
        response = {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": rid,
        }
        out.append({"delay_ms": delay, "response": response})
    return out


def generate_cassette(
    name: str,
    description: str,
    model: str,
    request: dict[str, Any],
    chunks: list[dict[str, Any]],
) -> dict[str, Any]:
    """Return a ``generate`` cassette dict (``format`` first), ready for :func:`write_cassettes`."""
    return {
        "format": FORMAT,
        "name": name,
        "kind": "generate",
        "description": description,
        "model": model,
        "request": request,
        "chunks": chunks,
    }


def _dumps(value: Any, indent: int, one_line: Collection[str], level: int = 0) -> str:
    """``json.dumps(value, indent=indent)``, but the items of lists under a key in
    ``one_line`` are written one compact item per line."""
    pad, end = " " * indent * (level + 1), " " * indent * level
    if isinstance(value, dict) and value:
        items = []
        for key, item in value.items():
            if key in one_line and isinstance(item, list) and item:
                lines = ",\n".join(
                    pad + " " * indent + json.dumps(v, ensure_ascii=False, separators=(", ", ": "))
                    for v in item
                )
                text = f"[\n{lines}\n{pad}]"
            else:
                text = _dumps(item, indent, one_line, level + 1)
            items.append(f"{pad}{json.dumps(key, ensure_ascii=False)}: {text}")
        return "{\n" + ",\n".join(items) + f"\n{end}}}"
    if isinstance(value, list) and value:
        items = [pad + _dumps(v, indent, one_line, level + 1) for v in value]
        return "[\n" + ",\n".join(items) + f"\n{end}]"
    return json.dumps(value, ensure_ascii=False)


def write_cassettes(
    folder: str | os.PathLike[str],
    cassettes: Iterable[dict[str, Any]],
    *,
    indent: int = 2,
    one_line: Collection[str] = (),
) -> list[Path]:
    """Write each cassette to ``folder/<name>.json`` as UTF-8 JSON, ``"format"`` first.

    Every cassette is validated with :func:`quickstart_helpers.emulator.parse_cassette`
    first: if one is invalid, no file is written. Each file is written to a temporary
    file in ``folder`` and renamed over its target (``os.replace``), so a reader never
    sees half a file.

    Args:
        folder: Destination folder; created if missing.
        cassettes: Cassette dicts; a missing ``format`` is set to the current version.
        indent: Spaces per nesting level.
        one_line: Keys whose list items are each written on one line (e.g.
            ``{"messages"}`` for a Live cassette: short, readable diffs).

    Returns:
        The paths written, in order.

    Raises:
        CassetteError: A cassette is not valid (a ``ValueError``; nothing written).
        ValueError: Two cassettes have the same name (nothing written).
        OSError: A file cannot be written.
    """
    out = Path(folder)
    files: list[tuple[Path, str]] = []
    for cassette in cassettes:
        data = {"format": cassette.get("format", FORMAT)}
        data.update((k, v) for k, v in cassette.items() if k != "format")
        path = out / f"{data.get('name')}.json"
        parse_cassette(data, str(path))
        if any(path == p for p, _ in files):
            raise ValueError(f"Two cassettes are named {data['name']!r}; names must be unique.")
        text = (
            _dumps(data, indent, one_line)
            if one_line
            else json.dumps(data, indent=indent, ensure_ascii=False)
        )
        files.append((path, text + "\n"))
    out.mkdir(parents=True, exist_ok=True)
    for path, text in files:
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as file:
                file.write(text)
            os.chmod(tmp, 0o644)  # mkstemp makes it 0o600
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return [path for path, _ in files]

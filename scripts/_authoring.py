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

import base64
import hashlib
import json
import math
import os
import random
import tempfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from quickstart_helpers.emulator import FORMAT, parse_cassette
from quickstart_helpers.emulator._profiles import profile_for

__all__ = [
    "estimate_tokens",
    "generate_cassette",
    "paced_delays",
    "response_id",
    "split_text",
    "stream_chunks",
    "stream_delays",
    "thinking_tokens",
    "text_content",
    "thought_signature",
    "usage_metadata",
    "write_cassettes",
]


def estimate_tokens(text: str) -> int:
    """Estimate the token count of English text: about 1.3 tokens per word, at least 1.

    Used to give authored cassettes realistic ``usageMetadata``; not a tokenizer.
    """
    return max(1, math.ceil(len(text.split()) * 1.3))


def response_id(name: str) -> str:
    """Return a stable ``responseId`` for a cassette, in the API's form: 23 URL-safe
    base64 characters (e.g. ``iCUhao2zJ-LHjuMP1vvH2Qk``), from SHA-1 of its name."""
    return base64.urlsafe_b64encode(hashlib.sha1(name.encode()).digest()).decode()[:23]


def thought_signature(name: str, size: int = 96) -> str:
    """Return a stable, opaque ``thoughtSignature`` for a cassette: ``size`` bytes made
    from SHA-256 of its name, base64 encoded as the API sends it (a real one is a few
    hundred bytes to 2 KB of encrypted model state; a client only sends it back)."""
    data = b""
    while len(data) < size:
        data += hashlib.sha256(f"{name}:{len(data)}".encode()).digest()
    return base64.b64encode(data[:size]).decode()


def text_content(role: str, text: str) -> dict[str, Any]:
    """Return one wire ``Content`` holding one text part, e.g. a user's message."""
    return {"role": role, "parts": [{"text": text}]}


def paced_delays(count: int, *, first_ms: int, every_ms: int, jitter_ms: int) -> list[int]:
    """Return ``count`` chunk delays in ms: ``first_ms``, then ``every_ms`` plus a little jitter.

    The jitter cycles ``jitter_ms, 2 * jitter_ms, 0`` so the stream does not tick evenly.
    """
    return [first_ms if i == 0 else every_ms + jitter_ms * (i % 3) for i in range(count)]


def split_text(
    text: str,
    *,
    seed: int | str,
    first: tuple[int, int] = (3, 14),
    size: tuple[int, int] = (18, 72),
) -> list[str]:
    """Split ``text`` into irregular chunks, as a live stream does: boundaries fall anywhere.

    A live answer's chunks end wherever the model's tokens happen to stop, often in the
    middle of a word (``"The letter r appe"``, ``"ars three times"``); the first chunk is
    short, the rest vary in length. Deterministic for a given ``seed``.

    Args:
        text: The whole answer; the chunks join back to exactly this.
        seed: Seed of the chunk lengths (e.g. the cassette's name).
        first: Inclusive range of the first chunk's length, in characters.
        size: Inclusive range of every later chunk's length, in characters (the last
            chunk takes what is left, so it may be shorter).

    Returns:
        Non-empty strings whose concatenation is ``text`` (``[]`` for an empty text).

    Raises:
        ValueError: A range is empty or starts below 1.
    """
    for low, high in (first, size):
        if not 1 <= low <= high:
            raise ValueError(f"A chunk length range must have 1 <= low <= high, not {(low, high)}.")
    rng = random.Random(f"split:{seed}")
    chunks: list[str] = []
    start = 0
    while start < len(text):
        low, high = first if not chunks else size
        end = min(len(text), start + rng.randint(low, high))
        chunks.append(text[start:end])
        start = end
    return chunks


def stream_delays(
    count: int,
    *,
    seed: int | str,
    first_ms: tuple[int, int] = (800, 2500),
    gap_ms: tuple[int, int] = (40, 260),
) -> list[int]:
    """Return ``count`` chunk delays in ms: a thinking wait, then short irregular gaps.

    A thinking model says nothing until it has thought, so the first chunk comes after
    ``first_ms`` (time to first chunk, thinking included); later chunks follow ``gap_ms``
    apart, drawn at random with an occasional longer pause. Deterministic for a ``seed``.

    Args:
        count: Number of chunks.
        seed: Seed of the delays (e.g. the cassette's name).
        first_ms: Inclusive range of the first delay, in ms.
        gap_ms: Inclusive range of every later delay, in ms.

    Raises:
        ValueError: A range is empty or negative.
    """
    for low, high in (first_ms, gap_ms):
        if not 0 <= low <= high:
            raise ValueError(f"A delay range must have 0 <= low <= high, not {(low, high)}.")
    rng = random.Random(f"delays:{seed}")
    delays = []
    for i in range(count):
        if i == 0:
            delays.append(rng.randint(*first_ms))
        else:
            gap = rng.randint(*gap_ms)
            if rng.random() < 0.12:  # now and then the stream stalls a little longer
                gap += rng.randint(gap_ms[1] // 2, gap_ms[1])
            delays.append(gap)
    return delays


def thinking_tokens(first_delay_ms: int, *, overhead_ms: int = 350, per_second: int = 240) -> int:
    """Estimate the thinking tokens behind a time to first chunk: the wait beyond
    ``overhead_ms`` (network and prompt processing) at ``per_second`` tokens a second.

    At least 0. Used so an authored cassette's ``thoughtsTokenCount`` agrees with its
    first delay; not a measurement.
    """
    return max(0, round((first_delay_ms - overhead_ms) * per_second / 1000))


def usage_metadata(
    prompt_tokens: int,
    answer_tokens: int | None = None,
    *,
    thoughts: int = 0,
    prompt_details: bool = True,
    answer_details: dict[str, int] | None = None,
    service_tier: str | None = "standard",
) -> dict[str, Any]:
    """Return a chunk's ``usageMetadata``, as the API sends it while streaming.

    Keys in the API's order (the capture in ``tests/wire/generate/``): prompt, candidates,
    total, prompt details, candidates details, thoughts, service tier.

    Args:
        prompt_tokens: Tokens of the request.
        answer_tokens: Tokens of the answer so far (a running total); None for a chunk
            before any answer (a thought), which has no ``candidatesTokenCount``.
        thoughts: Thinking tokens (``thoughtsTokenCount``, counted in the total); 0 omits it.
        prompt_details: Add ``promptTokensDetails`` (all ``TEXT``).
        answer_details: ``candidatesTokensDetails`` as ``{modality: tokens}`` (last chunk).
        service_tier: ``serviceTier``; None omits it.
    """
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
    if answer_tokens is not None:
        usage["candidatesTokenCount"] = answer_tokens
    usage["totalTokenCount"] = prompt_tokens + (answer_tokens or 0) + thoughts
    if prompt_details:
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    if answer_details:
        usage["candidatesTokensDetails"] = [
            {"modality": modality, "tokenCount": tokens}
            for modality, tokens in answer_details.items()
        ]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if service_tier:
        usage["serviceTier"] = service_tier
    return usage


def _response(
    name: str, model: str, parts: list[dict[str, Any]], finish: str | None, usage: dict[str, Any]
) -> dict[str, Any]:
    """One ``GenerateContentResponse`` with the API's key order."""
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id(name),
    }


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

    As the live API streams (``tests/wire/generate/``): every chunk is a
    ``GenerateContentResponse`` with one candidate, running ``usageMetadata`` totals
    (``candidatesTokenCount`` grows with the answer; a thought-only chunk has none and
    no ``thoughtsTokenCount``), ``modelVersion`` and one ``responseId`` for the whole
    stream (:func:`response_id`). A thinking answer (``thoughts`` > 0) that completes,
    on a model with the rule ``generate.thought_signature_on_final_chunk``, ends with one
    more chunk: an empty text part carrying ``thoughtSignature``
    (:func:`thought_signature`) and the finish reason; otherwise the last chunk carries it.
    With the rule ``generate.function_call_signature``, the first ``functionCall`` part
    of a chunk carries a ``thoughtSignature`` (one is added if the part has none).

    Args:
        chunks: Each chunk's model parts; a string is one text part.
        delays_ms: The wait before each chunk, in ms (as many as ``chunks``).
        name: The cassette's name.
        model: The model version the responses name.
        prompt_tokens: Tokens of the request.
        answer_tokens: Tokens of the whole answer (the last chunk's running total).
        thoughts: Thinking tokens; 0 omits them (and the signature chunk).
        prompt_details: Add ``promptTokensDetails`` to every chunk's usage.
        answer_details: ``candidatesTokensDetails`` of the last chunk, ``{modality: tokens}``.
        complete: The answer ends: a finish reason and, with thinking, the signature
            chunk. False for a stream cut short (follow it with a ``break``).
        finish_reason: The finish reason; None omits it.

    Raises:
        ValueError: ``chunks`` and ``delays_ms`` differ in length.
    """
    parts_list = [[{"text": c}] if isinstance(c, str) else list(c) for c in chunks]
    if profile_for(model).has("generate.function_call_signature"):
        for i, parts in enumerate(parts_list):  # the first call of a chunk is signed
            at = next((j for j, p in enumerate(parts) if "functionCall" in p), None)
            if at is not None and "thoughtSignature" not in parts[at]:
                signature = thought_signature(f"{name}:{i}")
                parts[at] = {**parts[at], "thoughtSignature": signature}
    answers = [[p for p in parts if not p.get("thought")] for parts in parts_list]
    sizes = [sum(len(p.get("text", "")) or 1 for p in parts) for parts in answers]
    total, done = sum(sizes) or 1, 0
    rule = "generate.thought_signature_on_final_chunk"
    calls = any("functionCall" in p for parts in parts_list for p in parts)
    # A function call carries the signature itself; a text answer ends with a signed chunk.
    signed = complete and bool(finish_reason) and thoughts > 0 and not calls
    signed = signed and profile_for(model).has(rule)
    out: list[dict[str, Any]] = []
    for i, (parts, delay) in enumerate(zip(parts_list, delays_ms, strict=True)):
        last = complete and i == len(parts_list) - 1
        done += sizes[i] if answers[i] else 0
        usage = usage_metadata(
            prompt_tokens,
            max(1, round(answer_tokens * done / total)) if answers[i] or done else None,
            thoughts=thoughts if done else 0,
            prompt_details=prompt_details,
            answer_details=answer_details if last else None,
        )
        finish = finish_reason if last and not signed else None
        out.append({"delay_ms": delay, "response": _response(name, model, parts, finish, usage)})
    if signed:
        signature = [{"text": "", "thoughtSignature": thought_signature(name)}]
        usage = out[-1]["response"]["usageMetadata"]
        final = _response(name, model, signature, finish_reason, usage)
        out.append({"delay_ms": 30, "response": final})
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

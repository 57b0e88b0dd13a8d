"""Shared pieces of the authoring (``scripts/author.py``): the API's wire shapes inside a
chunk's ``response``, stream cutting and pacing, and the cassette writer.

Cassettes are the emulator's own pydantic models (:class:`GenerateCassette`, ...); the
writer lays them out as the shipped files are (``format`` first, ``faults`` last) and
checks each with :func:`quickstart_helpers.emulator.parse_cassette` (the SDK's models).
Development tooling, not part of the installed package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from quickstart_helpers.emulator import FORMAT, Chunk, GenerateCassette, parse_cassette
from quickstart_helpers.emulator._profiles import profile_for

#: A written file: its path under the repository root and its bytes.
Output = tuple[str, bytes]
#: The shipped files list a fault directive's keys in this order.
FAULT_KEYS = ("fault", "status", "times", "chunk", "at", "error", "at_byte", "turn", "after")


def estimate_tokens(text: str) -> int:
    """About 1.3 tokens per word of English, at least 1 (realistic usage, not a tokenizer)."""
    return max(1, math.ceil(len(text.split()) * 1.3))


def response_id(name: str) -> str:
    """A stable ``responseId`` in the API's form: 23 URL-safe base64 characters of SHA-1."""
    return base64.urlsafe_b64encode(hashlib.sha1(name.encode()).digest()).decode()[:23]


def thought_signature(name: str, size: int = 96) -> str:
    """A stable, opaque ``thoughtSignature``: ``size`` bytes from SHA-256 of ``name``, base64
    (a real one is encrypted model state a client only sends back)."""
    data = b""
    while len(data) < size:
        data += hashlib.sha256(f"{name}:{len(data)}".encode()).digest()
    return base64.b64encode(data[:size]).decode()


def text_content(role: str, text: str) -> dict[str, Any]:
    """One wire ``Content`` holding one text part."""
    return {"role": role, "parts": [{"text": text}]}


def paced_delays(count: int, *, first_ms: int, every_ms: int, jitter_ms: int) -> list[int]:
    """``first_ms``, then ``every_ms`` plus a jitter cycling ``jitter_ms, 2 * jitter_ms, 0``."""
    return [first_ms if i == 0 else every_ms + jitter_ms * (i % 3) for i in range(count)]


def split_text(
    text: str, *, seed: int | str, first: Sequence[int] = (3, 14), size: Sequence[int] = (18, 72)
) -> list[str]:
    """Cut ``text`` as a live stream does: a short first chunk (``first`` characters, an
    inclusive range), then pieces of ``size`` characters that often end mid-word.

    Deterministic for a ``seed``; the pieces join back to ``text``.

    Raises:
        ValueError: A range is empty or starts below 1.
    """
    for low, high in (first, size):
        if not 1 <= low <= high:
            raise ValueError(f"A chunk length range must have 1 <= low <= high, not {(low, high)}.")
    rng, chunks, start = random.Random(f"split:{seed}"), [], 0
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
    first_ms: Sequence[int] = (800, 2500),
    gap_ms: Sequence[int] = (40, 260),
) -> list[int]:
    """Chunk delays in ms: a thinking wait (``first_ms`` range), then irregular ``gap_ms``
    gaps with now and then a longer stall. Deterministic for a ``seed``.

    Raises:
        ValueError: A range is empty or negative.
    """
    for low, high in (first_ms, gap_ms):
        if not 0 <= low <= high:
            raise ValueError(f"A delay range must have 0 <= low <= high, not {(low, high)}.")
    rng, delays = random.Random(f"delays:{seed}"), []
    for i in range(count):
        if i == 0:
            delays.append(rng.randint(*first_ms))
        else:
            gap = rng.randint(*gap_ms)
            if rng.random() < 0.12:
                gap += rng.randint(gap_ms[1] // 2, gap_ms[1])
            delays.append(gap)
    return delays


def thinking_tokens(first_delay_ms: int, *, overhead_ms: int = 350, per_second: int = 240) -> int:
    """Thinking tokens behind a time to first chunk: the wait beyond ``overhead_ms`` at
    ``per_second`` tokens a second (at least 0; a model, not a measurement)."""
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
    """A chunk's ``usageMetadata`` in the API's key order (``tests/wire/generate/``).

    ``answer_tokens`` is the running total (None before any answer, e.g. a thought);
    ``thoughts`` 0 omits ``thoughtsTokenCount``; ``answer_details`` is
    ``{modality: tokens}`` for the last chunk; ``service_tier`` None omits it.
    """
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
    if answer_tokens is not None:
        usage["candidatesTokenCount"] = answer_tokens
    usage["totalTokenCount"] = prompt_tokens + (answer_tokens or 0) + thoughts
    if prompt_details:
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    if answer_details:
        usage["candidatesTokensDetails"] = [
            {"modality": m, "tokenCount": t} for m, t in answer_details.items()
        ]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if service_tier:
        usage["serviceTier"] = service_tier
    return usage


def response(
    name: str, model: str, candidate: dict[str, Any] | None, usage: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """One ``GenerateContentResponse``: ``candidate`` (``index`` 0 added after its
    ``finishReason``, before ``safetyRatings``), ``extra`` (e.g. ``promptFeedback``),
    usage, ``modelVersion`` and the stream's :func:`response_id`."""
    out: dict[str, Any] = {}
    if candidate is not None:
        ratings = {k: candidate.pop(k) for k in ["safetyRatings"] if k in candidate}
        out["candidates"] = [{**candidate, "index": 0, **ratings}]
    out |= extra
    return out | {"usageMetadata": usage, "modelVersion": model, "responseId": response_id(name)}


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
) -> list[Chunk]:
    """One streamed answer as the live API sends it (``tests/wire/generate/``).

    Each chunk's parts (a string is one text part) with running ``usageMetadata``
    totals (a thought-only chunk has no ``candidatesTokenCount``), ``modelVersion`` and
    one ``responseId``. A completed thinking answer on a model with
    ``generate.thought_signature_on_final_chunk`` ends with an extra chunk: an empty
    text part carrying ``thoughtSignature``, and the finish reason; with
    ``generate.function_call_signature`` a chunk's first ``functionCall`` part is signed.
    ``complete`` False: a stream cut short (no finish reason, no signed chunk).

    Raises:
        ValueError: ``chunks`` and ``delays_ms`` differ in length.
    """
    profile = profile_for(model)
    parts_list = [[{"text": c}] if isinstance(c, str) else list(c) for c in chunks]
    if profile.has("generate.function_call_signature"):
        for i, parts in enumerate(parts_list):
            at = next((j for j, p in enumerate(parts) if "functionCall" in p), None)
            if at is not None and "thoughtSignature" not in parts[at]:
                parts[at] = {**parts[at], "thoughtSignature": thought_signature(f"{name}:{i}")}
    answers = [[p for p in parts if not p.get("thought")] for parts in parts_list]
    sizes = [sum(len(p.get("text", "")) or 1 for p in parts) for parts in answers]
    total, done = sum(sizes) or 1, 0
    calls = any("functionCall" in p for parts in parts_list for p in parts)
    signed = complete and bool(finish_reason) and thoughts > 0 and not calls
    signed = signed and profile.has("generate.thought_signature_on_final_chunk")
    out = []
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
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if last and not signed and finish_reason:
            candidate["finishReason"] = finish_reason
        out.append(Chunk(delay_ms=delay, response=response(name, model, candidate, usage)))
    if signed:
        signature = [{"text": "", "thoughtSignature": thought_signature(name)}]
        candidate = {"content": {"parts": signature, "role": "model"}}
        candidate["finishReason"] = finish_reason
        usage = out[-1].response["usageMetadata"]  # type: ignore[index]
        out.append(Chunk(delay_ms=30, response=response(name, model, candidate, usage)))
    return out


def generate_cassette(
    name: str,
    description: str,
    model: str,
    request: dict[str, Any],
    chunks: list[Chunk],
    **fields: Any,
) -> GenerateCassette:
    """A ``generate`` cassette model (``fields``: e.g. ``faults``, or ``kind="openai"``)."""
    return GenerateCassette(
        format=FORMAT,
        name=name,
        kind=fields.pop("kind", "generate"),
        description=description,
        model=model,
        request=request,
        chunks=chunks,
        **fields,
    )


def _dumps(value: Any, indent: int, one_line: Collection[str], level: int = 0) -> str:
    """``json.dumps(value, indent=indent, ensure_ascii=False)``, but each item of a list under
    a key in ``one_line`` on one compact line (short, readable diffs)."""
    pad, end = " " * indent * (level + 1), " " * indent * level
    if isinstance(value, dict) and value:
        items = []
        for key, item in value.items():
            if key in one_line and isinstance(item, list) and item:
                dump = [json.dumps(v, ensure_ascii=False, separators=(", ", ": ")) for v in item]
                text = "[\n" + ",\n".join(pad + " " * indent + v for v in dump) + f"\n{pad}]"
            else:
                text = _dumps(item, indent, one_line, level + 1)
            items.append(f"{pad}{json.dumps(key, ensure_ascii=False)}: {text}")
        return "{\n" + ",\n".join(items) + f"\n{end}}}"
    if isinstance(value, list) and value:
        items = [pad + _dumps(v, indent, one_line, level + 1) for v in value]
        return "[\n" + ",\n".join(items) + f"\n{end}]"
    return json.dumps(value, ensure_ascii=False)


def cassette_file(
    folder: str, cassette: Any, *, indent: int = 2, one_line: Collection[str] = ()
) -> Output:
    """A cassette model as ``(folder/<name>.json, bytes)``, checked with ``parse_cassette``.

    The fields set are written in the model's order, ``faults`` last, a fault's keys in
    :data:`FAULT_KEYS` order (the shipped layout).

    Raises:
        CassetteError: The SDK's models refuse it.
    """
    data = cassette.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if "faults" in data:
        data["faults"] = [
            {k: f[k] for k in FAULT_KEYS + tuple(f) if k in f} for f in data.pop("faults")
        ]
    path = f"{folder}/{cassette.name}.json"
    parse_cassette(data, path)
    return path, (_dumps(data, indent, one_line) + "\n").encode()


def write_cassettes(folder: str | Path, cassettes: Iterable[Any], **layout: Any) -> list[Path]:
    """Write each cassette model to ``folder/<name>.json`` (see :func:`cassette_file`)."""
    files = [cassette_file(str(folder), c, **layout) for c in cassettes]
    Path(folder).mkdir(parents=True, exist_ok=True)
    for path, data in files:
        Path(path).write_bytes(data)
    return [Path(path) for path, _ in files]

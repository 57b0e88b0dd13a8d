"""Reading and writing cassette files: the format (:mod:`._cassette`), and recorded
answers checked with the SDK's own models (which refuse unknown fields)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..errors import CassetteError
from ._cassette import AnyCassette, Cassette, CountTokensCassette, InteractionsCassette
from ._interactions_schema import error_lines, event_problems, interaction_problems

_ADAPTER: TypeAdapter[AnyCassette] = TypeAdapter(Cassette)


def interactions_problems(cassette: InteractionsCassette) -> list[str]:
    """Check an ``interactions`` cassette with the SDK's models and for consistency."""
    problems = interaction_problems(cassette.interaction, "interaction")
    if not cassette.interaction_id:
        problems.append("interaction.id: the recorded interaction needs its id")
    seen: set[str] = set()
    for i, event in enumerate(e.event for e in cassette.events):
        if event is None:
            continue
        where, event_id = f"events[{i}].event", event.get("event_id")
        problems += event_problems(event, where)
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


def _recorded(cassette: AnyCassette) -> Iterator[tuple[type[BaseModel], Any, str]]:
    from google.genai import types

    for i, chunk in enumerate(getattr(cassette, "chunks", [])):
        if chunk.response is not None and cassette.kind == "generate":
            yield types.GenerateContentResponse, chunk.response, f"chunks[{i}].response"
    for t, turn in enumerate(getattr(cassette, "turns", [])):
        for i, m in enumerate(turn.messages):
            yield types.LiveServerMessage, m.message, f"turns[{t}].messages[{i}].message"
    if isinstance(cassette, CountTokensCassette) and cassette.response is not None:
        for i, detail in enumerate(cassette.response.get("promptTokensDetails", [])):
            yield types.ModalityTokenCount, detail, f"response.promptTokensDetails[{i}]"


def _sdk_problems(cassette: AnyCassette) -> list[str]:
    problems = []
    for model, data, where in _recorded(cassette):
        usage = data.get("usageMetadata") if isinstance(data, dict) else None
        if isinstance(usage, dict) and "serviceTier" in usage:
            # The API sends usageMetadata.serviceTier (tests/wire/generate/); the SDK has
            # no field for it yet and drops it, as it drops any field it does not know.
            data = {**data, "usageMetadata": {k: v for k, v in usage.items() if k != "serviceTier"}}
        try:
            model.model_validate(data)
        except ValidationError as exc:
            problems += error_lines(exc, where)
    return problems


def parse_cassette(
    data: Any, source: str = "<memory>", *, interactions: bool = True
) -> AnyCassette:
    """Validate one cassette's parsed JSON and return the model, or raise
    :class:`CassetteError` naming ``source`` and each bad field's path (``chunks[2]...``);
    ``interactions=False`` leaves an ``interactions`` cassette's SDK check to the caller."""
    try:
        cassette = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise_problems(source, error_lines(exc), "")
    if not isinstance(cassette, InteractionsCassette):
        raise_problems(source, _sdk_problems(cassette))
    elif interactions:
        raise_problems(source, interactions_problems(cassette))
    return cassette


def raise_problems(
    source: str, problems: list[str], why: str = " (the SDK's models refuse it)"
) -> None:
    """Raise :class:`CassetteError` naming ``source`` and listing ``problems``, if any."""
    if problems:
        text = "\n  ".join(problems)
        raise CassetteError(f"{source} is not a valid cassette{why}:\n  {text}") from None


def load_cassette(path: str | os.PathLike[str], *, interactions: bool = True) -> AnyCassette:
    """Read and validate one cassette file (:func:`parse_cassette`; unreadable: OSError)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CassetteError(f"{path} is not valid JSON: {exc}") from None
    cassette = parse_cassette(data, str(path), interactions=interactions)
    cassette._path = path
    return cassette


def cassette_json(cassette: AnyCassette) -> dict[str, Any]:
    """Return a cassette's file JSON: ``format`` first, fields at their defaults omitted."""
    data = cassette.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return cassette.model_dump(mode="json", include={"format", "name", "kind"}) | data


def dump_cassette(cassette: AnyCassette, *, indent: int | None = 1) -> str:
    """Return a cassette's file text (JSON, UTF-8 kept, a final newline)."""
    return json.dumps(cassette_json(cassette), indent=indent, ensure_ascii=False) + "\n"

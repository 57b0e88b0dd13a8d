"""Strict checks of Interactions API JSON with the SDK's own models.

The SDK's models (``google.genai.interactions``) accept unknown fields and keep unknown variants
(``UnknownStep``, ...) so a newer server never breaks an older client; a recording must be
stricter: validated with those models, every unknown field and variant reported. Two fields of
real streams the models lack are allowed and checked with the SDK models of their shape
(``docs/emulator-rules.md``, "Interactions API"): ``metadata`` on ``interaction.created``,
``metadata.usage`` on ``step.delta``."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

__all__ = ["error_lines", "event_problems", "interaction_problems"]


@cache
def _event_adapter() -> TypeAdapter[Any]:
    from google.genai.interactions import InteractionSSEEvent

    return TypeAdapter(InteractionSSEEvent)


def _captured() -> dict[tuple[str, str], type[BaseModel]]:
    """(SDK model, field) of real-capture fields the model lacks -> the model of its value."""
    from google.genai.interactions import StepDeltaMetadata, Usage

    return {
        ("InteractionCreatedEvent", "metadata"): StepDeltaMetadata,
        ("StepDeltaMetadata", "usage"): Usage,
    }


def error_lines(exc: ValidationError, where: str = "") -> list[str]:
    """``path: message`` per error, the path after ``where``: ``chunks[2].response``."""
    lines = []
    for error in exc.errors():
        path = where
        for item in error["loc"]:
            path += f"[{item}]" if isinstance(item, int) else (f".{item}" if path else str(item))
        lines.append(f"{path or '(top level)'}: {error['msg']}")
    return lines


def _walk(value: Any, where: str, problems: list[str]) -> None:
    if isinstance(value, BaseModel):
        name = type(value).__name__
        if name.startswith("Unknown"):
            raw = getattr(value, "raw", None)
            kind = raw.get("type") or raw.get("event_type") if isinstance(raw, dict) else None
            problems.append(f"{where}: unknown variant {kind!r} (the SDK's {name})")
            return
        for key, extra in (value.__pydantic_extra__ or {}).items():
            model = _captured().get((name, key))
            if model is None:
                problems.append(f"{where}.{key}: unknown field (not in the SDK's {name})")
            else:
                problems += _check(model.model_validate, extra, f"{where}.{key}")
        for field_name in type(value).model_fields:
            # Read the stored value: getattr warns for fields the SDK deprecated.
            _walk(value.__dict__.get(field_name), f"{where}.{field_name}", problems)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{where}[{i}]", problems)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, BaseModel | list):
                _walk(item, f"{where}.{key}", problems)


def _check(validate: Any, data: Any, where: str) -> list[str]:
    try:
        parsed = validate(data)
    except ValidationError as exc:
        return error_lines(exc, where)
    problems: list[str] = []
    _walk(parsed, where, problems)
    return problems


def event_problems(event: dict[str, Any], where: str) -> list[str]:
    """``where.path: problem`` lines (none when valid) for one event's ``data:`` JSON, e.g.
    ``{"event_type": "step.delta", ...}``; ``where``: the event's place in its file."""
    return _check(_event_adapter().validate_python, event, where)


def interaction_problems(interaction: dict[str, Any], where: str) -> list[str]:
    """Return ``path: problem`` lines for one ``Interaction`` resource's JSON."""
    from google.genai.interactions import Interaction

    return _check(Interaction.model_validate, interaction, where)

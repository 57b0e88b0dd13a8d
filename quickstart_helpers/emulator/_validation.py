"""Request validation the way the live API parses JSON, against the SDK's own types.

The schema is not written here: a ``generateContent`` body is checked against the
google-genai SDK's pydantic models (``types.Content``, ``types.Tool``,
``types.ToolConfig``, ``types.SafetySetting``, and for ``generationConfig`` the fields
of ``types.GenerationConfig`` plus the generation fields of
``types.GenerateContentConfig`` that the SDK sends inside ``generationConfig``). Only
the top level of the REST ``GenerateContentRequest`` (which SDK type each field holds)
is listed in :data:`REQUEST_FIELDS`.

Like the API's JSON parser (proto3 JSON):

- a field may be spelled in lowerCamelCase or snake_case;
- a repeated field may be given as one object (``"parts": {"text": "hi"}``);
- enum values are matched without regard to case (the SDK's enums do the same);
- an unknown field is refused with 400 ``INVALID_ARGUMENT`` and the API's message
  ``Invalid JSON payload received. Unknown name "generationConfg": Cannot find field.``
  (``... at 'generation_config': ...`` below the top level); a bad enum or value with
  ``Invalid value at 'generation_config.response_modalities[0]' (Modality), "FOO"``.
  Every problem is listed, one per line, and in the ``google.rpc.BadRequest`` detail.
"""

from __future__ import annotations

import enum
import functools
import json
import re
import types as pytypes
import typing
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.alias_generators import to_camel

from ..errors import RequestInvalid

__all__ = [
    "REQUEST_FIELDS",
    "RequestInvalid",
    "invalid_argument",
    "normalize_request",
    "request_model",
    "count_tokens_model",
    "validate_count_tokens_request",
    "validate_generate_request",
]

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")
#: Fields of ``GenerateContentConfig`` that configure the SDK itself and never go on the wire.
_CLIENT_ONLY = frozenset(
    {"http_options", "should_return_http_response", "automatic_function_calling"}
)


def _snake(name: str) -> str:
    return _SNAKE.sub("_", name).lower()


#: The pydantic settings of the request models built here: the SDK's (camelCase or
#: snake_case names, unknown names refused, bytes as base64).
_REQUEST_CONFIG = ConfigDict(
    extra="forbid",
    alias_generator=to_camel,
    populate_by_name=True,
    arbitrary_types_allowed=True,
    val_json_bytes="base64",
)


@functools.cache
def _generation_config_model() -> type[BaseModel]:
    """``types.GenerationConfig`` plus the generation fields only ``GenerateContentConfig`` has."""
    from google.genai import types

    top = {_snake(name) for name in REQUEST_FIELDS}
    extra: dict[str, Any] = {}
    for name, info in types.GenerateContentConfig.model_fields.items():
        if name in types.GenerationConfig.model_fields or name in top or name in _CLIENT_ONLY:
            continue
        extra[name] = (info.annotation, None)
    return create_model("WireGenerationConfig", __base__=types.GenerationConfig, **extra)


#: The REST ``GenerateContentRequest``'s top-level fields and the SDK type of each (the
#: ones ``_GenerateContentConfig_to_mldev`` in the SDK moves out of ``generationConfig``).
REQUEST_FIELDS: dict[str, str] = {
    "model": "str",
    "contents": "list[types.Content]",
    "systemInstruction": "types.Content",
    "tools": "list[types.Tool]",
    "toolConfig": "types.ToolConfig",
    "safetySettings": "list[types.SafetySetting]",
    "cachedContent": "str",
    "labels": "dict[str, str]",
    "serviceTier": "types.GenerateContentConfig.service_tier",
    "store": "bool",
    "generationConfig": "types.GenerationConfig (+ GenerateContentConfig's generation fields)",
}


@functools.cache
def request_model() -> type[BaseModel]:
    """Return the pydantic model of a ``generateContent`` body, built from the SDK's types."""
    from google.genai import types

    config = types.GenerateContentConfig.model_fields
    fields: dict[str, Any] = {
        "model": (str | None, None),
        "contents": (list[types.Content] | None, None),
        "system_instruction": (types.Content | None, None),
        "tools": (list[types.Tool] | None, None),
        "tool_config": (types.ToolConfig | None, None),
        "safety_settings": (list[types.SafetySetting] | None, None),
        "cached_content": (str | None, None),
        "labels": (dict[str, str] | None, None),
        "service_tier": (config["service_tier"].annotation, None),
        "store": (bool | None, None),
        "generation_config": (_generation_config_model() | None, None),
    }
    assert {to_camel(name) for name in fields} == set(REQUEST_FIELDS)
    return create_model(
        "GenerateContentRequest",
        __config__=_REQUEST_CONFIG,
        **fields,
    )


# -- the pre-pass: unknown names, enums, single objects for lists -------------------------


def _unwrap(annotation: Any) -> Any:
    """Strip ``Optional``/``Annotated`` from an annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, pytypes.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


@functools.cache
def _field_index(model: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    """A model's fields by name and by alias (or camelCase name): ``(name, annotation)``."""
    index: dict[str, tuple[str, Any]] = {}
    for name, info in model.model_fields.items():
        index[name] = (name, info.annotation)
        index[info.alias or to_camel(name)] = (name, info.annotation)
    return index


#: What the pre-pass does with a value of some annotation: ``("list", item annotation)``,
#: ``("model", field index)``, ``("enum", (enum name, upper-cased values and names))``
#: or ``("value", None)``.
_Shape = tuple[str, Any]


def _shape_of(annotation: Any) -> _Shape:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return ("list", item)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("model", _field_index(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        names = {str(m.value).upper() for m in annotation} | {m.name.upper() for m in annotation}
        return ("enum", (annotation.__name__, frozenset(names)))
    return ("value", None)


_shape_cached = functools.lru_cache(maxsize=4096)(_shape_of)


def _shape(annotation: Any) -> _Shape:
    """:func:`_shape_of`, computed once per annotation (the SDK's types do not change)."""
    try:
        return _shape_cached(annotation)
    except TypeError:  # an annotation that cannot be a dictionary key
        return _shape_of(annotation)


def _walk(annotation: Any, value: Any, path: str, problems: list[tuple[str, str]]) -> Any:
    """Return ``value`` with single objects wrapped for list fields; collect problems."""
    kind, detail = _shape(annotation)
    if kind == "list":
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
        if items is None:
            return value
        return [_walk(detail, v, f"{path}[{i}]", problems) for i, v in enumerate(items)]
    if kind == "model":
        if not isinstance(value, dict):
            return value
        out = {}
        for key, item in value.items():
            if key not in detail:
                where = f" at '{path}'" if path else ""
                problems.append(
                    (
                        path,
                        f'Invalid JSON payload received. Unknown name "{key}"{where}: '
                        "Cannot find field.",
                    )
                )
                continue
            name, field_type = detail[key]
            child = f"{path}.{name}" if path else name
            out[key] = _walk(field_type, item, child, problems)
        return out
    if kind == "enum":
        enum_name, names = detail
        if not isinstance(value, str) or value.upper() not in names:
            problems.append((path, f"Invalid value at '{path}' ({enum_name}), {json.dumps(value)}"))
        return value
    return value


def _loc_path(loc: tuple[Any, ...]) -> str:
    text = ""
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        elif isinstance(item, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", item):
            text += f".{_snake(item)}" if text else _snake(item)
    return text


def normalize_request(body: Any, model: type[BaseModel] | None = None) -> dict[str, Any]:
    """Validate a ``generateContent`` body; return it with single objects put in lists.

    Args:
        body: The parsed JSON body.
        model: The request's pydantic model; defaults to :func:`request_model`.

    Returns:
        The body as sent (camelCase or snake_case kept), with every repeated field that
        was given as one object turned into a one-item list.

    Raises:
        RequestInvalid: The body is not an object, names an unknown field, or holds a
            bad enum or value; every problem is listed.
    """
    if not isinstance(body, dict):
        kind = "an array" if isinstance(body, list) else json.dumps(body)
        raise RequestInvalid(
            [("", f"Invalid JSON payload received. Expected an object, got {kind}.")]
        )
    model = model or request_model()
    problems: list[tuple[str, str]] = []
    normalized = _walk(model, body, "", problems)
    if problems:
        raise RequestInvalid(problems)
    try:
        # JSON mode, as the API parses it (bytes are base64); the model's own validator.
        model.model_validate_json(json.dumps(normalized))
    except ValidationError as exc:
        violations = []
        for error in exc.errors():
            where = _loc_path(error["loc"])
            shown = json.dumps(error.get("input"), default=str)[:80]
            violations.append(
                (where, f"Invalid value at '{where}' ({error['msg']}), {shown}".strip())
            )
        raise RequestInvalid(violations) from None
    return normalized


def invalid_argument(error: RequestInvalid) -> web.Response:
    """Return the API's 400 ``INVALID_ARGUMENT`` answer for a refused request."""
    body = {
        "error": {
            "code": 400,
            "message": str(error),
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": field, "description": description}
                        if field
                        else {"description": description}
                        for field, description in error.violations
                    ],
                }
            ],
        }
    }
    return web.json_response(body, status=400)


def validate_generate_request(body: Any) -> tuple[dict[str, Any] | None, web.Response | None]:
    """Return ``(normalized body, None)`` or ``(None, the API's 400 answer)``."""
    try:
        return normalize_request(body), None
    except RequestInvalid as error:
        return None, invalid_argument(error)


@functools.cache
def count_tokens_model() -> type[BaseModel]:
    """Return the pydantic model of a ``countTokens`` body (``contents`` or a whole request)."""
    from google.genai import types

    return create_model(
        "CountTokensRequest",
        __config__=_REQUEST_CONFIG,
        contents=(list[types.Content] | None, None),
        generate_content_request=(request_model() | None, None),
    )


def validate_count_tokens_request(
    body: Any,
) -> tuple[dict[str, Any] | None, web.Response | None]:
    """Like :func:`validate_generate_request`, for a ``countTokens`` body."""
    try:
        return normalize_request(body, count_tokens_model()), None
    except RequestInvalid as error:
        return None, invalid_argument(error)

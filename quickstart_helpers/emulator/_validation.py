"""Request validation the way the live API parses JSON, against the SDK's own types.

The schema is not written here: a ``generateContent`` body is checked with the google-genai
SDK's pydantic models (``types.Content``, ``types.Tool``, ``types.ToolConfig``,
``types.SafetySetting``, and for ``generationConfig`` the fields of
``types.GenerationConfig`` plus the generation fields of ``types.GenerateContentConfig``
that the SDK sends inside ``generationConfig``). Only the top level of the REST
``GenerateContentRequest`` (which SDK type each field holds) is listed in
:data:`REQUEST_FIELDS`.

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
import warnings
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.alias_generators import to_camel

from ..errors import RequestInvalid
from ._protocol import error_response

__all__ = [
    "REQUEST_FIELDS",
    "RequestInvalid",
    "count_tokens_model",
    "invalid_argument",
    "normalize_request",
    "request_model",
    "validate_count_tokens_request",
    "validate_generate_request",
]

#: Fields of ``GenerateContentConfig`` that configure the SDK itself and never go on the wire.
_CLIENT_ONLY = frozenset(
    {"http_options", "should_return_http_response", "automatic_function_calling"}
)

#: The pydantic settings of the request models built here: the SDK's (camelCase or
#: snake_case names, unknown names refused, bytes as base64).
_REQUEST_CONFIG = ConfigDict(
    extra="forbid",
    alias_generator=to_camel,
    populate_by_name=True,
    arbitrary_types_allowed=True,
    val_json_bytes="base64",
)

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


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@functools.cache
def request_model() -> type[BaseModel]:
    """Return the pydantic model of a ``generateContent`` body, built from the SDK's types."""
    from google.genai import types

    config = types.GenerateContentConfig.model_fields
    top = {_snake(name) for name in REQUEST_FIELDS}
    extra = {
        name: (info.annotation, None)
        for name, info in config.items()
        if name not in set(types.GenerationConfig.model_fields) | top | _CLIENT_ONLY
    }
    generation = create_model("WireGenerationConfig", __base__=types.GenerationConfig, **extra)
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
        "generation_config": (generation | None, None),
    }
    assert {to_camel(name) for name in fields} == set(REQUEST_FIELDS)
    return create_model("GenerateContentRequest", __config__=_REQUEST_CONFIG, **fields)


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


def _path(loc: tuple[Any, ...]) -> str:
    """A pydantic location as the API names a field, e.g. ``contents[0].parts[0]``."""
    text = ""
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        elif isinstance(item, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", item):
            text += f".{_snake(item)}" if text else _snake(item)
    return text


def _bad_enums(value: Any, path: str, problems: list[tuple[str, str]]) -> None:
    """Collect enum values the SDK let through (its enums accept unknown values, with a warning)."""
    if isinstance(value, enum.Enum):
        if value not in type(value).__members__.values():
            message = (
                f"Invalid value at '{path}' ({type(value).__name__}), {json.dumps(value.value)}"
            )
            problems.append((path, message))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            child = getattr(value, name)
            if child is not None:
                _bad_enums(child, f"{path}.{name}" if path else name, problems)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _bad_enums(item, f"{path}[{i}]", problems)


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
    body = json.loads(json.dumps(body))  # a copy to wrap single objects in
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an unknown enum value: checked below
                parsed = model.model_validate_json(json.dumps(body))
        except ValidationError as exc:
            errors = exc.errors()
            wrapped = False
            for error in errors:  # one object given for a list: wrap it, validate again
                if error["type"] == "list_type" and isinstance(error["input"], dict):
                    *parents, key = error["loc"]
                    functools.reduce(lambda node, k: node[k], parents, body)[key] = [error["input"]]
                    wrapped = True
            if wrapped:
                continue
            raise RequestInvalid([_violation(error) for error in errors]) from None
        problems: list[tuple[str, str]] = []
        _bad_enums(parsed, "", problems)
        if problems:
            raise RequestInvalid(problems)
        return body


def _violation(error: Any) -> tuple[str, str]:
    """One pydantic error as the API's ``(field, description)``."""
    if error["type"] == "extra_forbidden":
        where, name = _path(error["loc"][:-1]), error["loc"][-1]
        at = f" at '{where}'" if where else ""
        return (
            where,
            f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.',
        )
    where = _path(error["loc"])
    shown = json.dumps(error.get("input"), default=str)[:80]
    return where, f"Invalid value at '{where}' ({error['msg']}), {shown}"


def invalid_argument(error: RequestInvalid) -> web.Response:
    """Return the API's 400 ``INVALID_ARGUMENT`` answer for a refused request."""
    violations = [
        {"field": field, "description": text} if field else {"description": text}
        for field, text in error.violations
    ]
    detail = {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}
    body = {
        "error": {
            "code": 400,
            "message": str(error),
            "status": "INVALID_ARGUMENT",
            "details": [detail],
        }
    }
    return error_response(body, 400)


def validate_generate_request(body: Any) -> tuple[dict[str, Any] | None, web.Response | None]:
    """Return ``(normalized body, None)`` or ``(None, the API's 400 answer)``."""
    try:
        return normalize_request(body), None
    except RequestInvalid as error:
        return None, invalid_argument(error)


def validate_count_tokens_request(
    body: Any,
) -> tuple[dict[str, Any] | None, web.Response | None]:
    """Like :func:`validate_generate_request`, for a ``countTokens`` body."""
    try:
        return normalize_request(body, count_tokens_model()), None
    except RequestInvalid as error:
        return None, invalid_argument(error)

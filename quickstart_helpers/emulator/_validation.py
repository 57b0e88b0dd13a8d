"""Request bodies validated as the live API parses JSON (proto3), with the SDK's types.

Accepted: lowerCamelCase or snake_case field names, one object for a repeated field, enum values
in any case. Refused (400 ``INVALID_ARGUMENT``): an unknown field (``Invalid JSON payload
received. Unknown name "generationConfg" [at 'generation_config']: Cannot find field.``), a bad
value (``Invalid value at 'generation_config.response_modalities[0]' (Modality), "FOO"``)."""

from __future__ import annotations

import enum
import functools
import json
import re
import types
import typing
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError, create_model
from pydantic.alias_generators import to_camel, to_snake

from ..errors import RequestInvalid
from ._protocol import RPC_TYPE, api_error, parse_json, to_json

#: Fields of ``GenerateContentConfig`` that configure the SDK itself and never go on the wire.
_CLIENT_ONLY = {"http_options", "should_return_http_response", "automatic_function_calling"}


@functools.cache
def request_model() -> type[BaseModel]:
    """Return the pydantic model of a ``generateContent`` body, built from the SDK's types
    on the SDK's base model (either spelling, unknown names refused, bytes as base64)."""
    from google.genai import _common, types

    config = types.GenerateContentConfig.model_fields
    # The REST request's top level; the SDK moves these out of its config.
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
    }
    known = set(types.GenerationConfig.model_fields) | set(fields) | _CLIENT_ONLY
    extra = {n: (info.annotation, None) for n, info in config.items() if n not in known}
    generation = create_model("WireGenerationConfig", __base__=types.GenerationConfig, **extra)
    fields["generation_config"] = (generation | None, None)
    return create_model("GenerateContentRequest", __base__=_common.BaseModel, **fields)


@functools.cache
def count_tokens_model() -> type[BaseModel]:
    """Return the pydantic model of a ``countTokens`` body (``contents`` or a whole request)."""
    from google.genai import _common, types

    fields = {"contents": (list[types.Content] | None, None)}
    fields["generate_content_request"] = (request_model() | None, None)
    return create_model("CountTokensRequest", __base__=_common.BaseModel, **fields)


def _path(loc: tuple[Any, ...]) -> str:
    """A pydantic location as the API names a field, e.g. ``contents[0].parts[0]``."""
    text = ""
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        elif isinstance(item, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", item):
            text += f".{to_snake(item)}" if text else to_snake(item)
    return text


def _bad_enums(value: Any, kind: Any, path: str, problems: list[tuple[str, str]]) -> None:
    """Collect the values in JSON ``value`` (of type ``kind``) that the SDK's enums would
    take with a warning: looked for before validation, as silencing a warning swaps state of
    the whole process (``warnings.catch_warnings``), unsafe in two worker threads at once."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        for arg in args:
            _bad_enums(value, arg, path, problems)
    elif typing.get_origin(kind) is list and isinstance(value, list | dict):
        for i, item in enumerate(value if isinstance(value, list) else [value]):  # one = [one]
            _bad_enums(item, args[0], f"{path}[{i}]", problems)
    elif typing.get_origin(kind) is dict and isinstance(value, dict):
        for key, item in value.items():
            _bad_enums(item, args[1], f"{path}.{key}", problems)
    elif isinstance(kind, type) and issubclass(kind, BaseModel) and isinstance(value, dict):
        for key, item in value.items():
            if (found := _fields(kind).get(key)) is not None:
                _bad_enums(item, found[1], f"{path}.{found[0]}" if path else found[0], problems)
    elif isinstance(kind, type) and issubclass(kind, enum.Enum) and isinstance(value, str):
        names, known = kind.__members__, kind._value2member_map_  # by name: in any case
        if value not in known and {value.upper(), value.lower()}.isdisjoint(names):
            problems.append(
                (path, f"Invalid value at '{path}' ({kind.__name__}), {json.dumps(value)}")
            )


@functools.cache
def _fields(model: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    """``(name, type)`` of a model's fields, by either spelling of the name."""
    return {s: (n, f.annotation) for n, f in model.model_fields.items() for s in (n, to_camel(n))}


def validate_generate_request(
    body: Any, model: type[BaseModel] | None = None
) -> tuple[dict[str, Any] | None, web.Response | None]:
    """Validate a ``generateContent`` body (``model``: default :func:`request_model`):
    ``(body as sent, None)`` with each repeated field given as one object made a list, or
    ``(None, the API's 400)`` listing every problem (not an object, an unknown field, a bad
    enum or value) one per line and in a ``google.rpc.BadRequest`` detail."""
    try:
        return _normalize(body, model or request_model()), None
    except RequestInvalid as error:
        violations = [
            {"field": field, "description": text} if field else {"description": text}
            for field, text in error.violations
        ]
        details = [{"@type": RPC_TYPE + "BadRequest", "fieldViolations": violations}]
        return None, api_error(400, "INVALID_ARGUMENT", str(error), details=details)


def _normalize(body: Any, model: type[BaseModel]) -> dict[str, Any]:
    if not isinstance(body, dict):
        kind = "an array" if isinstance(body, list) else json.dumps(body)
        problem = f"Invalid JSON payload received. Expected an object, got {kind}."
        raise RequestInvalid([("", problem)])
    problems: list[tuple[str, str]] = []
    _bad_enums(body, model, "", problems)
    if problems:
        raise RequestInvalid(problems)
    text, copied = to_json(body), False
    while True:
        try:
            model.model_validate_json(text)
        except ValidationError as exc:
            errs = exc.errors()
            singles = [e for e in errs if e["type"] == "list_type" and isinstance(e["input"], dict)]
            if not singles:
                raise RequestInvalid([violation(error) for error in errs]) from None
            if not copied:  # a copy to wrap single objects in
                body, copied = parse_json(text)[0], True
            for error in singles:  # one object given for a list: wrap it, validate again
                *parents, key = error["loc"]
                functools.reduce(lambda node, k: node[k], parents, body)[key] = [error["input"]]
            text = to_json(body)
            continue
        return body


def violation(error: Any) -> tuple[str, str]:
    """One pydantic error as the API's ``(field, description)``."""
    if error["type"] == "extra_forbidden":
        where, name = _path(error["loc"][:-1]), error["loc"][-1]
        at = f" at '{where}'" if where else ""
        unknown = f'Unknown name "{name}"{at}: Cannot find field.'
        return where, f"Invalid JSON payload received. {unknown}"
    where, shown = _path(error["loc"]), json.dumps(error.get("input"), default=str)[:80]
    return where, f"Invalid value at '{where}' ({error['msg']}), {shown}"

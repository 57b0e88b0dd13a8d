"""The emulator's model endpoints: ``models.list``, ``models.get`` and ``countTokens``.

- ``GET /{version}/models``: the models the loaded cassettes use, paged like the API
  (``pageSize``, default 50, at most 1000; ``pageToken`` from the previous page's
  ``nextPageToken``). Each is the API's Model JSON, copied from the live API's answers
  into ``data/models.json``; a cassette model missing there is listed with its name
  and the methods its cassettes serve, nothing more.
- ``GET /{version}/models/{model}``: one of those, or 404 ``NOT_FOUND``.
- ``POST /{version}/models/{model}:countTokens``: ``{"totalTokens": N}`` where N is
  the ``promptTokenCount`` recorded by the ``generate`` cassette whose request has
  these contents (and system instruction, tools), or 404 ``NOT_FOUND`` saying how to
  record one. No count is ever estimated.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._cassettes import GenerateCassette, LiveCassette, prompt_text, request_key
from ._protocol import api_error, bare_model, key_error, short
from ._validation import validate_count_tokens_request

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "add_routes", "catalog", "count_tokens"]

#: Models per page when the request names no ``pageSize`` (the API's default).
DEFAULT_PAGE_SIZE = 50
#: Largest ``pageSize`` honoured (the API's maximum).
MAX_PAGE_SIZE = 1000


@functools.cache
def _table() -> dict[str, dict[str, Any]]:
    text = (resources.files(__package__) / "data" / "models.json").read_text("utf-8")
    return {bare_model(m["name"]): m for m in json.loads(text)["models"]}


def catalog(emulator: Emulator) -> list[dict[str, Any]]:
    """Return the Model JSON of every model the emulator's cassettes use, by name."""
    methods: dict[str, set[str]] = {}
    for cassette in emulator.store.cassettes:
        name = bare_model(cassette.model)
        kind = "bidiGenerateContent" if isinstance(cassette, LiveCassette) else "generateContent"
        methods.setdefault(name, set()).add(kind)
        if isinstance(cassette, GenerateCassette):
            methods[name].add("countTokens")
    models = []
    for name in sorted(methods):
        known = _table().get(name)
        models.append(
            dict(known)
            if known
            else {"name": f"models/{name}", "supportedGenerationMethods": sorted(methods[name])}
        )
    return models


def add_routes(app: web.Application, emulator: Emulator) -> None:
    """Register ``GET /{version}/models`` and ``GET /{version}/models/{model}``."""

    async def list_models(request: web.Request) -> web.StreamResponse:
        return _list(emulator, request)

    async def get_model(request: web.Request) -> web.StreamResponse:
        return _get(emulator, request)

    app.router.add_get("/{version}/models", list_models)
    app.router.add_get("/{version}/models/{model}", get_model)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode("ascii")


def _offset(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    head, _, number = text.partition(":")
    return int(number) if head == "offset" and number.isdigit() else None


def _list(emulator: Emulator, request: web.Request) -> web.Response:
    error = key_error(request)
    if error is not None:
        return error
    size_text = request.query.get("pageSize", "")
    try:
        size = int(size_text) if size_text else DEFAULT_PAGE_SIZE
    except ValueError:
        size = -1
    if size < 0:
        return api_error(
            400, "INVALID_ARGUMENT", f"Invalid value at 'page_size' (TYPE_INT32), {size_text!r}"
        )
    size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    token = request.query.get("pageToken", "")
    start = _offset(token) if token else 0
    models = catalog(emulator)
    if start is None or start > len(models):
        return api_error(400, "INVALID_ARGUMENT", "Invalid page token.")
    body: dict[str, Any] = {"models": models[start : start + size]}
    if start + size < len(models):
        body["nextPageToken"] = _page_token(start + size)
    return web.json_response(body)


def _get(emulator: Emulator, request: web.Request) -> web.Response:
    name = request.match_info["model"]
    if ":" in name:  # GET on a method such as :generateContent
        raise web.HTTPMethodNotAllowed("GET", ["POST"])
    error = key_error(request)
    if error is not None:
        return error
    for model in catalog(emulator):
        if bare_model(model["name"]) == bare_model(name):
            return web.json_response(model)
    version = request.match_info["version"]
    known = ", ".join(bare_model(m["name"]) for m in catalog(emulator)) or "none"
    return api_error(
        404,
        "NOT_FOUND",
        f"models/{bare_model(name)} is not found for API version {version}. Offline, the "
        f"emulator knows the models its cassettes use: {known}. Record a cassette for this "
        "model, or set GEMINI_API_KEY to use the live API.",
    )


def _count_key(model: str, body: dict[str, Any]) -> str:
    subset = {
        k: v
        for k, v in body.items()
        if k in ("contents", "systemInstruction", "system_instruction", "tools", "toolConfig")
    }
    return request_key(model, subset)


async def count_tokens(emulator: Emulator, model: str, body: Any) -> web.Response:
    """Answer ``:countTokens`` from the ``promptTokenCount`` of a matching recording."""
    normalized, error = validate_count_tokens_request(body)
    if error is not None:
        return error
    assert normalized is not None
    inner = normalized.get("generateContentRequest") or normalized.get("generate_content_request")
    request = inner if isinstance(inner, dict) else {"contents": normalized.get("contents")}
    wanted = _count_key(model, request)
    for cassette in emulator.store.cassettes:
        if not isinstance(cassette, GenerateCassette):
            continue
        if _count_key(cassette.model, cassette.request) != wanted:
            continue
        usage = next(
            (
                c.response["usageMetadata"]
                for c in reversed(cassette.chunks)
                if c.response and "promptTokenCount" in c.response.get("usageMetadata", {})
            ),
            None,
        )
        if usage is None:
            continue
        answer: dict[str, Any] = {"totalTokens": usage["promptTokenCount"]}
        if "promptTokensDetails" in usage:
            answer["promptTokensDetails"] = usage["promptTokensDetails"]
        if "cachedContentTokenCount" in usage:
            answer["cachedContentTokenCount"] = usage["cachedContentTokenCount"]
        return web.json_response(answer)
    prompt = prompt_text(request.get("contents"))
    return api_error(
        404,
        "NOT_FOUND",
        f"No recorded response (cassette) for model {bare_model(model)!r} with the prompt "
        f"{short(prompt)!r} holds a promptTokenCount, so the offline emulator cannot count "
        "its tokens (it never estimates). Record a generate cassette for this request in a "
        "folder listed in QUICKSTART_CASSETTES (see the README, 'Cassettes'), or set "
        "GEMINI_API_KEY to use the live API.",
    )

"""The emulator's ``models.list``, ``models.get`` and ``countTokens`` (docs/offline.md, "What the
emulator serves"; record mode forwards what these do not answer, :mod:`._record`). The catalog:
Model JSON from ``models`` cassettes, else ``data/models.json`` (the live API's), else the name
and the methods its cassettes serve. A token count is only ever recorded, never estimated."""

from __future__ import annotations

import base64
import binascii
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._cassette import CountTokensCassette, GenerateCassette, LiveCassette, ModelsCassette
from ._matching import count_key, count_request, prompt_text
from ._protocol import RECORD_COMMAND, api_error, bare_model, key_error, short
from ._validation import count_tokens_model, validate_generate_request

if TYPE_CHECKING:
    from ._server import Emulator

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000  # the API's default and largest pageSize


def catalog(emulator: Emulator) -> list[dict[str, Any]]:
    """Return the Model JSON of every model the emulator's cassettes use or record, by name."""
    text = (resources.files(__package__) / "data" / "models.json").read_text("utf-8")
    recorded = {bare_model(m["name"]): m for m in emulator.store.models()}
    known = {bare_model(m["name"]): m for m in json.loads(text)["models"]} | recorded
    methods: dict[str, set[str]] = {}
    for c in emulator.store.cassettes:
        if not isinstance(c, ModelsCassette):
            served = methods.setdefault(bare_model(c.model), set())
            served.add("bidiGenerateContent" if isinstance(c, LiveCassette) else "generateContent")
            if isinstance(c, GenerateCassette | CountTokensCassette):
                served.add("countTokens")
    return [
        dict(known[n])
        if n in known
        else {"name": f"models/{n}", "supportedGenerationMethods": sorted(methods[n])}
        for n in sorted({*methods, *recorded})
    ]


def add_routes(app: web.Application, emulator: Emulator) -> None:
    async def models(request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("model")
        if emulator.recorder is not None and ":" not in (name or ""):  # see _record.py
            names = [bare_model(m["name"]) for m in catalog(emulator)]
            known = bare_model(name) in names if name else bool(names)
            if (forwarded := await emulator.recorder.models(emulator, request, known)) is not None:
                return forwarded
        if ":" in (name or ""):  # GET on a method such as :generateContent
            raise web.HTTPMethodNotAllowed("GET", ["POST"])
        if (error := key_error(request)) is not None:
            return error
        return _get(emulator, request) if name else _list(emulator, request)

    app.router.add_get("/{version}/models", models)
    app.router.add_get("/{version}/models/{model}", models)


def _offset(token: str) -> int | None:
    """The offset a ``pageToken`` (urlsafe base64 of ``offset:N``) names, or None."""
    try:
        head, _, number = base64.urlsafe_b64decode(token.encode("ascii")).decode().partition(":")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    return int(number) if head == "offset" and number.isdigit() else None


def _list(emulator: Emulator, request: web.Request) -> web.Response:
    size_text = request.query.get("pageSize", "")
    try:
        size = int(size_text or DEFAULT_PAGE_SIZE)
    except ValueError:
        size = -1
    token = request.query.get("pageToken", "")
    start, models = _offset(token) if token else 0, catalog(emulator)
    if size < 0:
        message = f"Invalid value at 'page_size' (TYPE_INT32), {size_text!r}"
        return api_error(400, "INVALID_ARGUMENT", message)
    if start is None or start > len(models):
        return api_error(400, "INVALID_ARGUMENT", "Invalid page token.")
    end = start + min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    body: dict[str, Any] = {"models": models[start:end]}
    if end < len(models):
        body["nextPageToken"] = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode()
    return web.json_response(body)


def _get(emulator: Emulator, request: web.Request) -> web.Response:
    name, version = bare_model(request.match_info["model"]), request.match_info["version"]
    models = {bare_model(m["name"]): m for m in catalog(emulator)}
    if name in models:
        return web.json_response(models[name])
    why = (
        f"models/{name} is not found for API version {version}. Offline, the emulator knows "
        f"the models its cassettes use: {', '.join(models) or 'none'}. Record this look-up "
        f"with {RECORD_COMMAND}, or set GEMINI_API_KEY to use the live API.{emulator.refusal()}"
    )
    return api_error(404, "NOT_FOUND", why)


def count_answer(emulator: Emulator, model: str, body: Any) -> tuple[int, dict, int] | None:
    """Return ``(status, JSON, delay_ms)`` a recording gives for a ``countTokens`` body, or None."""
    wanted = count_key(model, count_request(body))
    if (recorded := emulator.store.find_key(f"count_tokens {wanted}")) is not None:
        error = recorded.error
        return (error.status, error.body, error.delay_ms) if error else (200, recorded.response, 0)
    usages = [
        (chunk.response or {}).get("usageMetadata", {})
        for c in emulator.store.cassettes
        if isinstance(c, GenerateCassette) and count_key(c.model, c.request) == wanted
        for chunk in reversed(c.chunks)
    ]
    usage = next((u for u in usages if "promptTokenCount" in u), None)
    if usage is None:
        return None
    more = {k: usage[k] for k in ("promptTokensDetails", "cachedContentTokenCount") if k in usage}
    return 200, {"totalTokens": usage["promptTokenCount"], **more}, 0


def count_tokens(emulator: Emulator, model: str, body: Any) -> tuple[web.Response, int]:
    """Answer ``:countTokens`` from a recording (see :func:`count_answer`), else 404:
    ``(answer, milliseconds to wait before it)``."""
    normalized, error = validate_generate_request(body, count_tokens_model())
    if error is not None:
        return error, 0
    if (found := count_answer(emulator, model, normalized)) is not None:
        status, answer, delay_ms = found
        return web.json_response(answer, status=status), delay_ms
    prompt = prompt_text(count_request(normalized).get("contents"))
    why = (
        f"No recorded response (cassette) for model {bare_model(model)!r} with the prompt "
        f"{short(prompt)!r} holds a token count, so the offline emulator cannot count its "
        "tokens (it never estimates). List what is recorded with `quickstart cassettes`, "
        f"record one with {RECORD_COMMAND} (see docs/recording.md), "
        f"or set GEMINI_API_KEY to use the live API.{emulator.refusal()}"
    )
    return api_error(404, "NOT_FOUND", why), 0

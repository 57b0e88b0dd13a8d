"""The emulator's REST routes: ``generateContent`` and ``streamGenerateContent``.

For any API version segment:

- ``POST /{version}/models/{model}:streamGenerateContent?alt=sse``: one SSE event
  (``data: <GenerateContentResponse JSON>`` and a blank line) per recorded chunk;
- ``POST /{version}/models/{model}:generateContent``: the chunks merged into one
  response.

Requests that no cassette matches get the API's error JSON with status 404
``NOT_FOUND`` naming the closest cassette; the API key ``invalid`` gets the live
API's ``API_KEY_INVALID`` error. Nothing is made up. A cassette's fault directives
(HTTP errors, error events, drops, split writes) are carried out by :mod:`._faults`.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..sse import format_event
from . import _faults
from ._cassettes import GenerateCassette, prompt_text
from ._protocol import (
    IMAGE_OUTPUT_MODELS,
    ReceivedRequest,
    api_error,
    bare_model,
    key_error,
    short,
)

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["add_routes", "check_request", "merge_chunks", "sse_event", "unmatched"]


def add_routes(app: web.Application, emulator: Emulator) -> None:
    """Register the REST routes on the emulator's aiohttp app."""

    async def generate(request: web.Request) -> web.StreamResponse:
        return await _generate(emulator, request)

    app.router.add_post("/{version}/models/{model_method}", generate)


def merge_chunks(cassette: GenerateCassette) -> dict[str, Any]:
    """Merge a cassette's chunks into one non-streaming ``GenerateContentResponse``.

    Adjacent text parts are joined; inline data parts are kept in order; the last
    chunk's ``finishReason``, ``usageMetadata``, ``modelVersion`` and ``responseId`` win.
    """
    parts: list[dict[str, Any]] = []
    merged: dict[str, Any] = {}
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    for chunk in cassette.chunks:
        response = chunk.response or {}
        for key in ("usageMetadata", "modelVersion", "responseId"):
            if key in response:
                merged[key] = response[key]
        for cand in response.get("candidates") or []:
            for key, value in cand.items():
                if key != "content":
                    candidate[key] = value
            for part in (cand.get("content") or {}).get("parts") or []:
                if (
                    "text" in part
                    and parts
                    and set(parts[-1]) == {"text"}
                    and set(part) == {"text"}
                ):
                    parts[-1] = {"text": parts[-1]["text"] + part["text"]}
                else:
                    parts.append(dict(part))
    return {"candidates": [candidate], **merged}


def check_request(model: str, body: dict[str, Any]) -> web.Response | None:
    """Return the API's error for a request the live API would refuse, else None.

    Refused: ``responseModalities`` naming ``IMAGE`` for a model outside
    :data:`~quickstart_helpers.emulator._protocol.IMAGE_OUTPUT_MODELS` (400
    ``INVALID_ARGUMENT``, the live API's message).
    """
    modalities = (body.get("generationConfig") or {}).get("responseModalities") or []
    wants_image = any(str(m).upper() == "IMAGE" for m in modalities)
    if wants_image and bare_model(model) not in IMAGE_OUTPUT_MODELS:
        return api_error(
            400,
            "INVALID_ARGUMENT",
            "Model does not support the requested response modalities: image",
        )
    return None


def unmatched(emulator: Emulator, model: str, body: dict[str, Any]) -> web.Response:
    """Return the 404 ``NOT_FOUND`` error for a request no cassette matches."""
    prompt = prompt_text(body.get("contents"))
    closest = emulator.store.closest(model, body)
    hint = "There are no cassettes at all."
    if closest is not None:
        hint = (
            f"The closest cassette is {closest.name!r} "
            f"({closest.path.name if closest.path else 'in memory'}), recorded for "
            f"model {closest.model!r} with the prompt "
            f"{short(prompt_text(closest.request.get('contents')))!r}."
        )
    message = (
        f"No recorded response (cassette) matches this request to model {model!r} "
        f"with the prompt {short(prompt)!r}. The offline emulator only replays "
        f"recordings and never makes an answer up. {hint} Send that cassette's prompt, "
        "record a cassette for yours in a folder listed in QUICKSTART_CASSETTES (see the "
        "README, 'Cassettes'), or set GEMINI_API_KEY to run against the live API."
    )
    return api_error(404, "NOT_FOUND", message)


def sse_event(payload: dict[str, Any], newline: str = "\n", split_json: bool = False) -> bytes:
    """Frame one JSON payload as an SSE event (``data: <json>`` lines, blank line).

    Args:
        payload: The JSON object to send.
        newline: ``"\\n"`` or ``"\\r\\n"``.
        split_json: Spread the JSON over several ``data:`` lines (indented).
    """
    if split_json:
        text = json.dumps(payload, indent=1, ensure_ascii=False)
    else:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return format_event(text, newline=newline)


async def _generate(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    model, _, method = request.match_info["model_method"].partition(":")
    if method not in ("generateContent", "streamGenerateContent"):
        return api_error(404, "NOT_FOUND", f"The emulator does not serve the method {method!r}.")
    error = key_error(request)
    if error is not None:
        return error
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return api_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
    if not isinstance(body, dict):
        return api_error(
            400, "INVALID_ARGUMENT", "Invalid JSON payload received. Expected a JSON object."
        )
    received = ReceivedRequest(method, bare_model(model), request.match_info["version"], body)
    emulator.requests.append(received)
    error = check_request(model, body)
    if error is not None:
        return error
    cassette = emulator.store.find(model, body)
    if cassette is None:
        return unmatched(emulator, model, body)
    received.cassette = cassette.name
    failed = _faults.http_error(emulator, cassette)
    if failed is not None:
        return failed
    if method == "generateContent":
        await emulator.sleep(sum(c.delay_ms for c in cassette.chunks))
        return web.json_response(merge_chunks(cassette))
    return await _stream(emulator, request, cassette)


async def _stream(
    emulator: Emulator, request: web.Request, cassette: GenerateCassette
) -> web.StreamResponse:
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
    )
    await response.prepare(request)
    faults = _faults.StreamFaults(cassette, request)
    try:
        for index, chunk in enumerate(cassette.chunks):
            await emulator.sleep(chunk.delay_ms)
            if await faults.interrupt(response, index, emulator.sse_newline):
                return response
            if chunk.break_:
                # Drop the connection mid-stream, as a network failure would.
                if request.transport is not None:
                    request.transport.abort()
                return response
            event = sse_event(chunk.response or {}, emulator.sse_newline, emulator.sse_split_json)
            if await faults.write(response, index, event):
                return response
        if await faults.interrupt(response, len(cassette.chunks), emulator.sse_newline):
            return response
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response

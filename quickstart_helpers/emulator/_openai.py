"""Gemini's OpenAI compatibility endpoint, ``/{version}/openai/`` (rules ``openai.*`` in
:mod:`._profiles`): ``POST chat/completions`` answered from ``openai`` cassettes (with
``stream``: ``data: <compact JSON>`` SSE events, then ``data: [DONE]``; without: the chunks
merged into one ``chat.completion``), ``GET models`` and ``models/{id}`` from the catalog.
The key comes as ``Authorization: Bearer <key>``; errors are the API's error JSON in a list."""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import _http, _models, _protocol
from ._matching import key_of, no_recording
from ._protocol import ReceivedRequest, bare_model, error_response, hinted, parse_json

if TYPE_CHECKING:
    from ._server import Emulator


def add_routes(app: web.Application, emulator: Emulator) -> None:
    route, models = "/{version}/openai/", partial(_models_answer, emulator)
    app.router.add_post(route + "chat/completions", partial(_chat, emulator))
    app.router.add_get(route + "models", models)
    app.router.add_get(route + "models/{model}", models)


def error(status: int, name: str, message: str) -> web.Response:
    """The endpoint's error: ``[{"error": {"code", "message", "status"}}]``."""
    return error_response([{"error": {"code": status, "message": message, "status": name}}], status)


def _key_error(request: web.Request) -> web.Response | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if not key.strip() or scheme.lower() != "bearer":
        return error(403, "PERMISSION_DENIED", _protocol.MISSING_KEY_MESSAGE)
    return error_response([_protocol.INVALID_KEY_ERROR], 400) if key.strip() == "invalid" else None


def merge(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``chat.completion`` from a stream's chunks: the texts joined, the last finish
    reason and usage, the first chunk's id, created and model (a recorded one: as it is)."""
    if chunks[0].get("object") == "chat.completion":
        return chunks[0]
    choices = [c for chunk in chunks for c in chunk.get("choices") or []]
    text = "".join((c.get("delta") or {}).get("content") or "" for c in choices)
    finish = next((c["finish_reason"] for c in choices[::-1] if c.get("finish_reason")), None)
    usage = next(({"usage": c["usage"]} for c in chunks[::-1] if c.get("usage")), {})
    message = {"content": text, "role": "assistant"}
    choice = {"finish_reason": finish, "index": 0, "message": message}
    return {**chunks[0], "choices": [choice], "object": "chat.completion", **usage}


async def _chat(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    if (refused := _key_error(request)) is not None:
        return refused
    raw = await request.read()
    body, problem = parse_json(raw)
    if problem or not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        why = problem or "Expected an object with model and messages."
        return error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {why}")
    model, version = bare_model(str(body.get("model"))), request.match_info["version"]
    if emulator.recorder is not None:  # record mode: forward what no cassette answers
        forwarded = await emulator.recorder.openai(emulator, request, model, body)
        if forwarded is not None:
            return forwarded
    received = ReceivedRequest("chat.completions", model, version, body, size=len(raw))
    emulator.requests.append(received)
    cassette = emulator.store.find_key(key_of("openai", model, body))
    if cassette is None:  # 404, naming the nearest recording
        closest = await hinted(emulator.store.closest, model, body, None, "openai")
        message = no_recording("openai", model, body, closest)
        refusal = f" {emulator.recorder.refusal()}" if emulator.recorder is not None else ""
        return error(404, "NOT_FOUND", message + refusal)
    received.cassette = cassette.name
    if cassette.error is not None:  # a recorded error answer
        await emulator.sleep(cassette.error.delay_ms)
        return error_response([cassette.error.body], cassette.error.status)
    if not body.get("stream"):
        await emulator.sleep(sum(c.delay_ms for c in cassette.chunks))
        return web.json_response(merge([c.response for c in cassette.chunks if c.response]))
    usage = (body.get("stream_options") or {}).get("include_usage") is True

    def framed(payload: dict[str, Any]) -> bytes:
        sent = {k: v for k, v in payload.items() if usage or k != "usage"}
        return f"data: {json.dumps(sent, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()

    return await _http.stream(emulator, request, cassette, framed=framed, done=b"data: [DONE]\n\n")


async def _models_answer(emulator: Emulator, request: web.Request) -> web.Response:
    if (refused := _key_error(request)) is not None:
        return refused
    catalog = _models.catalog(emulator)
    models = [{"id": m["name"], "object": "model", "owned_by": "google"} for m in catalog]
    if "model" not in request.match_info:
        return web.json_response({"object": "list", "data": models})
    name = bare_model(request.match_info["model"])
    found = [m for m in models if bare_model(m["id"]) == name]
    why = f"models/{name} is not found for API version {request.match_info['version']}."
    return web.json_response(found[0]) if found else error(404, "NOT_FOUND", why)

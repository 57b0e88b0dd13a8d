"""The REST routes ``generateContent``, ``streamGenerateContent``, ``countTokens`` and Gemini's
OpenAI compatibility endpoint ``/{version}/openai/`` (rules ``openai.*``, :mod:`._profiles`):
docs/offline.md, "What the emulator serves", says what each answers and refuses, and
docs/emulator-rules.md how ``?alt=sse`` events are framed (``tests/wire/generate/``). Without
``alt=sse`` a stream is an indented JSON array (``[{...}``, ``\n,\r\n{...}``, ``\n]``).
Bodies are checked with the SDK's types (:mod:`._validation`) and the model's rules
(:func:`check_request`); no match: a 404 naming the closest. Faults: :mod:`._faults`."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import _faults, _models, _protocol
from ._cassette import GenerateCassette
from ._matching import key_of, no_recording
from ._profiles import profile_for
from ._protocol import ReceivedRequest, api_error, bare_model, error_response, hinted, off_loop
from ._validation import validate_generate_request

if TYPE_CHECKING:
    from ._server import Emulator

METHODS = ("generateContent", "streamGenerateContent", "countTokens")  # POST .../{model}:{method}

#: The live API's 400 message for a function call sent back without its signature.
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required "
    "for tools to work correctly, and missing thought_signature may lead to degraded model "
    "performance. Additional data, function call `default_api:{name}` , position {position}. "
    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


def add_routes(app: web.Application, emulator: Emulator) -> None:
    app.router.add_post("/{version}/models/{model_method}", functools.partial(_generate, emulator))
    models = functools.partial(_openai_models, emulator)
    app.router.add_post("/{version}/openai/chat/completions", functools.partial(_chat, emulator))
    app.router.add_get("/{version}/openai/models", models)
    app.router.add_get("/{version}/openai/models/{model}", models)


def merge_chunks(cassette: GenerateCassette) -> dict[str, Any]:
    """One ``GenerateContentResponse`` of a cassette's chunks (one recorded answer: as it is):
    adjacent text (or thought) parts joined, a closing empty text part's ``thoughtSignature``
    on the text before it (as a non-streaming answer has it), the last chunk's other fields."""
    if len(cassette.chunks) == 1 and cassette.chunks[0].response is not None:
        return copy.deepcopy(cassette.chunks[0].response)
    parts: list[dict[str, Any]] = []
    merged: dict[str, Any] = {}
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    for chunk in cassette.chunks:
        response = chunk.response or {}
        for cand in response.get("candidates") or []:
            for part in (cand.get("content") or {}).get("parts") or []:
                last = parts[-1] if parts else {}
                if part.get("text") == "" and "thoughtSignature" in part and "text" in last:
                    parts[-1] = {**last, "thoughtSignature": part["thoughtSignature"]}
                elif "text" in part and set(part) == set(last) <= {"text", "thought"}:
                    parts[-1] = {**last, "text": last["text"] + part["text"]}
                else:
                    parts.append(dict(part))
            candidate.update((k, v) for k, v in cand.items() if k != "content")
        merged.update((k, response[k]) for k in response if k != "candidates")
    return {"candidates": [candidate], **merged}


def _missing_signature(body: dict[str, Any]) -> tuple[str, int] | None:
    """``(function name, position from 1)`` of the first model content of the current turn
    (from the last user text) whose first ``functionCall`` part (parallel calls: only the
    first is signed) has no ``thoughtSignature``; None if every call is signed."""
    contents, start = body.get("contents") or [], 0
    for index, content in enumerate(contents):
        parts = content.get("parts") or []
        if content.get("role", "user") == "user" and any("text" in p for p in parts):
            start = index
    for index in range(start, len(contents)):
        parts = contents[index].get("parts") if contents[index].get("role") == "model" else None
        call = next((p for p in parts or [] if "functionCall" in p or "function_call" in p), None)
        if call is not None and not (call.get("thoughtSignature") or call.get("thought_signature")):
            name = (call.get("functionCall") or call.get("function_call") or {}).get("name")
            return str(name), index + 1
    return None


def check_request(model: str, body: dict[str, Any]) -> web.Response | None:
    """The API's 400 for a body the API refuses for ``model`` (else None): ``IMAGE`` output
    from a model not in ``IMAGE_OUTPUT_MODELS``; a current turn's ``functionCall`` sent back
    without its ``thoughtSignature`` (rule ``generate.function_call_signature_required``)."""
    config = body.get("generationConfig") or body.get("generation_config") or {}
    modalities = config.get("responseModalities") or config.get("response_modalities") or []
    wants_image = any(str(m).upper() == "IMAGE" for m in modalities)
    if wants_image and bare_model(model) not in _protocol.IMAGE_OUTPUT_MODELS:
        message = "Model does not support the requested response modalities: image"
        return api_error(400, "INVALID_ARGUMENT", message)
    if profile_for(model).has("generate.function_call_signature_required"):
        if (missing := _missing_signature(body)) is not None:
            message = MISSING_SIGNATURE.format(name=missing[0], position=missing[1])
            return api_error(400, "INVALID_ARGUMENT", message)
    return None


def sse_event(payload: dict[str, Any]) -> bytes:
    """One payload as the API's SSE event (see the module)."""
    text = json.dumps(payload, separators=(",", ": "), ensure_ascii=False)
    return f"data: {text}\r\n\r\n".encode("utf-8", "replace")


def _match(emulator: Emulator, model: str, body: Any) -> tuple[Any, Any]:
    """``(body, its cassette or None)``, or ``(body or None, the API's 400)``."""
    body, error = validate_generate_request(body)
    if body is None or (error := check_request(model, body)) is not None:
        return body, error
    return body, emulator.store.find(model, body)


async def _generate(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    response = await _answer(emulator, request)
    if response.status >= 400 and request.query.get("alt") == "sse":
        response.headers["Content-Type"] = "text/event-stream"  # as the API labels it
    return response


async def _answer(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    model, _, method = request.match_info["model_method"].partition(":")
    if method not in METHODS:
        why = f"The emulator does not serve the method {method!r} (POST {request.path});"
        return api_error(404, "NOT_FOUND", f"{why} it serves {', '.join(METHODS)}.")
    if emulator.recorder is not None:  # record mode: forward what no cassette answers
        forwarded = await emulator.recorder.generate(emulator, request, model, method)
        if forwarded is not None:
            return forwarded
    version = request.match_info["version"]
    received = ReceivedRequest(method, bare_model(model), version)  # logged once valid
    read = await _protocol.read_keyed_json(request, received)
    if not isinstance(read, tuple):  # the API's error
        return read
    raw, body = read
    if method == "countTokens":
        answer, delay_ms = await off_loop(len(raw), _models.count_tokens, emulator, model, body)
        await emulator.sleep(delay_ms)
        return answer
    body, found = await off_loop(len(raw), _match, emulator, model, body)
    if body is None:  # the API's 400
        return found
    emulator.requests.append(received)
    if isinstance(found, web.Response):  # the API's 400 for this model
        return found
    if (cassette := found) is None:  # the API's 404, naming the nearest recording
        closest = await hinted(len(raw), emulator.store.closest, model, body)
        message = await off_loop(len(raw), no_recording, "generate", model, body, closest)
        return api_error(404, "NOT_FOUND", message + emulator.refusal())
    received.cassette = cassette.name
    if (failed := _faults.http_error(emulator, cassette)) is not None:
        return failed
    if cassette.error is not None:  # a recorded error answer
        await emulator.sleep(cassette.error.delay_ms)
        return error_response(cassette.error.body, cassette.error.status)
    if method == "generateContent":
        await emulator.sleep(sum(c.delay_ms for c in cassette.chunks))
        # A stream that ended in an error event answers with that error.
        error_event = next((c.error for c in cassette.chunks if c.error is not None), None)
        if error_event is not None:
            code = error_event.get("code")
            status = code if isinstance(code, int) and 400 <= code <= 599 else 500
            return error_response({"error": error_event}, status)
        return web.json_response(merge_chunks(cassette))
    return await stream(emulator, request, cassette, sse=request.query.get("alt") == "sse")


async def stream(
    emulator: Emulator, request: web.Request, cassette: Any, *, sse: bool = True, **openai: Any
) -> web.StreamResponse:
    """Stream a cassette's chunks and faults: as the module says, or (``openai``: ``framed``,
    a payload's bytes, and ``done``, the closing event) as the OpenAI endpoint frames them."""
    kind = "text/event-stream" if sse else "application/json; charset=UTF-8"
    response = web.StreamResponse(headers={"Content-Type": kind, "Cache-Control": "no-cache"})
    await response.prepare(request)
    faults, first = _faults.StreamFaults(cassette, request), True

    def frame(payload: dict[str, Any], *, last: bool = False) -> bytes:
        nonlocal first
        if openai:
            return openai["framed"](payload)
        if sse:
            return sse_event(payload)
        item = json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8")
        data, first = (b"[" if first else b"\n,\r\n") + item, False
        return data + b"\n]" if last else data

    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        for index, chunk in enumerate(cassette.chunks):
            await emulator.sleep(chunk.delay_ms)
            if await faults.interrupt(response, index, frame):
                return response
            if chunk.break_:  # the connection drops mid-stream, as a network failure
                _faults.abort(request)
                return response
            # A response or an {"error": ...} event, one per write as the API flushes them.
            if await faults.write(response, index, frame(chunk.payload() or {})):
                return response
        if await faults.interrupt(response, len(cassette.chunks), frame):
            return response
        if not sse:
            await response.write(b"[]" if first else b"\n]")
        await response.write(openai.get("done", b""))
        await response.write_eof()
    return response


# -- Gemini's OpenAI compatibility endpoint (see the module) ------------------------------


def openai_error(status: int, name: str, message: str) -> web.Response:
    """The endpoint's error: ``[{"error": {"code", "message", "status"}}]``."""
    return error_response([{"error": {"code": status, "message": message, "status": name}}], status)


def _bearer_error(request: web.Request) -> web.Response | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if not key.strip() or scheme.lower() != "bearer":
        return openai_error(403, "PERMISSION_DENIED", _protocol.MISSING_KEY_MESSAGE)
    return error_response([_protocol.INVALID_KEY_ERROR], 400) if key.strip() == "invalid" else None


def merge_completion(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``chat.completion`` of chunks: texts joined, the last finish reason and usage, the
    first chunk's id, created and model (a recorded ``chat.completion``: as it is)."""
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
    if (refused := _bearer_error(request)) is not None:
        return refused
    body, problem = _protocol.parse_json(raw := await request.read())
    if problem or not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        why = problem or "Expected an object with model and messages."
        return openai_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {why}")
    model, version = bare_model(str(body.get("model"))), request.match_info["version"]
    if emulator.recorder is not None:  # record mode: forward what no cassette answers
        forwarded = await emulator.recorder.openai(emulator, request, model, body)
        if forwarded is not None:
            return forwarded
    received = ReceivedRequest("chat.completions", model, version, raw, size=len(raw))
    emulator.requests.append(received)
    cassette = emulator.store.find_key(key_of("openai", model, body))
    if cassette is None:  # 404, naming the nearest recording
        closest = await hinted(len(raw), emulator.store.closest, model, body, None, "openai")
        message = no_recording("openai", model, body, closest)
        return openai_error(404, "NOT_FOUND", message + emulator.refusal())
    received.cassette = cassette.name
    if cassette.error is not None:  # a recorded error answer
        await emulator.sleep(cassette.error.delay_ms)
        return error_response([cassette.error.body], cassette.error.status)
    if not body.get("stream"):
        await emulator.sleep(sum(c.delay_ms for c in cassette.chunks))
        chunks = [c.response for c in cassette.chunks if c.response]
        return web.json_response(merge_completion(chunks))
    usage = (body.get("stream_options") or {}).get("include_usage") is True

    def framed(payload: dict[str, Any]) -> bytes:
        sent = {k: v for k, v in payload.items() if usage or k != "usage"}
        return f"data: {json.dumps(sent, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()

    return await stream(emulator, request, cassette, framed=framed, done=b"data: [DONE]\n\n")


async def _openai_models(emulator: Emulator, request: web.Request) -> web.Response:
    if (refused := _bearer_error(request)) is not None:
        return refused
    catalog = _models.catalog(emulator)
    models = [{"id": m["name"], "object": "model", "owned_by": "google"} for m in catalog]
    if "model" not in request.match_info:
        return web.json_response({"object": "list", "data": models})
    name = bare_model(request.match_info["model"])
    found = [m for m in models if bare_model(m["id"]) == name]
    why = f"models/{name} is not found for API version {request.match_info['version']}."
    return web.json_response(found[0]) if found else openai_error(404, "NOT_FOUND", why)

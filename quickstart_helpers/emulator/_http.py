"""The emulator's REST routes: ``generateContent`` and ``streamGenerateContent``.

For any API version segment:

- ``POST /{version}/models/{model}:streamGenerateContent?alt=sse``: one SSE event
  (``data: <GenerateContentResponse JSON>`` and a blank line) per recorded chunk;
- the same without ``alt=sse``: a streamed JSON array, as the live API sends it
  (``[{...}`` then ``\\n,\\r\\n{...}`` per further chunk, then ``\\n]``; each object
  indented), ``Content-Type: application/json``;
- ``POST /{version}/models/{model}:generateContent``: the chunks merged into one
  response;
- ``POST /{version}/models/{model}:countTokens``: see :mod:`._models`.

Bodies are validated against the SDK's types first (:mod:`._validation`): an unknown
field or a bad value is the API's 400 ``INVALID_ARGUMENT``.

Requests that no cassette matches get the API's error JSON with status 404
``NOT_FOUND`` naming the closest cassette; the API key ``invalid`` gets the live
API's ``API_KEY_INVALID`` error. Nothing is made up. A cassette's fault directives
(HTTP errors, error events, drops, split writes) are carried out by :mod:`._faults`.

Each chunk's event is rendered (JSON encoded and framed) once per cassette and framing,
then reused by every later replay (:func:`framed_chunks`); each event is still its own
write, flushed as the live API sends it.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..sse import format_event
from . import _faults, _models
from ._cassette import GenerateCassette
from ._matching import no_recording, request_key
from ._protocol import (
    IMAGE_OUTPUT_MODELS,
    BoundedMemo,
    ReceivedRequest,
    api_error,
    bare_model,
    read_keyed_json,
)
from ._validation import validate_generate_request

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = [
    "ACCEPTED_BODIES",
    "AcceptedBodies",
    "JSON_ARRAY_SEPARATOR",
    "METHODS",
    "add_routes",
    "check_request",
    "framed_chunks",
    "json_array_item",
    "merge_chunks",
    "sse_event",
    "unmatched",
]

#: The ``POST /{version}/models/{model}:{method}`` methods the emulator serves.
METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def add_routes(app: web.Application, emulator: Emulator) -> None:
    """Register the REST routes on the emulator's aiohttp app."""

    app.router.add_post("/{version}/models/{model_method}", functools.partial(_generate, emulator))


def merge_chunks(cassette: GenerateCassette) -> dict[str, Any]:
    """Merge a cassette's chunks into one non-streaming ``GenerateContentResponse``.

    Adjacent text parts are joined; inline data parts are kept in order; the last
    chunk's ``finishReason``, ``usageMetadata``, ``modelVersion`` and ``responseId`` win.
    A cassette of one chunk (a recorded non-streaming answer) gives that chunk as it is.
    """
    if len(cassette.chunks) == 1 and cassette.chunks[0].response is not None:
        return copy.deepcopy(cassette.chunks[0].response)
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
    config = body.get("generationConfig") or body.get("generation_config") or {}
    modalities = config.get("responseModalities") or config.get("response_modalities") or []
    wants_image = any(str(m).upper() == "IMAGE" for m in modalities)
    if wants_image and bare_model(model) not in IMAGE_OUTPUT_MODELS:
        return api_error(
            400,
            "INVALID_ARGUMENT",
            "Model does not support the requested response modalities: image",
        )
    return None


_SEARCH: Any = object()


def unmatched(
    emulator: Emulator,
    model: str,
    body: dict[str, Any],
    closest: GenerateCassette | None = _SEARCH,
) -> web.Response:
    """Return the 404 ``NOT_FOUND`` error for a request no cassette matches.

    Args:
        closest: The closest cassette, when the caller searched already (the route
            searches in a worker thread so the event loop never waits on it).
    """
    if closest is _SEARCH:
        closest = emulator.store.closest(model, body)
    message = no_recording(model, body, closest)
    if emulator.recorder is not None:
        message += " " + emulator.recorder.refusal()
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
    if method not in METHODS:
        return api_error(
            404,
            "NOT_FOUND",
            f"The emulator does not serve the method {method!r} (POST {request.path}); "
            f"it serves {', '.join(METHODS)}.",
        )
    if emulator.recorder is not None:
        # Record mode: forward what no cassette answers, and record it (see _record.py).
        forwarded = await emulator.recorder.generate(emulator, request, model, method)
        if forwarded is not None:
            return forwarded
    read = await read_keyed_json(request)
    if not isinstance(read, tuple):  # the API's error (a response: a slow ABC check)
        return read
    raw, body = read
    if method == "countTokens":
        return await _models.count_tokens(emulator, model, body)
    # A body accepted before (same bytes, same model) is valid: no checks (AcceptedBodies).
    key = ACCEPTED_BODIES.get((model, raw))
    parsed = body
    if key is None:
        normalized, error = validate_generate_request(body)
        if error is not None:
            return error
        assert normalized is not None
        body = normalized
    received = ReceivedRequest(
        method, bare_model(model), request.match_info["version"], body, size=len(raw)
    )
    emulator.requests.append(received)
    if key is None:
        error = check_request(model, body)
        if error is not None:
            return error
        key = ACCEPTED_BODIES.add(model, raw, parsed, body)
    cassette = emulator.store.find(model, body, key=key)
    if cassette is None:
        # The closest-cassette hint is computed off the event loop (issue 16).
        loop = asyncio.get_running_loop()
        closest = await loop.run_in_executor(None, emulator.store.closest, model, body)
        return unmatched(emulator, model, body, closest)
    received.cassette = cassette.name
    failed = _faults.http_error(emulator, cassette) if cassette.faults else None
    if failed is not None:
        return failed
    if cassette.error is not None:  # a recorded error answer
        await emulator.sleep(cassette.error.delay_ms)
        return web.json_response(cassette.error.body, status=cassette.error.status)
    if method == "generateContent":
        await emulator.sleep(sum(c.delay_ms for c in cassette.chunks))
        # record2: a stream that ended in an error event answers with that error.
        failed = next((c.error for c in cassette.chunks if c.error is not None), None)
        if failed is not None:
            code = failed.get("code")
            status = code if isinstance(code, int) and 400 <= code <= 599 else 500
            return web.json_response({"error": failed}, status=status)
        return web.json_response(merge_chunks(cassette))
    sse = request.query.get("alt") == "sse"
    return await _stream(emulator, request, cassette, sse=sse)


class AcceptedBodies(BoundedMemo):
    """Request keys of ``generateContent`` bodies already accepted, by exact body bytes.

    Validation (:func:`~._validation.validate_generate_request`), :func:`check_request`
    and the cassette key (:func:`~._matching.request_key`) are pure functions of the
    model and the body's bytes, and together they were most of the emulator's own CPU
    per request (a notebook re-runs the same requests). So a body that passed them
    unchanged (no single object put into a list) is remembered with its key: the same
    bytes to the same model again are known to pass and skip all three. Refused bodies
    are never remembered (they are checked again, and answered the same way).

    Bounded: at most ``max_entries`` bodies of at most ``max_body_bytes`` each (8 MiB
    in all by default), the oldest forgotten first; a larger body is always checked.
    Safe to share between emulators in several threads.

    Args:
        max_entries: Most bodies remembered. Defaults to 256.
        max_body_bytes: Largest body remembered, in bytes. Defaults to 32 KiB.

    Raises:
        ValueError: A limit is not positive.
    """

    def __init__(self, max_entries: int = 256, max_body_bytes: int = 32 * 1024) -> None:
        super().__init__(max_entries, max_body_bytes)

    def add(self, model: str, raw: bytes, body: dict[str, Any], normalized: dict[str, Any]) -> str:
        """Return ``request_key(model, normalized)``; remember it if ``body`` was unchanged.

        Call it only for a body that passed validation and :func:`check_request`.

        Args:
            model: The model named in the URL.
            raw: The body's bytes, as received.
            body: The body parsed from ``raw``.
            normalized: What validation returned for ``body``.
        """
        key = request_key(model, normalized)
        if normalized == body:
            self._put((model, raw), key, len(raw))
        return key


#: The bodies every emulator of this process accepted (see :class:`AcceptedBodies`).
ACCEPTED_BODIES = AcceptedBodies()


#: Between two objects of a streamed JSON array, as the live API frames it.
JSON_ARRAY_SEPARATOR = b"\n,\r\n"


def framed_chunks(
    cassette: GenerateCassette, framing: tuple[Any, ...], render: Callable[[dict[str, Any]], bytes]
) -> Callable[[int], bytes]:
    """Return ``frame(index)``: chunk ``index``'s framed bytes, rendered once and kept.

    The bytes depend only on the chunk's JSON and the framing (SSE with its newline
    and JSON layout, or a JSON array item), so every later replay of the cassette
    sends the bytes rendered by the first one instead of encoding the JSON again. The
    bytes are kept on the cassette (about the size of its chunks' JSON, freed with
    it) and rendered again when a chunk's ``response`` or ``error`` object was
    replaced. Chunks are treated as immutable once loaded, as the store treats them:
    replace a chunk's dictionary rather than editing it in place.

    The function itself is kept per framing as well, and made again (with this call's
    ``render``) when the cassette's chunk list was replaced or changed length.

    Args:
        cassette: The cassette being replayed.
        framing: What else the bytes depend on, e.g. ``("sse", "\\n", False)``.
        render: Frames one chunk's payload (``response`` or ``{"error": ...}``).
    """
    chunks = cassette.chunks
    # The private attribute's own dictionary: ``cassette._frames`` costs a failed lookup.
    by_framing = cassette.__pydantic_private__["_frames"]  # type: ignore[index]
    kept = by_framing.get(framing)
    if kept is not None and kept[0] is chunks and kept[1] == len(chunks):
        return kept[2]  # the same chunk list: the same frame function (and its frames)
    frames: list[tuple[Any, bytes] | None] = [None] * len(chunks)

    def frame(index: int) -> bytes:
        chunk = chunks[index]
        source = chunk.response if chunk.response is not None else chunk.error
        kept = frames[index]
        if kept is not None and kept[0] is source:
            return kept[1]
        data = render(chunk.payload() or {})
        frames[index] = (source, data)
        return data

    by_framing[framing] = (chunks, len(chunks), frame)
    return frame


@functools.lru_cache(maxsize=8)
def _sse_render(newline: str, split_json: bool) -> Callable[[dict[str, Any]], bytes]:
    """:func:`sse_event` with these settings (one function per setting, for the cache)."""
    return functools.partial(sse_event, newline=newline, split_json=split_json)


async def _stream(
    emulator: Emulator, request: web.Request, cassette: GenerateCassette, *, sse: bool
) -> web.StreamResponse:
    content_type = "text/event-stream" if sse else "application/json; charset=UTF-8"
    response = web.StreamResponse(
        status=200, headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    faults = _faults.StreamFaults(cassette, request) if cassette.faults else None
    first = True
    newline, split_json = emulator.sse_newline, emulator.sse_split_json
    if sse:
        rendered = framed_chunks(
            cassette, ("sse", newline, split_json), _sse_render(newline, split_json)
        )
    else:
        rendered = framed_chunks(cassette, ("json",), json_array_item)

    def frame(payload: dict[str, Any], *, last: bool = False) -> bytes:
        """Frame one object (a fault's): an SSE event, or the next item of the JSON array."""
        nonlocal first
        if sse:
            return sse_event(payload, newline, split_json)
        data = (b"[" if first else JSON_ARRAY_SEPARATOR) + json_array_item(payload)
        first = False
        return data + b"\n]" if last else data

    try:
        for index, chunk in enumerate(cassette.chunks):
            if chunk.delay_ms:
                await emulator.sleep(chunk.delay_ms)
            if faults is not None and await faults.interrupt(response, index, frame):
                return response
            if chunk.break_:
                # Drop the connection mid-stream, as a network failure would.
                if request.transport is not None:
                    request.transport.abort()
                return response
            data = rendered(index)  # a response, or an {"error": ...} event
            if not sse:
                data = (b"[" if first else JSON_ARRAY_SEPARATOR) + data
                first = False
            if faults is None:
                await response.write(data)  # one event per write, flushed as the API does
            elif await faults.write(response, index, data):
                return response
        if faults is not None and await faults.interrupt(response, len(cassette.chunks), frame):
            return response
        if not sse:
            await response.write(b"[]" if first else b"\n]")
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


def json_array_item(payload: dict[str, Any]) -> bytes:
    """Return one object of a streamed JSON array: indented JSON, as the live API sends."""
    return json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8")

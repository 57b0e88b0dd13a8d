"""What the emulator's routes share: the API's error JSON, the key check, model names,
the worker threads for large requests, and the log of received requests."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import json
import json.scanner
import re
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

#: How users record, named in the errors of replay-only modes.
RECORD_COMMAND = (
    "quickstart record NOTEBOOK --cassettes DIR (or pytest --gemini-record-mode=once, "
    "or QUICKSTART_MODE=record with QUICKSTART_RECORD_MODE=once)"
)

_KEY_INVALID = "API key not valid. Please pass a valid API key."
#: The ``@type`` prefix of the API's error details.
RPC_TYPE = "type.googleapis.com/google.rpc."
#: The body the live API returns (HTTP 400) for an API key that is not valid.
INVALID_KEY_ERROR: dict[str, Any] = {
    "error": {
        "code": 400,
        "message": _KEY_INVALID,
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": RPC_TYPE + "ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": RPC_TYPE + "LocalizedMessage", "locale": "en-US", "message": _KEY_INVALID},
        ],
    }
}

#: The live API's message (HTTP 403 ``PERMISSION_DENIED``) for a request without a key.
MISSING_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)

#: Models that can output images (``IMAGE`` in ``responseModalities``); others get a 400.
IMAGE_OUTPUT_MODELS: frozenset[str] = frozenset(
    "gemini-2.0-flash-exp gemini-2.0-flash-exp-image-generation "
    "gemini-2.0-flash-preview-image-generation gemini-2.5-flash-image "
    "gemini-2.5-flash-image-preview gemini-3-pro-image-preview "
    "gemini-3.1-flash-image-preview gemini-3.1-flash-lite-image".split()
)


T = TypeVar("T")

#: Bodies up to this many bytes are parsed, validated, keyed and matched on the event loop
#: (a few ms at most); larger ones in :data:`WORKERS`, so that they never stall other clients.
INLINE_BYTES = 4 << 10
#: Seconds a thread may hold the interpreter lock, set process-wide by the workers: at Python's
#: 5 ms the event loop took 0.3 s to a first chunk while a worker ran (1 ms: 30 ms).
SWITCH_INTERVAL_S = 0.001
#: Past this many bytes, JSON is parsed and keyed by json's pure-Python scanner and encoder:
#: 10x slower, but the loop runs every ms (the C ones held it 1.7 s, 1.3 s for 60 MB of parts).
C_JSON_BYTES, MIB = 8 << 20, 1 << 20
_large = threading.local()
#: Large requests in the workers, and if automatic collection was on before: it is off while
#: any runs (for 24 MB of small parts, a dozen collections held the interpreter 0.5 s each).
_PAUSED, _PAUSED_LOCK = [0, True], threading.Lock()
#: Two worker threads: pure-Python work in a thread competes with the loop for the lock.
WORKERS = ThreadPoolExecutor(
    2, "emulator", lambda: sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
)
#: Nearest-recording searches at once (each in :data:`WORKERS`); past it a 404 has no hint.
HINT_SEARCHES = 1
_searching = threading.BoundedSemaphore(HINT_SEARCHES)
#: When work in :data:`WORKERS` last ended: one :func:`_give_back` a burst (each 0.1-0.4 s).
_LATEST = [0.0]
#: glibc, loaded once: a ``CDLL`` per trim left objects alive amid a burst's garbage (pinned it).
_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
#: The hint of a 404 whose nearest recording was not searched for.
NOT_SEARCHED = "It was not compared with the recordings (busy with others: send it again)."


async def off_loop(size: int, function: Callable[..., T], *args: Any) -> T:
    """Return ``function(*args)``, work linear in a request's ``size`` (bytes): on the event
    loop up to :data:`INLINE_BYTES`, else in :data:`WORKERS`; then, a second after the last
    of those, the freed memory goes back to the OS (:func:`_give_back`)."""
    if size <= INLINE_BYTES:
        return function(*args)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(WORKERS, _sized, size, function, *args)
    _LATEST[0] = done = time.monotonic()
    loop.call_later(1, _give_back, done)
    return result


def _sized(size: int, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)``; past :data:`C_JSON_BYTES` with json's Python scanner and encoder
    in this thread and the interpreter's automatic collection paused (:data:`_PAUSED`)."""
    _large.on = large = size > C_JSON_BYTES
    if large:
        _pause_collection(+1)
    try:
        return function(*args)
    finally:
        _large.on = False
        if large:
            _pause_collection(-1)


def _pause_collection(change: int) -> None:
    with _PAUSED_LOCK:
        if change > 0 and not _PAUSED[0]:  # as it was before the first
            _PAUSED[1] = gc.isenabled()
            gc.disable()
        _PAUSED[0] += change
        if not _PAUSED[0] and _PAUSED[1]:
            gc.enable()


def _give_back(done: float) -> None:
    """Unless work in :data:`WORKERS` ended after ``done``: a full collection, then glibc's
    ``malloc_trim`` (alone, it left 1.2 MB bodies of small parts 12 MiB each in the process)."""
    if done < _LATEST[0]:
        return
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


async def hinted(size: int, search: Callable[..., T], *args: Any) -> T | str:
    """Return ``search(*args)``, a nearest-recording search for a request of ``size`` bytes,
    run in :data:`WORKERS` (as :func:`off_loop` runs large work) while fewer than
    :data:`HINT_SEARCHES` run; else :data:`NOT_SEARCHED` at once."""
    if not _searching.acquire(blocking=False):
        return NOT_SEARCHED

    def run() -> T:
        try:
            return _sized(size, search, *args)
        finally:  # held until the search ends, even if its client has gone
            _searching.release()

    return await asyncio.get_running_loop().run_in_executor(WORKERS, run)


def bare_model(model: str) -> str:
    """Return a model name without its ``models/`` prefix."""
    return model.removeprefix("models/")


def short(text: str, limit: int = 60) -> str:
    """Return ``text`` with white space folded, cut to ``limit`` characters with ``…``
    (time linear in the result: a 60 MB prompt's ``split`` held the interpreter for 3 s)."""
    words = itertools.islice(re.finditer(r"\S+", text), limit + 1)
    text = " ".join(word.group() for word in words)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_response(body: dict[str, Any], status: int) -> web.Response:
    """Return the API's error JSON as the API lays it out (indented by 2), with ``status``."""
    text = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    return web.Response(text=text, status=status, content_type="application/json")


def api_error(code: int, status: str, message: str, **extra: Any) -> web.Response:
    """The API's error ``{"error": {"code", "message", "status", **extra}}``, HTTP ``code``."""
    body = {"code": code, "message": message, "status": status, **extra}
    return error_response({"error": body}, code)


def key_error(request: web.Request) -> web.Response | None:
    """Return the live API's error for a missing key (``x-goog-api-key`` header or ``key``
    query parameter, never kept) or the key ``"invalid"`` (:data:`INVALID_KEY_ERROR`)."""
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if not key:
        return api_error(403, "PERMISSION_DENIED", MISSING_KEY_MESSAGE)
    if key == "invalid":
        return error_response(INVALID_KEY_ERROR, 400)
    return None


async def read_keyed_json(
    request: web.Request, received: ReceivedRequest | None = None, *, object_only: bool = False
) -> tuple[bytes, Any] | web.Response:
    """Check the key (:func:`key_error`), then read the JSON body: ``(raw bytes, JSON)``,
    or the API's error (400 for a body not UTF-8 JSON, nested too deeply, or with
    ``object_only`` not an object). ``received`` (its log entry) gets the body unparsed."""
    if (error := key_error(request)) is not None:
        return error
    raw = await request.read()
    if received is not None:
        received.wire, received.size = raw, len(raw)
    body, problem = await off_loop(len(raw), parse_json, raw)
    if problem is None and object_only and not isinstance(body, dict):
        problem = "Expected a JSON object."
    if problem is None:
        return raw, body
    return api_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {problem}")


def parse_json(raw: bytes | str) -> tuple[Any, str | None]:
    """``(JSON, None)``, or ``(None, what is wrong)``."""
    try:
        if not getattr(_large, "on", False):
            return json.loads(raw), None
        if isinstance(raw, bytes):  # as json.loads decodes it
            raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
        decoder = json.JSONDecoder()
        decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
        return decoder.decode(raw), None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    except RecursionError:
        return None, "The JSON is nested too deeply."


def to_json(value: Any, **options: Any) -> str:
    """``json.dumps(value, **options)``; past :data:`C_JSON_BYTES`, json's Python encoder (as
    ``iterencode`` makes it), strings 1 MiB at a time (a 60 MB one held the interpreter 0.3 s)."""
    if not getattr(_large, "on", False):
        return json.dumps(value, **options)
    e, py = json.JSONEncoder(**options), json.encoder
    whole = py.encode_basestring_ascii if e.ensure_ascii else py.encode_basestring

    def string(text: str) -> str:  # whole(text), a slice at a time
        if len(text) <= MIB:
            return whole(text)
        pieces = (whole(text[i : i + MIB])[1:-1] for i in range(0, len(text), MIB))
        return "".join(['"', *pieces, '"'])  # one copy of the whole

    fields = (e.default, string, e.indent, json.dumps, e.key_separator, e.item_separator)
    iterencode = py._make_iterencode({}, *fields, e.sort_keys, e.skipkeys, False)  # type: ignore
    return "".join(iterencode(value, 0))


@dataclass(eq=False, slots=True)
class ReceivedRequest:
    """A request the emulator received (never its API key): ``method`` (``generateContent``,
    ``BidiGenerateContent``, ...), ``model`` (without ``models/``), ``api_version`` (e.g.
    ``v1beta``), ``wire``: its body as received (JSON bytes or text, or a value such as a
    query's dict; Live API: the list of client messages), the ``cassette`` that answered (or
    None), ``size`` (bytes received), and whether it was ``truncated`` (over the log's
    per-body limit: the body, or the messages from there on, not kept)."""

    method: str
    model: str
    api_version: str
    wire: Any = None
    cassette: str | None = None
    size: int = 0
    truncated: bool = False

    @property
    def body(self) -> Any:
        """``wire`` parsed on each read (None for what is not JSON): the JSON body, or the list
        of Live API messages; what was not kept is a ``"<not kept: N bytes ...>"`` marker."""
        if not isinstance(self.wire, list):
            return _not_kept(self.size) if self.truncated else _parsed(self.wire)
        messages = [_parsed(message) for message in self.wire]
        if self.truncated:  # the bytes of this message and the later ones
            messages.append(_not_kept(self.size - sum(map(len, self.wire))))
        return messages


def _parsed(wire: Any) -> Any:
    return parse_json(wire)[0] if isinstance(wire, bytes | str) else wire


def _not_kept(size: int) -> str:
    return f"<not kept: {size:,} bytes, over the request log's limit per body (max_body_bytes)>"


class RequestLog(list[ReceivedRequest]):
    """The requests an emulator received, newest last, thread-safe: the oldest are dropped
    past ``max_count`` requests (1,000) or ``max_bytes`` of bodies kept as received (16 MiB;
    ``bytes`` holds the count). A body (or a Live session's messages) past
    ``max_body_bytes`` (1 MiB) is not kept. ``ValueError``: a limit not > 0. An entry is made
    before its body is parsed (one made amid a body's garbage pinned a 1 MiB arena of it)."""

    def __init__(
        self, max_count: int = 1000, max_bytes: int = 16 << 20, max_body_bytes: int = 1 << 20
    ) -> None:
        super().__init__()
        if min(max_count, max_bytes, max_body_bytes) <= 0:
            raise ValueError("The request log's limits must be positive.")
        self.max_count, self.max_bytes, self.bytes = max_count, max_bytes, 0
        self.max_body_bytes = min(max_body_bytes, max_bytes)
        self._kept: dict[ReceivedRequest, int] = {}  # bytes each logged request keeps
        self._lock = threading.Lock()

    def append(self, received: ReceivedRequest) -> None:
        """Log a request; ``received.size`` (bytes) is measured from its ``wire`` if 0."""
        if received.size == 0 and received.wire is not None:
            received.size = len(json.dumps(received.wire, default=str).encode("utf-8"))
        if received.size > self.max_body_bytes:
            received.wire = [] if isinstance(received.wire, list) else None
            received.truncated = True
        with self._lock:
            super().append(received)
            self._kept[received] = kept = 0 if received.truncated else received.size
            self._count(kept)

    def add_message(self, received: ReceivedRequest, message: bytes | str) -> None:
        """Append a Live API message, as received, to ``received.wire`` (a list)."""
        with self._lock:
            received.size += len(message)
            if received.truncated or received.size > self.max_body_bytes:
                received.truncated = True
                return
            received.wire.append(message)
            if received in self._kept:
                self._kept[received] += len(message)
                self._count(len(message))

    def _count(self, size: int) -> None:
        """Count ``size`` more bytes kept, then drop the oldest requests over a limit."""
        self.bytes += size
        while self and (len(self) > self.max_count or self.bytes > self.max_bytes):
            self.bytes -= self._kept.pop(super().pop(0), 0)

    def clear(self) -> None:
        with self._lock:
            super().clear()
            self._kept.clear()
            self.bytes = 0

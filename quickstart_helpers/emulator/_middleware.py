"""aiohttp middlewares every emulator route goes through, outermost first.

The emulator installs them as one middleware, :func:`guard` (the same checks and
answers in the same order, with one ``await`` per request instead of four); each is
also a middleware of its own.

1. :func:`json_errors`: every error is the API's error JSON
   (``{"error": {"code", "message", "status"}}``), never ``text/plain``: unknown routes
   get 404 ``NOT_FOUND`` and known routes called with another HTTP method 405, both
   naming the method and the path; an unexpected exception is a 500 ``INTERNAL``.
2. :func:`local_only`: the ``Host`` header must name this machine (127.0.0.1,
   ``localhost``, ``[::1]``), which defeats DNS rebinding; a browser ``Origin`` must be a
   page served from this machine too (any scheme and port). Browsers get CORS headers
   the way the live API answers them: the origin echoed in
   ``Access-Control-Allow-Origin``, preflight ``OPTIONS`` answered 200 with the allowed
   methods, the requested headers and ``Access-Control-Max-Age: 3600``.
3. :func:`merge_slashes`: repeated slashes in the path are one slash, as the live API
   treats them; the Python SDK with a base URL ending in ``/`` and the JavaScript SDK
   (always, for the Live API) send ``//v1beta/...`` and ``//ws/...``.
4. :func:`read_body_in_time`: the body is read before the handler, within the app's
   :data:`BODY_TIMEOUT` (408 beyond; read after merge_slashes, as aiohttp cannot clone
   a request once read).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL

from ._protocol import api_error

__all__ = [
    "ALLOWED_HOSTS",
    "BODY_TIMEOUT",
    "CORS_METHODS",
    "guard",
    "install",
    "read_body_in_time",
    "unparsable",
    "is_local_origin",
    "json_errors",
    "local_only",
    "merge_slashes",
]

logger = logging.getLogger("quickstart_helpers.emulator")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Host names the emulator answers to (any port).
ALLOWED_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: ``Access-Control-Allow-Methods`` of a preflight answer (the live API's list).
CORS_METHODS = "DELETE,GET,OPTIONS,PATCH,POST,PUT"
_SLASHES = re.compile(r"/{2,}")


#: App key: seconds a request has to send its whole body (see :func:`read_body_in_time`).
BODY_TIMEOUT = web.AppKey("body_timeout", float)


def install(app: web.Application, body_timeout: float = 60.0) -> None:
    """Add the emulator's middlewares to ``app`` (before it starts).

    Args:
        app: The emulator's application.
        body_timeout: Seconds a request has to send its body. Defaults to 60.
    """
    app[BODY_TIMEOUT] = body_timeout
    app.middlewares.append(guard)
    app.on_response_prepare.append(_cors_on_prepare)


def unparsable(status: int, request: web.BaseRequest | None, detail: str) -> web.Response:
    """The API's error JSON for a request aiohttp could not parse (a broken head).

    Used as the ``error_answer`` of :class:`quickstart_helpers._background.ErrorAnsweringRunner`.
    """
    code = "INVALID_ARGUMENT" if status < 500 else "INTERNAL"
    return api_error(status, code, f"The emulator could not read this request: {detail}".strip())


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The four middlewares below in one, in the same order and with the same answers.

    ``json_errors(local_only(merge_slashes(read_body_in_time(handler))))``, without a
    coroutine and an ``await`` per layer on every request.
    """
    try:
        refused = _local_answer(request)
        if refused is not None:
            return refused
        if "//" in request.rel_url.raw_path:
            return await _merged(request)
        if request.body_exists:
            if request.content.is_eof():
                await request.read()  # all of it has arrived: nothing to wait for (cached)
            else:
                late = await _read_in_time(request)
                if late is not None:
                    return late
        return await handler(request)
    except Exception as exc:  # noqa: BLE001 - answered as the API's error JSON
        return _error_answer(request, exc)


@web.middleware
async def read_body_in_time(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read a request's body before its handler, within the app's body timeout.

    A client that sends its body too slowly gets 408 in the API's JSON and the
    connection is closed; a body over the app's ``client_max_size`` gets 413.
    """
    if request.body_exists and request.content.is_eof():
        await request.read()  # all of it has arrived: nothing to wait for (cached)
    elif request.body_exists:
        late = await _read_in_time(request)
        if late is not None:
            return late
    return await handler(request)


#: ``asyncio.timeout`` (Python 3.11+) limits the read in this task; ``wait_for`` runs
#: it in a new one.
_timeout = getattr(asyncio, "timeout", None)


async def _read_in_time(request: web.Request) -> web.StreamResponse | None:
    """Read the body (cached for the handler) within the app's body timeout.

    Returns:
        None, or the 408 answer already sent (the connection is closed).
    """
    timeout = request.app[BODY_TIMEOUT]
    try:
        if _timeout is not None:
            async with _timeout(timeout):
                await request.read()
        else:  # pragma: no cover - Python 3.10
            await asyncio.wait_for(request.read(), timeout)
    except asyncio.TimeoutError:
        response = api_error(
            408,
            "DEADLINE_EXCEEDED",
            f"The request body did not arrive within {timeout:g} s; send it again.",
        )
        # The rest of the body may still trickle in: answer, then hang up at once.
        await response.prepare(request)
        await response.write_eof()
        if request.transport is not None:
            request.transport.close()
        return response
    return None


@functools.lru_cache(maxsize=256)
def _hostname(value: str) -> str | None:
    try:
        return urlsplit(f"//{value}").hostname
    except ValueError:
        return None


def is_local_origin(origin: str) -> bool:
    """Return whether a browser ``Origin`` is a page served from this machine."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.hostname in ALLOWED_HOSTS


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every HTTP error and exception into the API's error JSON."""
    try:
        return await handler(request)
    except Exception as exc:  # noqa: BLE001 - answered as the API's error JSON
        return _error_answer(request, exc)


def _error_answer(request: web.Request, exc: Exception) -> web.Response:
    """The API's error JSON for what a handler raised; an HTTP redirect is raised again."""
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return _as_api_error(request, exc)
    if isinstance(exc, RecursionError):  # deeply nested JSON a parser or validator walked into
        return _too_deep()
    return _internal(request, exc)  # a 500, logged


def _too_deep() -> web.Response:
    return api_error(
        400, "INVALID_ARGUMENT", "Invalid JSON payload received. The JSON is nested too deeply."
    )


def _internal(request: web.Request, exc: Exception) -> web.Response:
    logger.exception("The emulator failed on %s %s", request.method, request.path)
    return api_error(
        500, "INTERNAL", f"Internal error in the emulator: {type(exc).__name__}: {exc}"
    )


def _as_api_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    where = f"{request.method} {request.path}"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        response = api_error(
            405,
            "METHOD_NOT_ALLOWED",
            f"The method {request.method} is not allowed for {request.path}; "
            f"the emulator serves it with {allowed}.",
        )
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return response
    if isinstance(exc, web.HTTPNotFound):
        return api_error(
            404,
            "NOT_FOUND",
            f"The emulator does not serve {where}. See the README, 'What the emulator "
            "serves', or set GEMINI_API_KEY to use the live API.",
        )
    if exc.content_type == "application/json":
        return web.Response(
            status=exc.status, body=exc.body, content_type="application/json", headers=None
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return api_error(
            413,
            "INVALID_ARGUMENT",
            f"The request body is larger than the emulator's limit of "
            f"{request.client_max_size:,} bytes ({where}).",
        )
    status = {413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED"}.get(exc.status)
    if status is None:
        status = "INVALID_ARGUMENT" if exc.status < 500 else "INTERNAL"
    return api_error(exc.status, status, f"{exc.reason} ({where}): {exc.text or ''}".strip())


@web.middleware
async def local_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse foreign ``Host``/``Origin`` headers; answer CORS as the live API does."""
    answer = _local_answer(request)
    return answer if answer is not None else await handler(request)


def _local_answer(request: web.Request) -> web.StreamResponse | None:
    """:func:`local_only`'s answer (a refusal, a CORS preflight's), or None to go on."""
    host = _hostname(request.host)
    if host not in ALLOWED_HOSTS:
        return api_error(
            403,
            "PERMISSION_DENIED",
            f"The emulator answers requests for 127.0.0.1 or localhost only, not for "
            f"the host {request.host!r}.",
        )
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    if not is_local_origin(origin):
        return api_error(
            403,
            "PERMISSION_DENIED",
            f"The emulator answers browser pages served from this machine (localhost, "
            f"127.0.0.1) only, not pages from {origin!r}.",
        )
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response: web.StreamResponse = web.Response(status=200)
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            response.headers["Access-Control-Allow-Headers"] = requested
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Max-Age"] = "3600"
        return response
    return None


async def _cors_on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Add CORS headers to every answer to a local browser page, streams included."""
    origin = request.headers.get("Origin")
    if origin is not None and is_local_origin(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin, X-Origin, Referer"


@web.middleware
async def merge_slashes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve a path with repeated slashes as the same path with single slashes."""
    if "//" not in request.rel_url.raw_path:
        return await handler(request)
    return await _merged(request)


async def _merged(request: web.Request) -> web.StreamResponse:
    """Route a request whose path has repeated slashes as :func:`merge_slashes` does."""
    merged = URL.build(
        path=_SLASHES.sub("/", request.rel_url.raw_path),
        query_string=request.rel_url.raw_query_string,
        encoded=True,
    )
    clone = request.clone(rel_url=merged)
    match_info = await request.app.router.resolve(clone)
    match_info.add_app(request.app)
    match_info.freeze()
    # aiohttp has no public way to route a rewritten request: set what its own
    # dispatcher sets (``Application._handle``) and call the route's handler.
    clone._match_info = match_info  # noqa: SLF001
    return await read_body_in_time(clone, match_info.handler)

"""The middleware every emulator route goes through (:func:`guard`), in this order:

1. Local only: the ``Host`` and a browser's ``Origin`` (http or https, any port) must name this
   machine (127.0.0.1, ``localhost``, ``[::1]``), against DNS rebinding. CORS as the live API
   answers it: the origin echoed; a preflight ``OPTIONS`` answered 200 with the allowed
   methods, the requested headers and ``Access-Control-Max-Age: 3600``.
2. Repeated slashes are one, as the live API treats them (the Python SDK with a base URL ending
   in ``/`` and the JavaScript SDK's Live API send ``//v1beta/...``, ``//ws/...``).
3. The body is read within :data:`BODY_TIMEOUT` (else 408, the connection closed; 413 beyond
   the app's ``client_max_size``).
4. Every error is the API's error JSON: 404 for an unknown route and 405 for another method
   (naming both), 400 for JSON nested too deeply, 500 (logged) for an exception."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL

from ._protocol import api_error

logger = logging.getLogger("quickstart_helpers.emulator")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Host names the emulator answers to (any port).
ALLOWED_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: ``Access-Control-Allow-Methods`` of a preflight answer (the live API's list).
CORS_METHODS = "DELETE,GET,OPTIONS,PATCH,POST,PUT"
#: App key: seconds a request has to send its whole body.
BODY_TIMEOUT = web.AppKey("body_timeout", float)


def install(app: web.Application, body_timeout: float = 60.0) -> None:
    """Add :func:`guard` and the CORS headers to ``app`` (before it starts)."""
    app[BODY_TIMEOUT] = body_timeout
    app.middlewares.append(guard)
    app.on_response_prepare.append(_cors_headers)


def unparsable(status: int, request: web.BaseRequest | None, detail: str) -> web.Response:
    """The API's error JSON for a request aiohttp could not parse (a broken head)."""
    code = "INVALID_ARGUMENT" if status < 500 else "INTERNAL"
    return api_error(status, code, f"The emulator could not read this request: {detail}".strip())


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Local only, merged slashes, the body in time, JSON errors (see the module)."""
    try:
        if (refused := _local_answer(request)) is not None:
            return refused
        routed, route = request, handler
        if "//" in request.rel_url.raw_path:  # routed again; aiohttp clones unread requests
            routed, route = await _merged(request)
        if routed.body_exists and (late := await _read_in_time(routed)) is not None:
            return late
        return await route(routed)
    except Exception as exc:  # noqa: BLE001 - answered as the API's error JSON
        return _error_answer(request, exc)


def _local_answer(request: web.Request) -> web.StreamResponse | None:
    """A refusal or a CORS preflight's answer, or None to go on."""
    host = request.headers.get("Host", "")  # not request.host: it falls back to the FQDN
    if not _is_local(f"//{host}", ("",)):
        why = "The emulator answers requests for 127.0.0.1 or localhost only, not for the host"
        return api_error(403, "PERMISSION_DENIED", f"{why} {host or '(no Host header)'!r}.")
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    if not _is_local(origin):
        why = "The emulator answers browser pages served from this machine (localhost, 127.0.0.1)"
        return api_error(403, "PERMISSION_DENIED", f"{why} only, not pages from {origin!r}.")
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers = {"Access-Control-Allow-Methods": CORS_METHODS, "Access-Control-Max-Age": "3600"}
        if requested := request.headers.get("Access-Control-Request-Headers"):
            headers["Access-Control-Allow-Headers"] = requested
        return web.Response(status=200, headers=headers)
    return None


def _is_local(url: str, schemes: tuple[str, ...] = ("http", "https")) -> bool:
    """Whether ``url`` (an ``Origin``, or ``//`` and a ``Host``) names this machine, with no
    userinfo (``http://evil.com@127.0.0.1`` names 127.0.0.1 but is no browser's origin)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in schemes and parts.hostname in ALLOWED_HOSTS and "@" not in parts.netloc


async def _cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add CORS headers to every answer to a local browser page, streams included."""
    origin = request.headers.get("Origin")
    if origin is not None and _is_local(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin, X-Origin, Referer"


async def _merged(request: web.Request) -> tuple[web.Request, Handler]:
    """The request with single slashes, and the handler its route resolves to."""
    path = re.sub(r"/{2,}", "/", request.rel_url.raw_path)
    merged = URL.build(path=path, query_string=request.rel_url.raw_query_string, encoded=True)
    clone = request.clone(rel_url=merged)
    match_info = await request.app.router.resolve(clone)
    match_info.add_app(request.app)
    match_info.freeze()
    # aiohttp has no public way to route a rewritten request: set what its own
    # dispatcher sets (``Application._handle``) and call the route's handler.
    clone._match_info = match_info  # noqa: SLF001
    return clone, match_info.handler


async def _read_in_time(request: web.Request) -> web.StreamResponse | None:
    """Read the body (kept for the handler) in time; None, or the 408 sent and hung up."""
    if request.content.is_eof():  # all of it has arrived: nothing to wait for
        await request.read()
        return None
    timeout = request.app[BODY_TIMEOUT]
    try:
        await asyncio.wait_for(request.read(), timeout)
    except asyncio.TimeoutError:
        why = f"The request body did not arrive within {timeout:g} s; send it again."
        response = api_error(408, "DEADLINE_EXCEEDED", why)
        # The rest of the body may still trickle in: answer, then hang up at once.
        await response.prepare(request)
        await response.write_eof()
        if request.transport is not None:
            request.transport.close()
        return response
    return None


def _error_answer(request: web.Request, exc: Exception) -> web.Response:
    """The API's error JSON for what a handler raised; an HTTP redirect is raised again."""
    where = f"{request.method} {request.path}"
    if isinstance(exc, RecursionError):  # deeply nested JSON a parser or validator walked into
        why = "Invalid JSON payload received. The JSON is nested too deeply."
        return api_error(400, "INVALID_ARGUMENT", why)
    if not isinstance(exc, web.HTTPException):
        logger.exception("The emulator failed on %s", where)
        why = f"Internal error in the emulator: {type(exc).__name__}: {exc}"
        return api_error(500, "INTERNAL", why)
    if exc.status < 400:
        raise exc
    allowed = sorted(getattr(exc, "allowed_methods", ()))
    message = {
        404: f"The emulator does not serve {where}. See docs/offline.md, 'What the "
        "emulator serves', or set GEMINI_API_KEY to use the live API.",
        405: f"The method {request.method} is not allowed for {request.path}; the emulator "
        f"serves it with {', '.join(allowed)}.",
        413: "The request body is larger than the emulator's limit of "
        f"{request.client_max_size:,} bytes ({where}).",
    }.get(exc.status, f"{exc.reason} ({where}): {exc.text or ''}".strip())
    default = "INVALID_ARGUMENT" if exc.status < 500 else "INTERNAL"
    status = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status, default)
    response = api_error(exc.status, status, message)
    if allowed:
        response.headers["Allow"] = ",".join(allowed)
    return response

"""The web chat's front door: only its own page may call it, and every error is JSON.

A request is refused with 403 when its ``Host`` is missing or not an address served (DNS
rebinding), when its ``Origin`` is not the page's own (one with userinfo never is), or when
a browser marks it ``Sec-Fetch-Site`` other than ``same-origin``/``none``; a ``POST`` that
is not ``application/json`` gets 415. Every answer to an error, from a handler or from
aiohttp itself, is ``{"error": <code>, "reason": <what to do>}``.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web

from ._scrub import scrub
from .errors import BadChatInput

logger = logging.getLogger("quickstart_helpers.web")

#: Largest request body (``POST /chat``), in bytes; a bigger one gets 413.
MAX_BODY_BYTES = 256 * 1024


def json_error(status: int, code: str, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "reason": reason, **extra}, status=status)


def http_error(status: int, request: web.BaseRequest | None, detail: str = "") -> web.Response:
    """The JSON answer to an HTTP error: 404, 405, 413, a request aiohttp cannot parse ..."""
    phrase = HTTPStatus(status).phrase
    code = "request_too_large" if status == 413 else phrase.lower().replace(" ", "_")
    known = request is not None and request.method != "ERROR"
    path, method = (request.path, request.method) if known else ("this path", "This method")
    reason = {
        400: f"The request could not be read: {scrub(detail) or 'it is malformed'}",
        404: f"There is nothing at {path}; the chat page is at /.",
        405: f"{method} is not allowed on {path}.",
        413: f"The body is too large; the limit is {MAX_BODY_BYTES} bytes.",
    }.get(status, f"{phrase}.")
    return json_error(status, code, reason)


def refusal(request: web.Request, hosts: frozenset[str], origins: frozenset[str]) -> Any:
    """The 403/415 answer to a request from outside the chat's page, or None.

    ``hosts`` (``name:port``, or ``name`` for any port) and ``origins`` are accepted
    besides loopback on the port served.
    """
    host = (request.headers.get("Host") or "").lower()
    port = request.transport.get_extra_info("sockname")[1] if request.transport else 0
    allowed = {
        *hosts,
        *(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")),
    }
    origin, site = request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site")
    if host not in allowed and host.rpartition(":")[0] not in hosts:
        code, reason = (
            "forbidden_host",
            (
                f"This server answers requests for {', '.join(sorted(allowed))} only, not "
                f"{host or 'a request without a Host header'!r}. Open the page at the address "
                "`quickstart serve` printed."
            ),
        )
    elif origin is not None and origin.lower() not in {
        f"http://{host}",
        f"https://{host}",
        *origins,
    }:
        code = "forbidden_origin"
        reason = f"Requests from the page at {origin!r} are refused: only the chat's page may."
    elif site not in (None, "same-origin", "none"):
        code = "cross_site_request"
        reason = f"The browser marked this request {site}: only the chat's own page may call."
    elif (
        request.method not in ("GET", "HEAD", "OPTIONS")
        and request.content_type != "application/json"
    ):
        sent = request.headers.get("Content-Type") or "no content type"
        reason = f"Send the body as JSON ('Content-Type: application/json'), not {sent!r}."
        return json_error(415, "unsupported_media_type", reason)
    else:
        return None
    return json_error(403, code, reason)


def middleware(hosts: frozenset[str], origins: frozenset[str], secrets: tuple[str, ...]) -> Any:
    """The middleware every request passes: :func:`refusal`, then any error as JSON."""

    @web.middleware
    async def front_door(request: web.Request, handler: Any) -> web.StreamResponse:
        refused = refusal(request, hosts, origins)
        if refused is not None:
            return refused
        try:
            return await handler(request)
        except BadChatInput as bad:
            response = json_error(bad.status, bad.code, bad.reason, **bad.extra)
            if bad.status == 408:  # the rest of the body may still trickle in: hang up
                await response.prepare(request)
                await response.write_eof()
                request.transport.close()  # type: ignore[union-attr]
            return response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = http_error(exc.status, request)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # noqa: BLE001 - answered as JSON, logged without keys
            error = scrub(f"{type(exc).__name__}: {exc}", secrets)
            logger.error("%s %s failed: %s", request.method, request.path, error)
            reason = "The chat server failed on this request (see its log); try again."
            return json_error(500, "internal_error", reason)

    return front_door

"""The web chat's front door: who may call it, and every error answered as JSON.

Only the chat's own page may call the relay. A request is refused (403) when its ``Host``
is missing or not an address served (DNS rebinding), when its ``Origin`` is not the page's
own (an Origin with userinfo never is), or when a browser marks it ``Sec-Fetch-Site``
other than ``same-origin``/``none``; a ``POST`` that is not ``application/json`` gets 415.
Every error, from a handler or from aiohttp itself, is ``{"error": code, "reason": ...}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from ._scrub import scrub
from .errors import BadChatInput

logger = logging.getLogger("quickstart_helpers.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Largest request body (``POST /chat``), in bytes; a bigger one gets 413.
MAX_BODY_BYTES = 256 * 1024


def json_error(status: int, code: str, reason: str, **extra: Any) -> web.Response:
    """The JSON answer ``{"error": code, "reason": reason, **extra}`` with ``status``."""
    return web.json_response({"error": code, "reason": reason, **extra}, status=status)


def refusal(request: web.Request, hosts: frozenset[str], origins: frozenset[str]) -> Any:
    """Return the 403/415 answer to a request from outside the chat's page, or None.

    ``hosts`` and ``origins`` are accepted besides loopback on the port served.
    """
    host = (request.headers.get("Host") or "").lower()
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    allowed = set(hosts)
    if sockname:
        names = ("127.0.0.1", "localhost", "[::1]")
        allowed |= {f"{name}:{sockname[1]}" for name in names}
        allowed |= set(names) if sockname[1] == 80 else set()
    name = host if host.endswith("]") else host.rpartition(":")[0] or host
    if host not in allowed and name not in hosts:
        return json_error(
            403,
            "forbidden_host",
            f"This server answers requests for {', '.join(sorted(allowed))} only, not "
            f"{host or 'a request without a Host header'!r}. Open the page at the address "
            "`quickstart serve` printed.",
        )
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in {f"http://{host}", f"https://{host}", *origins}:
        return json_error(
            403,
            "forbidden_origin",
            f"Requests from the page at {origin!r} are refused: only the chat's own page "
            "may call it.",
        )
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return json_error(
            403,
            "cross_site_request",
            f"The browser marked this request as {site} (made by another site's page); "
            "only the chat's own page may call it.",
        )
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.content_type != (
        "application/json"
    ):
        return json_error(
            415,
            "unsupported_media_type",
            f"Send the body as JSON with 'Content-Type: application/json', not "
            f"{request.headers.get('Content-Type') or 'no content type'!r}.",
        )
    return None


_REASONS = {
    400: ("bad_request", "The request could not be read: {detail}"),
    404: ("not_found", "There is nothing at {path}; the chat page is at /."),
    405: ("method_not_allowed", "{method} is not allowed on {path}."),
    408: ("request_timeout", "The request was not sent in time; send it again."),
    413: ("request_too_large", f"The body is too large; the limit is {MAX_BODY_BYTES} bytes."),
}


def http_error(status: int, request: web.BaseRequest | None, detail: str = "") -> web.Response:
    """The JSON answer to an HTTP error (404, 405, 413, an unparsable request ...)."""
    phrase = HTTPStatus(status).phrase
    code, template = _REASONS.get(status, (phrase.lower().replace(" ", "_"), "{phrase}."))
    known = request is not None and request.method != "ERROR"
    reason = template.format(
        path=request.path if known else "this path",  # type: ignore[union-attr]
        method=request.method if request is not None else "This method",
        detail=scrub(detail) or "it is malformed",
        phrase=phrase,
    )
    return json_error(status, code, reason)


def middleware(hosts: frozenset[str], origins: frozenset[str], secrets: tuple[str, ...]) -> Any:
    """The middleware every request passes: :func:`refusal`, then errors as JSON."""

    @web.middleware
    async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
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
                if request.transport is not None:
                    request.transport.close()
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
            return json_error(
                500,
                "internal_error",
                "The chat server failed on this request; the error is in its log. Try again.",
            )

    return front_door

"""The web chat's front door: only its own page may call it, and every error is JSON.

A request is refused with 403 when its ``Host`` is missing or not an address served (DNS
rebinding), when its ``Origin`` is not the page's own (one with userinfo never is), or when
a browser marks it ``Sec-Fetch-Site`` other than ``same-origin``/``none``; a ``POST`` that
is not ``application/json`` gets 415. Every error, from a handler or from aiohttp itself,
is answered ``{"error": <code>, "reason": <what to do>, ...}``.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web

from ._scrub import scrub

logger = logging.getLogger("quickstart_helpers.web")
MAX_BODY_BYTES = 256 * 1024  # the largest request body (``POST /chat``); a bigger one: 413


class ChatError(web.HTTPException):
    """Raise it to answer ``status`` with ``{"error": code, "reason": reason, **extra}``."""

    def __init__(self, status: int, code: str, reason: str, **extra: Any) -> None:
        self.status_code = status
        body = json.dumps({"error": code, "reason": reason, **extra}, ensure_ascii=False)
        super().__init__(text=body, content_type="application/json")


def http_error(status: int, request: Any = None, detail: str = "") -> web.Response:
    """The JSON answer to aiohttp's own errors (404, 405, 413, a request it cannot parse)."""
    phrase = HTTPStatus(status).phrase
    code = "request_too_large" if status == 413 else phrase.lower().replace(" ", "_")
    reason = {
        404: "There is nothing at this path; the chat page is at /.",
        405: "This method is not allowed on this path (see the Allow header).",
        413: f"The body is too large; the limit is {MAX_BODY_BYTES} bytes.",
    }.get(status, f"{phrase}: {scrub(detail) or 'the request could not be read'}.")
    return web.json_response({"error": code, "reason": reason}, status=status)


def check_caller(request: web.Request, relay: Any) -> None:
    """Raise 403 or 415 for a request from outside the chat's page (``relay``'s
    ``allowed_hosts`` and ``allowed_origins`` are accepted besides loopback)."""
    hosts, host = relay.allowed_hosts, (request.headers.get("Host") or "").lower()
    port = request.transport.get_extra_info("sockname")[1] if request.transport else 0
    allowed = {*hosts, *(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]"))}
    origin, site = request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site")
    if host not in allowed and host.rpartition(":")[0] not in hosts:
        reason = f"This server answers requests for {', '.join(sorted(allowed))} only, not "
        reason += f"{host or 'a request without a Host header'!r}. Open the page at its address."
        raise ChatError(403, "forbidden_host", reason)
    own_page = {f"http://{host}", f"https://{host}", *relay.allowed_origins}
    if origin is not None and origin.lower() not in own_page:
        reason = f"Requests from the page at {origin!r} are refused: only the chat's page may."
        raise ChatError(403, "forbidden_origin", reason)
    if site not in (None, "same-origin", "none"):
        reason = f"The browser marked this request {site}: only the chat's own page may call."
        raise ChatError(403, "cross_site_request", reason)
    if request.method == "POST" and request.content_type != "application/json":
        sent = request.headers.get("Content-Type") or "no content type"
        reason = f"Send the body as JSON ('Content-Type: application/json'), not {sent!r}."
        raise ChatError(415, "unsupported_media_type", reason)


def front_door(relay: Any) -> Any:
    """The middleware every request passes: :func:`check_caller`, then any error as JSON;
    ``relay`` is the app's ``web.Relay``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        check_caller(request, relay)
        try:
            return await handler(request)
        except web.HTTPException as exc:  # aiohttp's own (404, 405, 413 ...) get JSON too
            if exc.status >= 400 and not isinstance(exc, ChatError):
                exc.text, exc.content_type = http_error(exc.status).text, "application/json"
            raise
        except ConnectionResetError:
            raise
        except Exception as exc:  # noqa: BLE001 - answered as JSON, logged without keys
            detail = scrub(f"{type(exc).__name__}: {exc}", relay.secrets)
            logger.error("%s %s failed: %s", request.method, request.path, detail)
            reason = "The chat server failed on this request (see its log); try again."
            raise ChatError(500, "internal_error", reason) from None

    return middleware

"""Protocol pieces the emulator's HTTP and Live API routes share.

The API's error JSON, the key check, model name normalisation and the record of
received requests. Nothing here knows about aiohttp routes or cassettes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = [
    "IMAGE_OUTPUT_MODELS",
    "INVALID_KEY",
    "INVALID_KEY_ERROR",
    "MISSING_KEY_MESSAGE",
    "RECORD_COMMAND",
    "ReceivedRequest",
    "api_error",
    "bare_model",
    "error_body",
    "key_error",
    "short",
]

#: How users record, named in the errors of replay-only modes.
RECORD_COMMAND = (
    "quickstart record NOTEBOOK --cassettes DIR (or pytest --gemini-record-mode=once, "
    "or QUICKSTART_MODE=record with QUICKSTART_RECORD_MODE=once)"
)

#: The body the live API returns (HTTP 400) for an API key that is not valid.
INVALID_KEY_ERROR: dict[str, Any] = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    }
}

#: API key value that triggers :data:`INVALID_KEY_ERROR`.
INVALID_KEY = "invalid"

#: The live API's message (HTTP 403 ``PERMISSION_DENIED``) for a request without a key.
MISSING_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)

#: The models that can output images (``responseModalities`` with ``IMAGE``); the
#: emulator refuses such a request to any other model as the live API does (400).
IMAGE_OUTPUT_MODELS: frozenset[str] = frozenset(
    {
        "gemini-2.0-flash-exp",
        "gemini-2.0-flash-exp-image-generation",
        "gemini-2.0-flash-preview-image-generation",
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-image-preview",
        "gemini-3-pro-image-preview",
        "gemini-3.1-flash-image-preview",
        "gemini-3.1-flash-lite-image",
    }
)


def bare_model(model: str) -> str:
    """Return a model name without its ``models/`` prefix."""
    return model.removeprefix("models/")


def short(text: str, limit: int = 60) -> str:
    """Return ``text`` with white space folded, cut to ``limit`` characters with ``…``."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_body(code: int, status: str, message: str) -> dict[str, Any]:
    """Return the API's error JSON: ``{"error": {"code", "message", "status"}}``."""
    return {"error": {"code": code, "message": message, "status": status}}


def api_error(code: int, status: str, message: str) -> web.Response:
    """Return an aiohttp response with the API's error JSON.

    Args:
        code: HTTP status code, e.g. 404.
        status: The ``google.rpc.Code`` name, e.g. ``"NOT_FOUND"``.
        message: Human-readable message for ``error.message``.
    """
    return web.json_response(error_body(code, status, message), status=code)


def key_error(request: web.Request) -> web.Response | None:
    """Return the live API's error for a missing or invalid key, else None.

    The key is read from the ``x-goog-api-key`` header or the ``key`` query parameter
    and never kept.
    """
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if not key:
        return api_error(403, "PERMISSION_DENIED", MISSING_KEY_MESSAGE)
    if key == INVALID_KEY:
        return web.json_response(INVALID_KEY_ERROR, status=400)
    return None


@dataclass
class ReceivedRequest:
    """A request the emulator received (the API key is never kept).

    Attributes:
        method: ``generateContent``, ``streamGenerateContent`` or ``BidiGenerateContent``.
        model: Model name from the URL, without ``models/``.
        api_version: Version segment of the URL, e.g. ``v1beta``.
        body: The JSON body (for the Live API, the list of messages the client sent).
        cassette: Name of the cassette that answered, or None.
    """

    method: str
    model: str
    api_version: str
    body: Any
    cassette: str | None = None

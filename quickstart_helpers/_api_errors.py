"""Reading the API's errors: its message, one line of advice, and a note for ``quickstart run``.

No I/O here. A helper that *shows* an error instead of raising it (the web chat, a display)
calls :func:`record_handled_error`, which logs a record on the logger
``quickstart_helpers.handled_errors``; ``quickstart run`` attaches a handler to it in each
kernel and fails the cell unless it is tagged ``expect-api-error``. Elsewhere the record
goes nowhere. ``google.genai`` is imported only when an error is read.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

#: Where :func:`record_handled_error` logs (INFO, the record in ``extra={"api_error": ...}``).
HANDLED_LOGGER = "quickstart_helpers.handled_errors"

#: How the offline emulator's 404 ``NOT_FOUND`` begins when no cassette holds a request.
_UNRECORDED = re.compile(r"No recorded (response|interaction) \(cassette\)")


def _unparsed_error(message: Any) -> dict[str, Any] | None:
    """The ``error`` object when an SDK error's message is the whole error body (the SDK's
    aiohttp transport does not parse an error sent before a stream's first chunk)."""
    if isinstance(message, str) and message.lstrip().startswith("{"):
        try:
            inner = json.loads(message).get("error")
        except (ValueError, AttributeError):
            return None
        return inner if isinstance(inner, dict) else None
    return None


def _body(err: Any) -> dict[str, Any]:
    details: Any = getattr(err, "details", None) or getattr(err, "body", None) or {}
    body = details.get("error", details) if isinstance(details, dict) else {}
    return _unparsed_error(getattr(err, "message", None)) or body


def _reasons(err: Any) -> set[str]:
    found = {d.get("reason", "") for d in _body(err).get("details") or [] if isinstance(d, dict)}
    return found - {""}


def status(err: Any) -> str | None:
    """The API's status name (``INVALID_ARGUMENT`` ...), also from an unparsed body."""
    return _body(err).get("status") or getattr(err, "status", None)


def code_and_message(err: BaseException) -> tuple[int | None, str]:
    """The HTTP status and the API's error message of an SDK error, else ``(None, "")``.

    Reads ``google.genai.errors.APIError`` (``code``, ``message``) and the Interactions
    API's errors (``status_code``, the message in the JSON ``body``).
    """
    code = getattr(err, "code", None)
    if not isinstance(code, int):
        code = getattr(err, "status_code", None)
    if not isinstance(code, int):
        return None, ""
    message = _body(err).get("message") or getattr(err, "message", None)
    return code, message.strip() if isinstance(message, str) else ""


def is_invalid_api_key(err: BaseException) -> bool:
    """Whether ``err`` is the API's answer to a key that is not valid (HTTP 400
    ``INVALID_ARGUMENT``, reason ``API_KEY_INVALID``)."""
    from google.genai import errors

    return isinstance(err, errors.ClientError) and (
        "API_KEY_INVALID" in _reasons(err) or "API key not valid" in (err.message or "")
    )


def is_unrecorded_request(err: BaseException) -> bool:
    """Whether ``err`` is the offline emulator's 404 saying no recording answers a request
    ("No recorded response (cassette)" or "No recorded interaction (cassette)"); the live
    API never sends it."""
    code, message = code_and_message(err)
    return code == 404 and _UNRECORDED.match(message) is not None


def advice(err: BaseException) -> str:
    """One line saying what to do about an API error."""
    code, message = code_and_message(err)
    if is_invalid_api_key(err):
        return (
            "Is your API key valid? Set GEMINI_API_KEY (environment, .env or Colab secret) "
            "to a key from https://aistudio.google.com/apikey."
        )
    if is_unrecorded_request(err):
        return (
            "Offline mode replays recorded prompts only: set GEMINI_API_KEY to ask your own, "
            "or record this prompt with `quickstart record`."
        )
    if code == 403 and "API key" in message:
        return "Set GEMINI_API_KEY to a key from https://aistudio.google.com/apikey."
    return {
        403: "The key is not allowed to use this model or API.",
        404: "Check the model name.",
        429: "You hit a rate limit or quota; wait a moment and try again.",
    }.get(code or 0, "Try again in a moment." if (code or 0) >= 500 else "Check the request.")


def explain_api_error(err: BaseException) -> str:
    """One paragraph: what the API answered and what to do next. The error counts as
    handled (:func:`record_handled_error`)."""
    record_handled_error(err)
    code, message = code_and_message(err)
    if code is None:
        return f"The request failed: {type(err).__name__}: {err}"
    name = status(err)
    if message and not message.endswith((".", "!", "?")):
        message += "."
    return f"The Gemini API answered {code}{f' {name}' if name else ''}: {message} {advice(err)}"


def record_handled_error(err: BaseException) -> None:
    """Log that a failed model call was shown instead of raised (see the module's note).

    The record holds the exception's type and, for an API error, its code, status and
    reasons: never its message, which could quote a key.
    """
    logger = logging.getLogger(HANDLED_LOGGER)
    if not logger.isEnabledFor(logging.INFO):
        return
    record: dict[str, Any] = {"type": type(err).__name__}
    code, _ = code_and_message(err)
    if code is not None:
        record.update(code=code, status=status(err), reasons=sorted(_reasons(err)))
    logger.info("handled %s", record["type"], extra={"api_error": record})

"""Reading the API's errors: the message, one line of advice, and a note for ``quickstart run``.

No I/O: a helper that *shows* an error instead of raising it (the web chat, a display) calls
:func:`record_handled_error`, which logs a record on :data:`HANDLED_LOGGER`; ``quickstart
run`` writes those records from each kernel and fails the cell unless it is tagged
``expect-api-error``. ``google.genai`` is imported only when an error is read.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

HANDLED_LOGGER = "quickstart_helpers.handled_errors"
#: How the offline emulator's 404 begins when no cassette holds a request.
_UNRECORDED = re.compile(r"No recorded (response|interaction) \(cassette\)")


def _body(err: Any) -> dict[str, Any]:
    """The API's ``error`` object; also when the SDK left it unparsed as the message (its
    aiohttp transport does, for an error sent before a stream's first chunk), and for the
    Interactions API's errors (``body``)."""
    message = getattr(err, "message", None)
    if isinstance(message, str) and message.lstrip().startswith("{"):
        try:
            inner = json.loads(message).get("error")
        except (ValueError, AttributeError):
            inner = None
        if isinstance(inner, dict):
            return inner
    details: Any = getattr(err, "details", None) or getattr(err, "body", None) or {}
    body = details.get("error", details) if isinstance(details, dict) else {}
    return body if isinstance(body, dict) else {}


def _reasons(err: Any) -> set[str]:
    found = {d.get("reason", "") for d in _body(err).get("details") or [] if isinstance(d, dict)}
    return found - {""}


def status(err: Any) -> str | None:
    """The API's status name (``INVALID_ARGUMENT`` ...) of an error."""
    return _body(err).get("status") or getattr(err, "status", None)


def code_and_message(err: BaseException) -> tuple[int | None, str]:
    """The HTTP status and the API's message of an SDK error, else ``(None, "")``."""
    code = getattr(err, "code", None)
    code = code if isinstance(code, int) else getattr(err, "status_code", None)
    if not isinstance(code, int):
        return None, ""
    message = _body(err).get("message") or getattr(err, "message", None)
    return code, message.strip() if isinstance(message, str) else ""


def is_invalid_api_key(err: BaseException) -> bool:
    """Whether ``err`` is the API's 400 ``INVALID_ARGUMENT`` for a bad key (``API_KEY_INVALID``)."""
    from google.genai import errors

    return isinstance(err, errors.ClientError) and (
        "API_KEY_INVALID" in _reasons(err) or "API key not valid" in (err.message or "")
    )


def is_unrecorded_request(err: BaseException) -> bool:
    """Whether ``err`` is the offline emulator's 404 for a request no recording answers (the
    live API never sends it)."""
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
    """One paragraph: what the API answered and what to do. Counts as handled."""
    record_handled_error(err)
    code, message = code_and_message(err)
    if code is None:
        return f"The request failed: {type(err).__name__}: {err}"
    if is_invalid_api_key(err):
        return f"The Gemini API rejected the API key (400 INVALID_ARGUMENT). {advice(err)}"
    name = status(err)
    if message and not message.endswith((".", "!", "?")):
        message += "."
    return f"The Gemini API answered {code}{f' {name}' if name else ''}: {message} {advice(err)}"


def record_handled_error(err: BaseException) -> None:
    """Log that a failed call was shown, not raised: its type, code, status and reasons, never
    its message (it could quote a key)."""
    logger = logging.getLogger(HANDLED_LOGGER)
    if logger.isEnabledFor(logging.INFO):
        record: dict[str, Any] = {"type": type(err).__name__}
        code, _ = code_and_message(err)
        if code is not None:
            record.update(code=code, status=status(err), reasons=sorted(_reasons(err)))
        logger.info("handled %s", record["type"], extra={"api_error": record})

"""Turn Gemini API errors into short, friendly explanations.

An error that is explained is handled: shown instead of raised. So that a headless run
cannot mistake such a notebook for a good one, :func:`explain_api_error` (and the web
chat, for every failed model stream) also calls :func:`record_handled_error`, which notes
the error in the file ``quickstart run`` names in ``$QUICKSTART_ERROR_LOG``; the runner
then fails the notebook at that cell unless the cell is tagged ``expect-api-error``.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from google.genai import errors

__all__ = [
    "ERROR_LOG_ENV",
    "describe_handled_error",
    "explain_api_error",
    "is_invalid_api_key",
    "record_handled_error",
]

#: Environment variable naming the file where handled errors are recorded, one JSON
#: object per line. ``quickstart run`` sets it for each notebook's kernel.
ERROR_LOG_ENV = "QUICKSTART_ERROR_LOG"

_log_lock = threading.Lock()


def _reasons(err: errors.APIError) -> set[str]:
    details: Any = err.details or {}
    body = details.get("error", details) if isinstance(details, dict) else {}
    return {d.get("reason", "") for d in (body.get("details") or []) if isinstance(d, dict)} - {""}


def is_invalid_api_key(err: BaseException) -> bool:
    """Return whether ``err`` is the API's answer to a key that is not valid.

    That answer is HTTP 400 ``INVALID_ARGUMENT`` with the reason ``API_KEY_INVALID``.
    """
    return isinstance(err, errors.ClientError) and (
        "API_KEY_INVALID" in _reasons(err) or "API key not valid" in (err.message or "")
    )


def record_handled_error(err: BaseException) -> None:
    """Note that a failed model call was handled (shown, not raised), for ``quickstart run``.

    Appends one JSON line to the file named by ``$QUICKSTART_ERROR_LOG``; does nothing
    when it is unset (interactive use, tests) or cannot be written. The record holds the
    exception type and, for an ``APIError``, its code, status and reasons: never its
    message, which could quote a key.

    Args:
        err: The exception that was handled.
    """
    path = os.environ.get(ERROR_LOG_ENV)
    if not path:
        return
    record: dict[str, Any] = {"type": type(err).__name__}
    if isinstance(err, errors.APIError):
        record.update(code=err.code, status=err.status, reasons=sorted(_reasons(err)))
    try:
        with _log_lock, open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
    except OSError:
        pass


def describe_handled_error(record: dict[str, Any]) -> str:
    """Return one line for a record of :func:`record_handled_error`.

    Example: ``ClientError 400 INVALID_ARGUMENT (API_KEY_INVALID)``.
    """
    words = [str(record.get("type", "error"))]
    words += [str(record[k]) for k in ("code", "status") if record.get(k) is not None]
    reasons = record.get("reasons") or []
    if reasons:
        words.append(f"({', '.join(map(str, reasons))})")
    return " ".join(words)


def explain_api_error(err: BaseException) -> str:
    """Return a one-paragraph explanation of an API error, with what to do next.

    The error counts as handled: :func:`record_handled_error` notes it, so
    ``quickstart run`` reports the cell that showed it as failed unless the cell is
    tagged ``expect-api-error``.

    Args:
        err: Usually a ``google.genai.errors.APIError`` (``ClientError`` for 4xx,
            ``ServerError`` for 5xx); other exceptions get a generic explanation.
    """
    record_handled_error(err)
    if is_invalid_api_key(err):
        return (
            "The Gemini API rejected the API key (400 INVALID_ARGUMENT, API_KEY_INVALID). "
            "Is your API key valid? Check GEMINI_API_KEY in your environment or in .env "
            "(see .env.example), or create a new key at https://aistudio.google.com/apikey."
        )
    if isinstance(err, errors.APIError):
        what = f"{err.code} {err.status}" if err.status else str(err.code)
        advice = {
            403: "The key is not allowed to use this model or API.",
            404: "Check the model name, or (offline) record a cassette for this request.",
            429: "You hit a rate limit or quota; wait a moment and try again.",
        }.get(err.code, "Try again in a moment." if err.code >= 500 else "Check the request.")
        message = (err.message or "").strip()
        if message and not message.endswith((".", "!", "?")):
            message += "."
        return f"The Gemini API answered {what}: {message} {advice}"
    return f"The request failed: {type(err).__name__}: {err}"

"""Every exception class of the package, and friendly explanations of API errors.

The exceptions are importable from here and, for convenience, from the module that
raises them (``quickstart_helpers.display.StreamInterrupted`` and so on).
``google.genai`` is imported only when an API error is explained, so importing this
module is cheap.

An error that is explained is handled: shown instead of raised. So that a headless run
cannot mistake such a notebook for a good one, :func:`explain_api_error` (and the web
chat, for every failed model stream) also calls :func:`record_handled_error`, which notes
the error in the file ``quickstart run`` names in ``$QUICKSTART_ERROR_LOG``; the runner
then fails the notebook at that cell unless the cell is tagged ``expect-api-error``.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any

from . import settings

if TYPE_CHECKING:
    from google.genai import errors as genai_errors

    from .parts import PartsSummary

__all__ = [
    "CassetteError",
    "BadChatInput",
    "ConversationNotFoundError",
    "HandledErrorInCell",
    "IllegalTransitionError",
    "InvalidApiKeyError",
    "LiveSessionClosed",
    "MissingApiKeyError",
    "PartsStreamInterrupted",
    "RequestInvalid",
    "RecordingError",
    "StreamInterrupted",
    "describe_handled_error",
    "explain_api_error",
    "is_invalid_api_key",
    "is_unrecorded_request",
    "record_handled_error",
]

_log_lock = threading.Lock()


class MissingApiKeyError(RuntimeError):
    """Raised when a key is required and none of the sources holds one."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or (
                "No Gemini API key found. Set the GEMINI_API_KEY environment variable, "
                "or copy .env.example to .env at the repository root and put your key "
                "after GEMINI_API_KEY= (get one at https://aistudio.google.com/apikey). "
                "Without a key, use mode='offline' to replay recorded responses."
            )
        )


class InvalidApiKeyError(RuntimeError):
    """The API rejected the key and no valid one was entered.

    The original ``ClientError`` is the ``__cause__``.
    """


class StreamInterrupted(RuntimeError):
    """A stream failed midway. ``text`` holds everything that arrived before it broke.

    Attributes:
        text: The partial text, already rendered.
    """

    def __init__(self, text: str, cause: BaseException) -> None:
        super().__init__(
            f"The stream broke after {len(text)} characters ({type(cause).__name__}: {cause}). "
            "The partial text is kept in .text; retry the request to get the whole answer."
        )
        self.text = text


class PartsStreamInterrupted(RuntimeError):
    """A mixed stream failed midway; ``summary`` holds everything that arrived.

    Attributes:
        summary: The :class:`~quickstart_helpers.parts.PartsSummary` up to the failure:
            its text, counts and the files already saved.
    """

    def __init__(self, summary: PartsSummary, cause: BaseException) -> None:
        super().__init__(
            f"The stream broke after {summary.chunks} chunks ({type(cause).__name__}: "
            f"{cause}). What arrived is kept: {summary.text_parts} text parts and "
            f"{len(summary.files)} saved files, in .summary. Retry the request for the rest."
        )
        self.summary = summary


class IllegalTransitionError(ValueError):
    """Raised when a message is asked to make a move its state machine forbids."""


class ConversationNotFoundError(FileNotFoundError):
    """Raised by ``Conversation.load`` when no conversation is stored under a key."""


class CassetteError(ValueError):
    """A cassette file is not valid: the message names the file and the bad field."""


class RecordingError(RuntimeError):
    """Record mode could not write a cassette (a secret would reach it, or it is invalid).

    Nothing is written when it is raised.
    """


class LiveSessionClosed(Exception):
    """Ends a Live API emulator session with a WebSocket close code and reason.

    Attributes:
        code: The close code (1007 invalid argument, 1008 not found, 1011 internal).
        reason: The short reason sent in the close frame (at most 123 bytes once encoded).
        detail: The full explanation, logged by the emulator.
    """

    def __init__(self, code: int, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.detail = detail or reason


class HandledErrorInCell(Exception):
    """A notebook cell without the ``expect-api-error`` tag showed a failed model call.

    Raised by ``quickstart run`` (the notebook runner) so that a handled, shown error
    fails the run instead of passing silently.
    """


class BadChatInput(Exception):
    """The web chat refuses a request; answered as JSON ``{"error": code, "reason": ...}``.

    Attributes:
        status: HTTP status, e.g. 400.
        code: Machine-readable error code, e.g. ``"missing_message"``.
        reason: What went wrong and what to do, for people.
        extra: More JSON fields for the answer.
    """

    def __init__(self, status: int, code: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason, self.extra = status, code, reason, extra


class RequestInvalid(Exception):
    """A request body the live API would refuse (400 ``INVALID_ARGUMENT``); emulator use.

    Attributes:
        violations: ``(field path, description)`` pairs, the path in snake_case.
    """

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        self.violations = violations
        super().__init__("\n".join(d for _, d in violations))


def _reasons(err: genai_errors.APIError) -> set[str]:
    details: Any = err.details or {}
    body = details.get("error", details) if isinstance(details, dict) else {}
    body = _unparsed_error(err.message) or body
    return {d.get("reason", "") for d in (body.get("details") or []) if isinstance(d, dict)} - {""}


def is_invalid_api_key(err: BaseException) -> bool:
    """Return whether ``err`` is the API's answer to a key that is not valid.

    That answer is HTTP 400 ``INVALID_ARGUMENT`` with the reason ``API_KEY_INVALID``.
    """
    from google.genai import errors

    return isinstance(err, errors.ClientError) and (
        "API_KEY_INVALID" in _reasons(err) or "API key not valid" in (err.message or "")
    )


#: How the offline emulator's 404 ``NOT_FOUND`` message begins when no cassette holds a
#: request (``generateContent`` and the Interactions API; see ``quickstart_helpers.emulator``).
_UNRECORDED = re.compile(r"No recorded (response|interaction) \(cassette\)")


def _unparsed_error(message: Any) -> dict[str, Any] | None:
    """The API's ``error`` object when an SDK error's message is the whole error body.

    The API sends an error before the first chunk of a streamed request as JSON labelled
    ``text/event-stream``; the SDK's aiohttp transport does not read that as JSON and
    gives the whole body as the message (and the HTTP reason as the status).
    """
    if isinstance(message, str) and message.lstrip().startswith("{"):
        try:
            inner = json.loads(message).get("error")
        except (ValueError, AttributeError):
            return None
        return inner if isinstance(inner, dict) else None
    return None


def _unwrap_message(message: str) -> str:
    """``error.message`` of an error body the SDK left unparsed, else ``message``."""
    inner = (_unparsed_error(message) or {}).get("message")
    return inner if isinstance(inner, str) else message


def _status(err: genai_errors.APIError) -> str | None:
    """The API's status name (``INVALID_ARGUMENT`` ...) of an SDK error, also when the SDK
    left the error body unparsed (its own status is then the HTTP reason)."""
    return (_unparsed_error(err.message) or {}).get("status") or err.status


def _status_and_message(err: BaseException) -> tuple[int | None, str]:
    """The HTTP status and the API's error message of an SDK error, else ``(None, "")``.

    Handles ``google.genai.errors.APIError`` (``code``, ``message``) and the Interactions
    API's errors (``status_code``, and the message in the JSON ``body``).
    """
    code = getattr(err, "code", None)
    message = getattr(err, "message", None)
    if not isinstance(code, int):
        code = getattr(err, "status_code", None)
        body: Any = getattr(err, "body", None)
        inner = body.get("error", body) if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
    if not isinstance(code, int):
        return None, ""
    return code, _unwrap_message(message) if isinstance(message, str) else ""


def is_unrecorded_request(err: BaseException) -> bool:
    """Return whether ``err`` is the offline emulator saying no recording answers a request.

    That answer is HTTP 404 ``NOT_FOUND`` whose message begins "No recorded response
    (cassette)" (``generate_content``) or "No recorded interaction (cassette)" (the
    Interactions API). The live API never sends it.

    Args:
        err: Any exception; an SDK error from a request to the emulator for this to be True.
    """
    code, message = _status_and_message(err)
    return code == 404 and _UNRECORDED.match(message) is not None


def record_handled_error(err: BaseException) -> None:
    """Note that a failed model call was handled (shown, not raised), for ``quickstart run``.

    Appends one JSON line to the file named by ``$QUICKSTART_ERROR_LOG``; does nothing
    when it is unset (interactive use, tests) or cannot be written. The record holds the
    exception type and, for an ``APIError``, its code, status and reasons: never its
    message, which could quote a key.

    Args:
        err: The exception that was handled.
    """
    path = settings.error_log()
    if path is None:
        return
    from google.genai import errors

    record: dict[str, Any] = {"type": type(err).__name__}
    if isinstance(err, errors.APIError):
        record.update(code=err.code, status=_status(err), reasons=sorted(_reasons(err)))
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
    from google.genai import errors

    record_handled_error(err)
    if is_invalid_api_key(err):
        return (
            "The Gemini API rejected the API key (400 INVALID_ARGUMENT, API_KEY_INVALID). "
            "Is your API key valid? Check GEMINI_API_KEY in your environment or in .env "
            "(see .env.example), or create a new key at https://aistudio.google.com/apikey."
        )
    if isinstance(err, errors.APIError):
        status = _status(err)
        what = f"{err.code} {status}" if status else str(err.code)
        advice = {
            403: "The key is not allowed to use this model or API.",
            404: "Check the model name, or (offline) record a cassette for this request.",
            429: "You hit a rate limit or quota; wait a moment and try again.",
        }.get(err.code, "Try again in a moment." if err.code >= 500 else "Check the request.")
        message = _unwrap_message(err.message or "").strip()
        if message and not message.endswith((".", "!", "?")):
            message += "."
        return f"The Gemini API answered {what}: {message} {advice}"
    return f"The request failed: {type(err).__name__}: {err}"

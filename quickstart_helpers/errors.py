"""Every exception class of the package, and friendly explanations of API errors.

The exceptions are importable from here and, for convenience, from the module that
raises them (``quickstart_helpers.display.StreamInterrupted`` and so on).
``google.genai`` is imported only when an API error is explained, so importing this
module is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.genai import errors as genai_errors

    from .parts import PartsSummary

__all__ = [
    "CassetteError",
    "ConversationNotFoundError",
    "IllegalTransitionError",
    "InvalidApiKeyError",
    "LiveSessionClosed",
    "MissingApiKeyError",
    "PartsStreamInterrupted",
    "RecordingError",
    "StreamInterrupted",
    "explain_api_error",
    "is_invalid_api_key",
]


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


def _reasons(err: genai_errors.APIError) -> set[str]:
    details: Any = err.details or {}
    body = details.get("error", details) if isinstance(details, dict) else {}
    return {d.get("reason", "") for d in (body.get("details") or []) if isinstance(d, dict)} - {""}


def is_invalid_api_key(err: BaseException) -> bool:
    """Return whether ``err`` is the API's answer to a key that is not valid.

    That answer is HTTP 400 ``INVALID_ARGUMENT`` with the reason ``API_KEY_INVALID``.
    """
    from google.genai import errors

    return isinstance(err, errors.ClientError) and (
        "API_KEY_INVALID" in _reasons(err) or "API key not valid" in (err.message or "")
    )


def explain_api_error(err: BaseException) -> str:
    """Return a one-paragraph explanation of an API error, with what to do next.

    Args:
        err: Usually a ``google.genai.errors.APIError`` (``ClientError`` for 4xx,
            ``ServerError`` for 5xx); other exceptions get a generic explanation.
    """
    from google.genai import errors

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

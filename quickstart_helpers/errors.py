"""Every exception of the package, in one tree: catch :class:`QuickstartError` for all of them.

Exceptions only, no I/O. The API's own errors stay the SDK's (``google.genai.errors.APIError``:
``ClientError`` for 4xx, ``ServerError`` for 5xx), raised as they are or kept as ``__cause__``.
"""

from __future__ import annotations

from typing import Any


class QuickstartError(Exception):
    """The base of every exception raised by ``quickstart_helpers``."""


class MissingApiKeyError(QuickstartError, RuntimeError):
    """A key is required and none of the sources holds one; the message says where to put one."""


class InvalidApiKeyError(QuickstartError, RuntimeError):
    """The API rejected the key and no valid one was entered; the ``ClientError`` is the cause."""


class StreamInterrupted(QuickstartError, RuntimeError):
    """A stream failed midway; ``text`` holds everything that arrived before it broke."""

    def __init__(self, text: str, cause: BaseException) -> None:
        super().__init__(
            f"The stream broke after {len(text)} characters ({type(cause).__name__}: {cause}). "
            "The partial text is kept in .text; retry the request to get the whole answer."
        )
        self.text = text


class PartsStreamInterrupted(QuickstartError, RuntimeError):
    """A mixed stream failed midway; ``summary`` (a ``PartsSummary``) holds what arrived."""

    def __init__(self, summary: Any, cause: BaseException) -> None:
        super().__init__(
            f"The stream broke after {summary.chunks} chunks ({type(cause).__name__}: "
            f"{cause}). What arrived is kept: {summary.text_parts} text parts and "
            f"{len(summary.files)} saved files, in .summary. Retry the request for the rest."
        )
        self.summary = summary


class IllegalTransitionError(QuickstartError, ValueError):
    """A message was asked to make a move its state machine forbids."""


class ConversationNotFoundError(QuickstartError, FileNotFoundError):
    """``Conversation.load`` found no conversation stored under a key."""


class CassetteError(QuickstartError, ValueError):
    """A cassette file is not valid: the message names the file and the bad field."""


class RecordingError(QuickstartError, RuntimeError):
    """Record mode wrote no cassette: a secret would reach it, or it is invalid."""


class LiveSessionClosed(QuickstartError):
    """Ends a Live API emulator session: close ``code``, ``reason`` sent, ``detail`` logged."""

    def __init__(self, code: int, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.code, self.reason, self.detail = code, reason, detail or reason


class RequestInvalid(QuickstartError):
    """The emulator refuses a body as the API does (400): ``(field path, why)`` violations."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        self.violations = violations
        super().__init__("\n".join(d for _, d in violations))

"""The bad-key flow, as chat widgets do it: when the API refuses the key (HTTP 400
``INVALID_ARGUMENT``, reason ``API_KEY_INVALID``), say so, ask for another with hidden input
and run the request again. A key is never printed, logged or stored.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any, TypeVar

from google import genai

from ._api_errors import is_invalid_api_key
from .errors import InvalidApiKeyError

__all__ = ["InvalidApiKeyError", "retry_on_invalid_key"]

T = TypeVar("T")
Ask = Callable[[str], str]  # shows a prompt, returns what was typed (like getpass.getpass)
Make = Callable[[genai.Client, str], genai.Client]  # the client for a new key

KEY_PROMPT = "Gemini API key (input is hidden; leave empty to cancel): "
REJECTED_MESSAGE = (
    "The Gemini API rejected the key (400 INVALID_ARGUMENT, API_KEY_INVALID): "
    "is your API key valid? Paste it again, or create one at "
    "https://aistudio.google.com/apikey."
)


def ask_for_key(ask: Ask | None = None, *, prompt: str = KEY_PROMPT) -> str | None:
    """Ask for a key with hidden input (``getpass.getpass``, looked up when called, so Jupyter's
    own is used); return it stripped, or None when nothing was entered."""
    answer = (ask or getpass.getpass)(prompt)
    return (answer or "").strip() or None


def find_invalid_key_error(error: BaseException) -> BaseException | None:
    """The API's bad-key error in ``error`` or its causes (``StreamInterrupted`` keeps the
    ``ClientError`` as its cause), else None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if is_invalid_api_key(current):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _new_client(client: genai.Client, key: str) -> genai.Client:
    return genai.Client(api_key=key)  # the base URL from the environment, as for any client


def _next_key(error: Exception, attempt: int, attempts: int, ask: Ask | None, say) -> str:
    """Tell the user the key was refused and ask for another; raise when we cannot."""
    if find_invalid_key_error(error) is None:
        raise error
    why = f"It was refused {attempts} times."
    if attempt < attempts:
        say(REJECTED_MESSAGE)
        try:
            key = ask_for_key(ask)
        except (EOFError, OSError, NotImplementedError):  # no input here: a headless run
            key, why = None, "This session cannot ask for a new one."
        else:
            why = "No new key was entered."
        if key:
            return key
    raise InvalidApiKeyError(
        f"The Gemini API rejected the key (400 INVALID_ARGUMENT, API_KEY_INVALID). {why} "
        "Is your API key valid? Set GEMINI_API_KEY (see .env.example) to a valid key from "
        "https://aistudio.google.com/apikey."
    ) from error


def retry_on_invalid_key(
    call: Callable[[genai.Client], T],
    client: genai.Client,
    *,
    ask: Ask | None = None,
    attempts: int = 3,
    say: Callable[[str], Any] = print,
    make: Make = _new_client,
) -> T:
    """Run ``call(client)`` (read a stream inside it: the key is checked when it starts);
    each time the API refuses the key, ``say`` :data:`REJECTED_MESSAGE`, ``ask`` for a key
    (default ``getpass``; a session with no input, such as a headless run, gives up; a
    scripted ``ask`` shows the flow offline) and run ``call`` again with
    ``make(client, key)`` (default ``genai.Client(api_key=key)``).

    Raises:
        InvalidApiKeyError: Refused ``attempts`` times, nothing entered, or the session
            cannot ask; the ``ClientError`` is its cause. Other errors pass through.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call(client)
        except Exception as exc:  # noqa: BLE001 - anything but a bad key is re-raised
            client = make(client, _next_key(exc, attempt, attempts, ask, say))
    raise AssertionError("unreachable")  # pragma: no cover

"""The bad-key flow, as chat widgets do it: ask for a key, and ask again when it is refused.

- :func:`connect`: like :func:`~quickstart_helpers.client.make_client`, but when no key
  is set and the session is interactive (a terminal, or a Jupyter kernel that accepts
  input) it asks for one with hidden input (``getpass``).
- :func:`retry_on_invalid_key`: runs a request; when the API rejects the key (HTTP 400
  ``INVALID_ARGUMENT``, reason ``API_KEY_INVALID``) it says so plainly, "is your API key
  valid?", asks for the key again and re-runs the request with a new client, instead of
  crashing.

The input function is injectable (``ask=``), so the flow can be shown offline and tested
with scripted answers. A key is never printed, logged or stored.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google import genai

from . import settings
from ._api_errors import is_invalid_api_key
from .client import Mode, client_mode, make_client
from .env import load_api_key
from .errors import InvalidApiKeyError

__all__ = [
    "Ask",
    "InvalidApiKeyError",
    "KEY_PROMPT",
    "REJECTED_MESSAGE",
    "aretry_on_invalid_key",
    "ask_for_key",
    "connect",
    "find_invalid_key_error",
    "is_interactive",
    "retry_on_invalid_key",
]

T = TypeVar("T")

#: An input function: shows a prompt, returns what the user typed (``getpass.getpass``).
Ask = Callable[[str], str]

#: The prompt shown when asking for a key.
KEY_PROMPT = "Gemini API key (input is hidden; leave empty to cancel): "

#: What the user is told when the API rejects the key.
REJECTED_MESSAGE = (
    "The Gemini API rejected the key (400 INVALID_ARGUMENT, API_KEY_INVALID): "
    "is your API key valid? Paste it again, or create one at "
    "https://aistudio.google.com/apikey."
)


def is_interactive() -> bool:
    """Return whether the session can ask the user for input.

    True in a terminal (stdin is a TTY) and in a Jupyter kernel whose front end accepts
    input; False under nbclient, nbval, pytest and other headless runs.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        get_ipython = None  # type: ignore[assignment]
    shell = get_ipython() if get_ipython is not None else None
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
        kernel = getattr(shell, "kernel", None)
        return bool(getattr(kernel, "_allow_stdin", False))
    stdin = sys.stdin
    try:
        return stdin is not None and stdin.isatty()
    except (AttributeError, ValueError):  # closed or replaced stdin
        return False


def ask_for_key(ask: Ask | None = None, *, prompt: str = KEY_PROMPT) -> str | None:
    """Ask the user for an API key with hidden input.

    Args:
        ask: The input function. Defaults to ``getpass.getpass`` (looked up at call
            time, so Jupyter's own ``getpass`` is used in a notebook).
        prompt: Text shown before the input. Defaults to :data:`KEY_PROMPT`.

    Returns:
        The key with surrounding blanks removed, or None when nothing was entered.
    """
    answer = (ask or getpass.getpass)(prompt)
    answer = (answer or "").strip()
    return answer or None


def connect(
    mode: Mode = "auto",
    *,
    ask: Ask | None = None,
    interactive: bool | None = None,
    **make_client_kwargs: Any,
) -> genai.Client:
    """Return a client, asking for a key with hidden input when none is set.

    Works like :func:`~quickstart_helpers.client.make_client`, except that when no key
    is found (environment, ``.env``, Colab secret) and the session is interactive, the
    user is asked for one. An empty answer keeps ``"auto"`` offline.
    ``$QUICKSTART_MODE=offline`` or ``mode="offline"`` never asks.

    Args:
        mode: ``"auto"``, ``"live"`` or ``"offline"``.
        ask: The input function. Defaults to ``getpass.getpass``.
        interactive: Whether asking is possible. Defaults to :func:`is_interactive`.
        **make_client_kwargs: Passed on to ``make_client`` (``pacing``, ``quiet`` ...).

    Returns:
        The client; live when a key was found or entered.

    Raises:
        MissingApiKeyError: ``mode="live"``, no key is set and none was entered.
    """
    api_key = make_client_kwargs.pop("api_key", None)
    if api_key is None and load_api_key() is None:
        forced = settings.mode() if mode == "auto" else mode
        may_ask = forced in ("auto", "live")
        if may_ask and (interactive if interactive is not None else is_interactive()):
            api_key = ask_for_key(ask)
            if api_key is not None:
                mode = "live"
    return make_client(mode, api_key=api_key, **make_client_kwargs)


def find_invalid_key_error(error: BaseException) -> BaseException | None:
    """Return the API's bad-key error in ``error`` or its causes, else None.

    Wrappers such as ``display.StreamInterrupted`` keep the ``ClientError`` as their
    ``__cause__``; this looks through them.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if is_invalid_api_key(current):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _new_client(client: genai.Client, key: str) -> genai.Client:
    try:
        mode = client_mode(client)
    except ValueError:
        mode = "live"
    return make_client(mode, api_key=key, quiet=True)


def _give_up(why: str) -> InvalidApiKeyError:
    return InvalidApiKeyError(
        f"The Gemini API rejected the key (400 INVALID_ARGUMENT, API_KEY_INVALID). {why} "
        "Is your API key valid? Set GEMINI_API_KEY (see .env.example) to a valid key from "
        "https://aistudio.google.com/apikey."
    )


def _next_key(
    error: BaseException,
    attempt: int,
    attempts: int,
    ask: Ask | None,
    interactive: bool | None,
    say: Callable[[str], Any],
) -> str:
    """Tell the user the key was refused and ask for another; raise when we cannot."""
    if find_invalid_key_error(error) is None:
        raise error
    if attempt >= attempts:
        raise _give_up(f"It was refused {attempts} times.") from error
    if ask is None and not (interactive if interactive is not None else is_interactive()):
        raise _give_up("This session cannot ask for a new one.") from error
    say(REJECTED_MESSAGE)
    key = ask_for_key(ask)
    if key is None:
        raise _give_up("No new key was entered.") from error
    return key


def retry_on_invalid_key(
    call: Callable[[genai.Client], T],
    client: genai.Client,
    *,
    ask: Ask | None = None,
    attempts: int = 3,
    say: Callable[[str], Any] = print,
    interactive: bool | None = None,
    make: Callable[[genai.Client, str], genai.Client] = _new_client,
) -> T:
    """Run ``call(client)``; when the API rejects the key, ask for a new one and retry.

    Each time the API answers ``API_KEY_INVALID`` (even wrapped, e.g. in
    ``StreamInterrupted``), ``say`` prints :data:`REJECTED_MESSAGE` ("is your API key
    valid?"), ``ask`` reads a new key with hidden input, and ``call`` runs again with a
    client made for that key (same mode as ``client``). Other errors pass through.

    Args:
        call: Makes the request with the client it is given and returns a result. A
            stream must be read inside ``call``: the key is checked when it starts.
        client: The first client to try.
        ask: The input function. Defaults to ``getpass.getpass`` when the session is
            interactive.
        attempts: How many times ``call`` may be refused before giving up. Defaults to 3.
        say: Where the message for the user goes. Defaults to ``print``.
        interactive: Whether asking is possible when ``ask`` is None. Defaults to
            :func:`is_interactive`.
        make: Builds the client for a new key. Defaults to ``make_client`` in the same
            mode as ``client``.

    Returns:
        What ``call`` returned.

    Raises:
        InvalidApiKeyError: The key was refused ``attempts`` times, the user entered
            nothing, or the session cannot ask. The ``ClientError`` is its cause.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call(client)
        except Exception as exc:  # noqa: BLE001 - anything but a bad key is re-raised
            key = _next_key(exc, attempt, attempts, ask, interactive, say)
            client = make(client, key)
    raise AssertionError("unreachable")  # pragma: no cover


async def aretry_on_invalid_key(
    call: Callable[[genai.Client], Awaitable[T]],
    client: genai.Client,
    *,
    ask: Ask | None = None,
    attempts: int = 3,
    say: Callable[[str], Any] = print,
    interactive: bool | None = None,
    make: Callable[[genai.Client, str], genai.Client] = _new_client,
) -> T:
    """Async twin of :func:`retry_on_invalid_key`: ``call`` is a coroutine function.

    ``call`` gets the ``genai.Client``; use its ``.aio`` side inside. ``ask`` stays a
    plain (blocking) input function, as ``getpass`` is.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await call(client)
        except Exception as exc:  # noqa: BLE001 - anything but a bad key is re-raised
            key = _next_key(exc, attempt, attempts, ask, interactive, say)
            client = make(client, key)
    raise AssertionError("unreachable")  # pragma: no cover

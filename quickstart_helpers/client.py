"""Build a ``genai.Client`` that talks to the live API or to the offline emulator."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Literal

from . import settings
from .env import load_api_key
from .settings import MODES, Mode, Pacing

if TYPE_CHECKING:
    from google import genai

__all__ = ["Mode", "OFFLINE_KEY", "client_mode", "make_client", "resolve_mode"]

#: Placeholder key sent to the emulator (the SDK insists on some key).
OFFLINE_KEY = "offline-emulator"

_modes: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def resolve_mode(mode: Mode = "auto", api_key: str | None = None) -> Literal["live", "offline"]:
    """Decide between live and offline without building a client.

    ``$QUICKSTART_MODE`` (``live`` or ``offline``) overrides ``"auto"``; otherwise
    ``"auto"`` is live when :func:`~quickstart_helpers.env.load_api_key` finds a key.

    Raises:
        ValueError: ``mode`` (or ``$QUICKSTART_MODE``) is not one of the known modes.
    """
    if mode == "auto":
        mode = settings.mode()
    if mode not in MODES:
        raise ValueError(f"mode must be 'auto', 'live' or 'offline', not {mode!r}")
    if mode == "auto":
        return "live" if load_api_key(api_key) else "offline"
    return mode  # type: ignore[return-value]


def make_client(
    mode: Mode = "auto",
    *,
    api_key: str | None = None,
    pacing: Pacing | None = None,
    quiet: bool = False,
    **client_kwargs: Any,
) -> genai.Client:
    """Return a ``genai.Client`` for the live Gemini API or the offline emulator.

    Args:
        mode: ``"auto"`` (live when a key is found, else offline), ``"live"`` or
            ``"offline"``. ``$QUICKSTART_MODE`` overrides ``"auto"``.
        api_key: Key to send. Live mode: found with ``load_api_key`` when None.
            Offline mode: a placeholder when None; ``"invalid"`` makes the emulator
            answer with the live API's bad-key error.
        pacing: Offline only: ``"realtime"`` replays the recorded delays between
            chunks, ``"fast"`` sends them at once. Defaults to ``$QUICKSTART_PACING``,
            else ``"fast"`` in CI and ``"realtime"`` elsewhere.
        quiet: Do not print the one line saying which mode is in use.
        **client_kwargs: Passed on to ``genai.Client`` (live mode only).

    Returns:
        The client. The emulator is started once per process and stopped at exit.

    Raises:
        MissingApiKeyError: ``mode="live"`` and no key is found.
    """
    from google import genai

    resolved = resolve_mode(mode, api_key)
    if resolved == "live":
        key = load_api_key(api_key, required=True)
        client = genai.Client(api_key=key, **client_kwargs)
        message = "Mode: live. Requests go to the Gemini API with your key."
    else:
        from .emulator import get_emulator  # the emulator is imported only offline

        emulator = get_emulator(pacing)
        client = genai.Client(api_key=api_key or OFFLINE_KEY, http_options=emulator.http_options())
        message = (
            "Mode: offline. No API key is in use, so the local Gemini API emulator replays "
            "recorded responses; set GEMINI_API_KEY to go live."
        )
    _modes[client] = resolved
    if not quiet:
        print(message)
    return client


def client_mode(client: genai.Client) -> Literal["live", "offline"]:
    """Return ``"live"`` or ``"offline"`` for a client made by :func:`make_client`.

    Raises:
        ValueError: The client was not made by :func:`make_client`.
    """
    try:
        return _modes[client]  # type: ignore[return-value]
    except KeyError:
        raise ValueError("This client was not made by make_client().") from None

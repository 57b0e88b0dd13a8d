"""Build a ``genai.Client`` that talks to the live API or to the offline emulator."""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import settings
from .env import load_api_key
from .settings import MODES, Mode, Pacing, RecordMode

if TYPE_CHECKING:
    from google import genai

__all__ = ["Mode", "OFFLINE_KEY", "client_mode", "make_client", "resolve_mode"]

#: Placeholder key sent to the emulator (the SDK insists on some key).
OFFLINE_KEY = "offline-emulator"

_modes: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def resolve_mode(
    mode: Mode = "auto", api_key: str | None = None
) -> Literal["live", "offline", "record"]:
    """Decide between live, offline and record without building a client.

    ``$QUICKSTART_MODE`` (``live``, ``offline`` or ``record``) overrides ``"auto"``; otherwise
    ``"auto"`` is live when :func:`~quickstart_helpers.env.load_api_key` finds a key.

    Raises:
        ValueError: ``mode`` (or ``$QUICKSTART_MODE``) is not one of the known modes.
    """
    if mode == "auto":
        mode = settings.mode()
    if mode not in MODES:
        raise ValueError(f"mode must be 'auto', 'live', 'offline' or 'record', not {mode!r}")
    if mode == "auto":
        return "live" if load_api_key(api_key) else "offline"
    return mode  # type: ignore[return-value]


def make_client(
    mode: Mode = "auto",
    *,
    api_key: str | None = None,
    pacing: Pacing | None = None,
    quiet: bool = False,
    cassettes: str | os.PathLike[str] | None = None,
    record_mode: RecordMode | None = None,
    upstream: str | None = None,
    **client_kwargs: Any,
) -> genai.Client:
    """Return a ``genai.Client`` for the live Gemini API or the offline emulator.

    Args:
        mode: ``"auto"`` (live when a key is found, else offline), ``"live"``,
            ``"offline"`` or ``"record"`` (a local recording proxy: requests no cassette
            in ``cassettes`` answers go to the live API with your key and are written
            there as cassettes). ``$QUICKSTART_MODE`` overrides ``"auto"``.
        api_key: Key to send. Live mode: found with ``load_api_key`` when None.
            Offline mode: a placeholder when None; ``"invalid"`` makes the emulator
            answer with the live API's bad-key error.
        pacing: Offline only: ``"realtime"`` replays the recorded delays between
            chunks, ``"fast"`` sends them at once. Defaults to ``$QUICKSTART_PACING``,
            else ``"fast"`` in CI and ``"realtime"`` elsewhere.
        quiet: Do not print the one line saying which mode is in use.
        cassettes: Record mode: the cassette folder to replay from and write to.
            Defaults to the first folder of ``$QUICKSTART_CASSETTES``.
        record_mode: Record mode: ``none``, ``once``, ``new_episodes`` or ``all``.
            Defaults to ``$QUICKSTART_RECORD_MODE``, else ``none``.
        upstream: Record mode: the server to record. Defaults to
            ``$QUICKSTART_UPSTREAM``, else the live API.
        **client_kwargs: Passed on to ``genai.Client`` (live mode only).

    Returns:
        The client. The emulator is started once per process and stopped at exit.

    Raises:
        MissingApiKeyError: ``mode="live"`` or ``"record"`` and no key is found.
        ValueError: Record mode without a cassette folder, or a bad setting.
    """
    from google import genai

    resolved = resolve_mode(mode, api_key)
    if resolved == "live":
        key = load_api_key(api_key, required=True)
        client = genai.Client(api_key=key, **client_kwargs)
        message = "Mode: live. Requests go to the Gemini API with your key."
    elif resolved == "record":
        from .emulator import recording_emulator

        key = load_api_key(api_key, required=True)
        folders = [Path(cassettes)] if cassettes else settings.extra_cassette_dirs()
        if not folders:
            raise ValueError(
                "Record mode needs a cassette folder: make_client(mode='record', "
                "cassettes=DIR) or QUICKSTART_CASSETTES=DIR."
            )
        chosen = record_mode or settings.record_mode()
        emulator = recording_emulator(folders[0], mode=chosen, upstream=upstream, pacing=pacing)
        client = genai.Client(api_key=key, http_options=emulator.http_options())
        message = (
            f"Mode: record ({chosen}). Cassettes in {folders[0]} are replayed; what they do "
            "not answer goes to the Gemini API with your key and is recorded there."
        )
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


def client_mode(client: genai.Client) -> Literal["live", "offline", "record"]:
    """Return ``"live"``, ``"offline"`` or ``"record"`` for a client made by :func:`make_client`.

    Raises:
        ValueError: The client was not made by :func:`make_client`.
    """
    try:
        return _modes[client]  # type: ignore[return-value]
    except KeyError:
        raise ValueError("This client was not made by make_client().") from None

"""``make_client`` for the ``quickstart`` command and tests: a ``genai.Client`` for the live
API, the offline emulator or record mode. Notebooks use ``%load_ext quickstart_helpers``
and a plain ``genai.Client()`` instead."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import settings
from .env import load_api_key
from .settings import MODES, Mode, Pacing, RecordMode

if TYPE_CHECKING:
    from google import genai

#: The key sent to the emulator (the SDK insists on one; the emulator refuses only "invalid").
OFFLINE_KEY = "offline-emulator"


def resolve_mode(
    mode: Mode = "auto", api_key: str | None = None
) -> Literal["live", "offline", "record"]:
    """``mode``, or for ``"auto"`` ``$QUICKSTART_MODE``, else live when a key is found."""
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
    cassettes: str | Path | None = None,
    record_mode: RecordMode | None = None,
    upstream: str | None = None,
    **client_kwargs: Any,
) -> genai.Client:
    """A client for the live API (the key from :func:`load_api_key`), the shared emulator
    (``api_key`` ``"invalid"`` gets the API's bad-key error), or record mode: a local proxy
    that replays ``cassettes`` (default: the first folder of ``$QUICKSTART_CASSETTES``) and
    records what they do not answer from ``upstream``. ``client_kwargs`` go to ``genai.Client``
    (live only).

    Raises:
        MissingApiKeyError: Live or record mode and no key is found.
        ValueError: Record mode without a cassette folder, or a bad setting.
    """
    from google import genai

    resolved = resolve_mode(mode, api_key)
    if resolved == "live":
        return genai.Client(api_key=load_api_key(api_key, required=True), **client_kwargs)
    if resolved == "offline":
        from .emulator import get_emulator

        options = get_emulator(pacing).http_options()
        return genai.Client(api_key=api_key or OFFLINE_KEY, http_options=options)
    from .emulator import recording_emulator

    key = load_api_key(api_key, required=True)
    folders = [Path(cassettes)] if cassettes else settings.extra_cassette_dirs()
    if not folders:
        raise ValueError(
            "Record mode needs a cassette folder: cassettes=DIR or QUICKSTART_CASSETTES."
        )
    chosen = record_mode or settings.record_mode()
    proxy = recording_emulator(folders[0], mode=chosen, upstream=upstream, pacing=pacing)
    return genai.Client(api_key=key, http_options=proxy.http_options())

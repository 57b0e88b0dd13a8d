"""``make_client`` for the ``quickstart`` command and tests: a ``genai.Client`` for the live API
or the offline emulator. Notebooks use ``%load_ext quickstart_helpers`` and ``genai.Client()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from quickstart_helpers import settings
from quickstart_helpers._extension import LIVE_LINE, OFFLINE_KEY, OFFLINE_LINE
from quickstart_helpers.env import load_api_key
from quickstart_helpers.settings import MODES, Mode, Pacing

if TYPE_CHECKING:
    from google import genai


def resolve_mode(mode: Mode = "auto", api_key: str | None = None) -> Literal["live", "offline"]:
    """``mode``; for ``"auto"``, ``$QUICKSTART_MODE``, else live when a key is found."""
    mode = settings.mode() if mode == "auto" else mode
    if mode not in MODES or mode == "record":
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
    **kw: Any,
) -> genai.Client:
    """A client for the live API (``kw`` go to ``genai.Client``) or the shared emulator
    (``api_key="invalid"`` gets the API's bad-key error); prints which unless ``quiet``.

    Raises:
        MissingApiKeyError: Live mode and no key is found.
    """
    from google import genai

    live = resolve_mode(mode, api_key) == "live"
    if not quiet:
        print(LIVE_LINE.format(where="the Gemini API") if live else OFFLINE_LINE)
    if live:
        return genai.Client(api_key=load_api_key(api_key, required=True), **kw)
    from quickstart_helpers.emulator import get_emulator

    options = get_emulator(pacing).http_options()
    return genai.Client(api_key=api_key or OFFLINE_KEY, http_options=options)

"""Helpers for the Gemini streaming quickstarts.

The names a notebook needs are importable from here::

    from quickstart_helpers import make_client, stream_markdown, wave_file

Each lives in a small module (``client``, ``display``, ``parts``, ``chat``, ``wav``,
``web``, ...), where the rest of that module's API is. The Gemini API emulator is the
subpackage :mod:`quickstart_helpers.emulator`; settings (``QUICKSTART_*`` variables)
are read in :mod:`quickstart_helpers.settings`; every exception is in
:mod:`quickstart_helpers.errors`.

Names are imported on first use, so ``import quickstart_helpers`` is cheap and does not
load the SDK or the emulator.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    # client and key
    "make_client": "client",
    "client_mode": "client",
    "resolve_mode": "client",
    "load_api_key": "env",
    "retry_on_invalid_key": "auth",
    "aretry_on_invalid_key": "auth",
    # streaming text and parts
    "stream_markdown": "display",
    "chunk_text": "display",
    "stream_parts": "parts",
    "iter_parts": "parts",
    # chat
    "Conversation": "chat",
    "stream_reply": "chat",
    "astream_reply": "chat",
    # audio
    "wave_file": "wav",
    # files and the web chat
    "output_dir": "paths",
    "ChatServer": "web",
    "serve_in_background": "web",
    # errors
    "explain_api_error": "errors",
    "MissingApiKeyError": "errors",
    "InvalidApiKeyError": "errors",
    "StreamInterrupted": "errors",
    "PartsStreamInterrupted": "errors",
    "CassetteError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'quickstart_helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

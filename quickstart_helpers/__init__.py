"""Helpers for the Gemini streaming quickstarts.

``%load_ext quickstart_helpers`` (in a script, ``quickstart_helpers.setup()``) chooses live
(your key) or offline (a local emulator replaying recorded responses) and changes nothing
else: after it, ``genai.Client()`` is the client you write against the live API. The other
names are the notebooks' teaching helpers, imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "setup": "_extension",
    "load_ipython_extension": "_extension",  # %load_ext quickstart_helpers
    "stream_markdown": "display",
    "stream_parts": "parts",
    "Conversation": "chat",
    "Message": "chat",
    "StateLog": "chat",
    "stream_reply": "chat",
    "retry_on_invalid_key": "auth",
    "resume_stream": "retry",
    "ResumableLiveSession": "retry",
    "output_dir": "paths",
    "wave_file": "wav",
    "ChatServer": "web",
    "audio": "audio",  # the module: audio.file_chunks, audio.microphone_chunks, audio.Player
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'quickstart_helpers' has no attribute {name!r}")
    module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
    value = module if name == _EXPORTS[name] else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

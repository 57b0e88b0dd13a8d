"""Find the Gemini API key without ever printing it.

In order: an explicit argument; the Colab secret ``GEMINI_API_KEY`` in Colab; the
``GEMINI_API_KEY`` then ``GOOGLE_API_KEY`` environment variables; the same two names in the
nearest ``.env`` walking up from the current folder (so a notebook in ``notebooks/`` finds
the repository's). Empty values count as missing.
"""

from __future__ import annotations

import os
import sys

from dotenv import dotenv_values, find_dotenv

from .errors import MissingApiKeyError

KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


def _colab_secret() -> str | None:
    if "google.colab" not in sys.modules:
        return None
    try:
        from google.colab import userdata  # type: ignore[import-not-found]

        return userdata.get("GEMINI_API_KEY")
    except Exception:  # noqa: BLE001 - secret missing or access not granted
        return None


def load_api_key(api_key: str | None = None, *, required: bool = False) -> str | None:
    """Return the key from the first source that has one, else None (or raise
    :class:`MissingApiKeyError`, whose message says where to put one, when ``required``)."""
    dotenv_file = find_dotenv(usecwd=True)
    dotenv = dotenv_values(dotenv_file) if dotenv_file else {}
    candidates = [api_key, _colab_secret()]
    candidates += [os.environ.get(name) for name in KEY_VARIABLES]
    candidates += [dotenv.get(name) for name in KEY_VARIABLES]
    for key in candidates:
        if isinstance(key, str) and key.strip():
            return key.strip()
    if required:
        raise MissingApiKeyError(
            "No Gemini API key found. Set the GEMINI_API_KEY environment variable, or copy "
            ".env.example to .env at the repository root and put your key after "
            "GEMINI_API_KEY= (get one at https://aistudio.google.com/apikey). Without a key, "
            "run offline: the recorded responses are replayed."
        )
    return None

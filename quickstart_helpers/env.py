"""Find the Gemini API key without ever printing it.

The key is looked up, in order, in: an explicit argument; the Colab secret
``GEMINI_API_KEY`` when running in Colab; the ``GEMINI_API_KEY`` and then the
``GOOGLE_API_KEY`` environment variables; the nearest ``.env`` file found by walking
up from the current directory (so a notebook in ``notebooks/`` finds the repository
root's ``.env``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dotenv import dotenv_values

from .errors import MissingApiKeyError

__all__ = ["KEY_VARIABLES", "MissingApiKeyError", "find_dotenv_file", "load_api_key"]

#: Names a key is read from, in order of preference.
KEY_VARIABLES: tuple[str, ...] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _colab_secret() -> str | None:
    if "google.colab" not in sys.modules:
        return None
    try:
        from google.colab import userdata  # type: ignore[import-not-found]

        return _clean(userdata.get("GEMINI_API_KEY"))
    except Exception:  # noqa: BLE001 - secret missing or access not granted
        return None


def find_dotenv_file(start: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the nearest ``.env`` file in ``start`` or one of its parents.

    Args:
        start: Directory to start from. Defaults to the current working directory.

    Returns:
        The path of the first ``.env`` file found walking up, or None.
    """
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".env"
        if candidate.is_file():
            return candidate
    return None


def load_api_key(
    api_key: str | None = None,
    *,
    required: bool = False,
    start: str | os.PathLike[str] | None = None,
) -> str | None:
    """Return the Gemini API key from the first source that has one.

    Sources, in order: ``api_key``; the Colab secret ``GEMINI_API_KEY``; the
    environment variables ``GEMINI_API_KEY`` then ``GOOGLE_API_KEY``; the nearest
    ``.env`` file walking up from ``start`` (same two names). Empty values count as
    missing. The key is never printed or logged.

    Args:
        api_key: An explicit key; wins over every other source.
        required: Raise instead of returning None when no key is found. Defaults to False.
        start: Directory where the ``.env`` search starts. Defaults to the current
            working directory.

    Returns:
        The key, or None when none is found and ``required`` is False.

    Raises:
        MissingApiKeyError: ``required`` is True and no source holds a key. The
            message names ``GEMINI_API_KEY``, ``.env`` and ``.env.example``.
    """
    key = _clean(api_key) or _colab_secret()
    if key:
        return key
    for name in KEY_VARIABLES:
        key = _clean(os.environ.get(name))
        if key:
            return key
    dotenv_file = find_dotenv_file(start)
    if dotenv_file is not None:
        values = dotenv_values(dotenv_file)
        for name in KEY_VARIABLES:
            key = _clean(values.get(name))
            if key:
                return key
    if required:
        raise MissingApiKeyError()
    return None

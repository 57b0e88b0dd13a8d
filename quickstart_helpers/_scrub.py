"""Remove API keys and tokens from text before it reaches an event, a file or a log.

The one key scrubber of the package. Upstream error messages are relayed to people
(SSE ``error`` events, saved conversations, log lines) and record mode writes what the
API sent into cassettes; an upstream that echoes the request, or a proxy that puts the
key in a URL, would leak the key that way. :func:`scrub` removes:

- every key it is told about (``secrets``), and the ones in ``GEMINI_API_KEY`` and
  ``GOOGLE_API_KEY``, also percent-encoded;
- anything shaped like a Google API key (``AIza`` and 30 or more letters, digits, ``_``
  or ``-``), known or not;
- the value of a ``key=`` URL query parameter;
- ephemeral tokens (``auth_tokens/...``, from ``client.auth_tokens.create``).

Each is replaced by :data:`REDACTED`. :func:`scrub_value` does the same in every
string of a JSON value, and :func:`slug` turns text into a file-name part after scrubbing
it (a key-shaped string lowercased and cut short would no longer match). The web chat
(``web``, ``chat``) and the emulator's record mode (``emulator._secrets``) use them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

__all__ = ["MIN_SECRET", "REDACTED", "TOKEN", "scrub", "scrub_value", "slug"]

#: What a removed key is replaced with.
REDACTED = "[redacted]"

#: Google API keys: ``AIza`` then 35 URL-safe characters (matched from 30 on, whole).
_GOOGLE_KEY = re.compile(r"AIza[0-9A-Za-z_\-]{30,}")
#: ``?key=...`` / ``&key=...`` in a URL (the API accepts the key as a query parameter).
_KEY_PARAM = re.compile(r"([?&](?:key|api_key|apiKey|access_token)=)[^&\s\"'#]+")
#: Ephemeral tokens (``client.auth_tokens.create``) and their resource names.
TOKEN = re.compile(r"auth_tokens/(?!\[redacted\])[A-Za-z0-9_\-.]+")

_ENV_KEYS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
#: Known secrets shorter than this are not replaced (a 1-letter "key" would mangle text).
MIN_SECRET = 8


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with API keys and ephemeral tokens replaced by :data:`REDACTED`.

    Args:
        text: Any text, e.g. an upstream error message.
        secrets: Keys to remove besides those in the environment (e.g. the client's
            key). None and values shorter than :data:`MIN_SECRET` (8) characters are
            ignored.

    Returns:
        The text without the keys; unchanged when it holds none.
    """
    if not isinstance(text, str):
        text = str(text)
    known = {s for s in (*secrets, *(os.environ.get(name) for name in _ENV_KEYS)) if s}
    for secret in sorted(known, key=len, reverse=True):
        if len(secret) < MIN_SECRET:
            continue
        text = text.replace(secret, REDACTED)
        encoded = quote(secret, safe="")
        if encoded != secret:
            text = text.replace(encoded, REDACTED)
    text = _GOOGLE_KEY.sub(REDACTED, text)
    text = TOKEN.sub(f"auth_tokens/{REDACTED}", text)
    return _KEY_PARAM.sub(lambda m: m.group(1) + REDACTED, text)


def scrub_value(value: Any, secrets: Iterable[str | None] = ()) -> Any:
    """Return a copy of a JSON value with :func:`scrub` applied to every string (keys too).

    Args:
        value: Any JSON value (dicts, lists, strings, numbers, booleans, None).
        secrets: As for :func:`scrub`.
    """
    secrets = list(secrets)
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [scrub_value(v, secrets) for v in value]
    if isinstance(value, dict):
        return {scrub(str(k), secrets): scrub_value(v, secrets) for k, v in value.items()}
    return value


def slug(text: str, secrets: Iterable[str | None] = (), *, max_chars: int = 40) -> str:
    """Return ``text`` as a file-name part, keys removed first (:func:`scrub`).

    Runs of anything but ASCII letters and digits become ``-``; the result is lowercase,
    at most ``max_chars`` characters, without leading or trailing ``-`` (``""`` when
    nothing is left). E.g. ``"My key is AIza..."`` becomes ``"my-key-is-redacted"``.

    Args:
        text: E.g. a recorded prompt that names a cassette and its file.
        secrets: As for :func:`scrub`.
        max_chars: Longest result, in characters.
    """
    words = re.sub(r"[^A-Za-z0-9]+", "-", scrub(text, secrets)).strip("-").lower()
    return words[:max_chars].strip("-")

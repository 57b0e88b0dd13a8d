"""The one key scrubber: keys and tokens out of text before it reaches an event, a file or a log.

Upstream error messages reach people (SSE ``error`` events, saved conversations, logs) and
record mode writes what the API sent into cassettes; an upstream that echoes the request, or
a proxy that puts the key in a URL, would leak it. :func:`scrub` replaces with
:data:`REDACTED`: the keys it is told about and those in ``GEMINI_API_KEY`` and
``GOOGLE_API_KEY`` (also percent-encoded); anything shaped like a Google API key; the value
of a ``key=`` URL parameter; ephemeral tokens (``auth_tokens/...``). :func:`scrub_value`
does it in every string of a JSON value; :func:`slug` makes a file-name part after it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

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
    """``text`` without keys and tokens; ``secrets`` are keys to remove besides those in the
    environment (None and those shorter than :data:`MIN_SECRET` are ignored)."""
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
    """A copy of a JSON value with :func:`scrub` applied to every string (keys too)."""
    secrets = list(secrets)
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [scrub_value(v, secrets) for v in value]
    if isinstance(value, dict):
        return {scrub(str(k), secrets): scrub_value(v, secrets) for k, v in value.items()}
    return value


def slug(text: str, secrets: Iterable[str | None] = (), *, max_chars: int = 40) -> str:
    """``text`` as a file-name part, scrubbed first (a key lowercased and cut short would no
    longer match): runs of anything but ASCII letters and digits become ``-``, lowercase, at
    most ``max_chars``, e.g. ``"My key is AIza..."`` gives ``"my-key-is-redacted"``."""
    words = re.sub(r"[^A-Za-z0-9]+", "-", scrub(text, secrets)).strip("-").lower()
    return words[:max_chars].strip("-")

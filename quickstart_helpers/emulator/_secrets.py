"""Keep API keys and tokens out of recorded cassettes.

Record mode learns the secrets of each exchange from the request itself (the
``x-goog-api-key`` header, the ``key`` and ``access_token`` query parameters, an
``Authorization`` header), replaces every occurrence of them in what it is about to
write with :data:`REDACTED`, and scrubs ephemeral tokens (``auth_tokens/...``) the
same way. :func:`assert_clean` is the last check before a file is written: if a
secret's value is still anywhere in the bytes, the cassette is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import RecordingError

__all__ = [
    "DROPPED_HEADERS",
    "REDACTED",
    "assert_clean",
    "request_secrets",
    "scrub_text",
    "scrub_value",
]

#: What a secret is replaced with.
REDACTED = "REDACTED"

#: Request headers that never reach a cassette (lower case).
DROPPED_HEADERS = frozenset({"x-goog-api-key", "authorization", "cookie", "set-cookie"})

#: Query parameters that carry a secret.
_SECRET_PARAMS = ("key", "access_token")

#: Ephemeral tokens (``client.auth_tokens.create``) and their resource names.
_TOKEN = re.compile(r"auth_tokens/[A-Za-z0-9_\-.]+")

#: Shorter values are not treated as secrets (they would match ordinary text).
_MIN_SECRET = 6


def request_secrets(headers: Mapping[str, str], query: Mapping[str, str]) -> set[str]:
    """Return the secret values a request carries (key, token, credentials).

    Args:
        headers: The request's headers (any case).
        query: Its query parameters.
    """
    found: set[str] = set()
    for name, value in headers.items():
        if name.lower() in ("x-goog-api-key", "authorization"):
            found.add(value.strip())
            # "Bearer <token>" / "Token <token>": the credential alone, too.
            found.add(value.strip().rpartition(" ")[2])
    for name, value in query.items():
        if name in _SECRET_PARAMS:
            found.add(str(value).strip())
    return {s for s in found if len(s) >= _MIN_SECRET}


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every secret and every ephemeral token replaced by REDACTED."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return _TOKEN.sub(f"auth_tokens/{REDACTED}", text)


def scrub_value(value: Any, secrets: Iterable[str]) -> Any:
    """Return a copy of a JSON value with secrets replaced in every string (keys too)."""
    secrets = list(secrets)
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, list):
        return [scrub_value(v, secrets) for v in value]
    if isinstance(value, dict):
        return {scrub_text(str(k), secrets): scrub_value(v, secrets) for k, v in value.items()}
    return value


def assert_clean(files: Mapping[str, bytes], secrets: Iterable[str]) -> None:
    """Refuse to write when a secret's value is still in any of the bytes.

    Args:
        files: What would be written, as ``{file name: bytes}``.
        secrets: The values that must not appear.

    Raises:
        RecordingError: A secret (or an ephemeral token) appears in a file; the
            message names the file, never the secret.
    """
    needles = [s.encode("utf-8") for s in secrets if s]
    for name, data in files.items():
        if any(needle in data for needle in needles):
            raise RecordingError(
                f"Refused to write {name}: it would contain your API key or token. "
                "Nothing was recorded for this request."
            )
        if _TOKEN.search(data.decode("utf-8", "replace").replace(f"auth_tokens/{REDACTED}", "")):
            raise RecordingError(
                f"Refused to write {name}: it would contain an ephemeral token. "
                "Nothing was recorded for this request."
            )

"""Keep API keys and tokens out of recorded cassettes.

Record mode learns each exchange's secrets from the request (``x-goog-api-key``,
``Authorization``, the ``key`` and ``access_token`` parameters) and scrubs what it writes
with the package's one scrubber, :mod:`quickstart_helpers._scrub` (those secrets, the
environment's keys, API key shapes, ``key=`` parameters and ``auth_tokens/...`` become
:data:`REDACTED`). :func:`assert_clean`, the last check, refuses a file still holding one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .._scrub import MIN_SECRET, REDACTED, TOKEN, scrub, scrub_value
from ..errors import RecordingError

__all__ = ["REDACTED", "assert_clean", "request_secrets", "scrub_text", "scrub_value"]

#: Record mode's name for the shared scrubber (text and secrets).
scrub_text = scrub


def request_secrets(headers: Mapping[str, str], query: Mapping[str, str]) -> set[str]:
    """Return the secret values a request carries (key, token, credentials), those at
    least :data:`~quickstart_helpers._scrub.MIN_SECRET` characters long (shorter ones
    would match ordinary text)."""
    found: set[str] = set()
    for name, value in headers.items():
        if name.lower() in ("x-goog-api-key", "authorization"):
            # "Bearer <token>" / "Token <token>": the credential alone, too.
            found |= {value.strip(), value.strip().rpartition(" ")[2]}
    found |= {str(v).strip() for name, v in query.items() if name in ("key", "access_token")}
    return {s for s in found if len(s) >= MIN_SECRET}


def assert_clean(files: Mapping[str, bytes], secrets: Iterable[str]) -> None:
    """Raise :class:`RecordingError` (naming the file, never the secret) when a secret's
    value or an ephemeral token is in any of ``files`` (``{file name: bytes to write}``)."""
    needles = [s.encode("utf-8") for s in secrets if s]
    for name, data in files.items():
        if any(needle in data for needle in needles):
            what = "your API key or token"
        elif TOKEN.search(data.decode("utf-8", "replace")):
            what = "an ephemeral token"
        else:
            continue
        why = f"it would contain {what}. Nothing was recorded for this request."
        raise RecordingError(f"Refused to write {name}: {why}")

"""Fake Google API keys for scrubber tests, built at run time.

The tests need strings shaped like a real key (``AIza`` and 35 more characters) to prove
they never reach an event, a file or a log. They are assembled here rather than written
out, so no tracked file holds a key-shaped literal that a secret scanner would flag.
"""

from __future__ import annotations

__all__ = ["fake_google_key"]

#: The prefix every Google API key starts with.
_PREFIX = "AI" + "za"


def fake_google_key(tag: str) -> str:
    """Return a fake key shaped like a Google API key: the prefix, then 35 characters.

    Args:
        tag: Letters, digits, ``-`` or ``_`` that make the key distinct (at most 35).
    """
    body = (tag + "0123456789abcdefghijklmnopqrstuvwxyz")[:35]
    return _PREFIX + body

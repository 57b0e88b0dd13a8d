"""The scrubber on file names: :func:`quickstart_helpers._scrub.slug` removes keys before it
lowercases and cuts text into a cassette's name (issue 23)."""

from __future__ import annotations

import pytest

from quickstart_helpers._scrub import slug

from ._keys import fake_google_key


def test_slug_keeps_words_lowercase_and_short() -> None:
    assert slug("Tell me a story about a lighthouse") == "tell-me-a-story-about-a-lighthouse"
    assert slug("  Why?! (2 words) ") == "why-2-words"
    assert slug("gemini-3.8-flash") == "gemini-3-8-flash"
    assert slug("x" * 50) == "x" * 40
    assert slug("word " * 20, max_chars=12) == "word-word-wo"
    assert slug("a" * 39 + " b") == "a" * 39  # no trailing "-" where it was cut
    assert slug("¿…!") == ""


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{key}", "redacted"),
        ("My key is {key}, what is it?", "my-key-is-redacted-what-is-it"),
        ("key={key}&x=1", "key-redacted-x-1"),
        ("a long preamble before the key, {key}", "a-long-preamble-before-the-key-redacted"),
    ],
)
def test_slug_has_no_trace_of_a_key_shaped_string(template: str, expected: str) -> None:
    key = fake_google_key("Name_Test-ZZ")
    name = slug(template.format(key=key))
    assert name == expected
    # Lowercased, with "_" turned into "-" and cut short, a key would no longer look
    # like one (the scrubber would miss it afterwards): none of it may remain.
    assert key.lower().replace("_", "-")[4:14] not in name


def test_slug_removes_known_secrets_and_tokens() -> None:
    secret = "s3cret-Token-value"
    assert slug(f"Token {secret} here", secrets=[secret]) == "token-redacted-here"
    assert "abc123" not in slug("auth_tokens/abc123def please")
    assert "s3cret" in slug(f"Token {secret}")  # not key-shaped, not named: kept

"""Turn Gemini API errors into short, friendly explanations."""

from __future__ import annotations

from typing import Any

from google.genai import errors

__all__ = ["explain_api_error", "is_invalid_api_key"]


def _reasons(err: errors.APIError) -> set[str]:
    details: Any = err.details or {}
    body = details.get("error", details) if isinstance(details, dict) else {}
    return {d.get("reason", "") for d in (body.get("details") or []) if isinstance(d, dict)} - {""}


def is_invalid_api_key(err: BaseException) -> bool:
    """Return whether ``err`` is the API's answer to a key that is not valid.

    That answer is HTTP 400 ``INVALID_ARGUMENT`` with the reason ``API_KEY_INVALID``.
    """
    return isinstance(err, errors.ClientError) and (
        "API_KEY_INVALID" in _reasons(err) or "API key not valid" in (err.message or "")
    )


def explain_api_error(err: BaseException) -> str:
    """Return a one-paragraph explanation of an API error, with what to do next.

    Args:
        err: Usually a ``google.genai.errors.APIError`` (``ClientError`` for 4xx,
            ``ServerError`` for 5xx); other exceptions get a generic explanation.
    """
    if is_invalid_api_key(err):
        return (
            "The Gemini API rejected the API key (400 INVALID_ARGUMENT, API_KEY_INVALID). "
            "Is your API key valid? Check GEMINI_API_KEY in your environment or in .env "
            "(see .env.example), or create a new key at https://aistudio.google.com/apikey."
        )
    if isinstance(err, errors.APIError):
        what = f"{err.code} {err.status}" if err.status else str(err.code)
        advice = {
            403: "The key is not allowed to use this model or API.",
            404: "Check the model name, or (offline) record a cassette for this request.",
            429: "You hit a rate limit or quota; wait a moment and try again.",
        }.get(err.code, "Try again in a moment." if err.code >= 500 else "Check the request.")
        message = (err.message or "").strip()
        if message and not message.endswith((".", "!", "?")):
            message += "."
        return f"The Gemini API answered {what}: {message} {advice}"
    return f"The request failed: {type(err).__name__}: {err}"

"""Write the thinking cassettes of notebooks/01_text_streaming.ipynb (its thinking section).

Run: ``uv run python scripts/make_thinking_cassettes.py``.

One question, answered twice by the thinking examples' Gemini 3 model
(:data:`quickstart_helpers.settings.THINKING_MODEL`): with ``thinkingLevel``
``MINIMAL`` the first chunk comes after a short wait; with ``HIGH`` and
``includeThoughts`` the stream starts with thought-summary parts (``"thought": true``)
after a longer wait, and the answer's first chunk comes later still. The answers are
authored here, not recorded from the live API; chunks split words, as the API does.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _authoring as authoring  # noqa: E402

from quickstart_helpers import settings  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "cassettes" / "text"
MODEL = settings.THINKING_MODEL

#: The question notebook 01 sends (exactly this).
PROMPT = "How many times does the letter r appear in the word strawberry? Answer in one sentence."
ANSWER = ["The letter r appe", "ars three times in the w", "ord strawberry."]
THOUGHTS = [
    "**Counting the letters**\n\nI spell the w",
    "ord out: s-t-r-a-w-b-e-r-r-y. There is one r right",
    " after the t and two more together near the end, wh",
    "ich makes three.",
]


def request(thinking: dict) -> dict:
    return {
        "contents": [authoring.text_content("user", PROMPT)],
        "generationConfig": {"thinkingConfig": thinking},
    }


def minimal() -> dict:
    name = "text_thinking_minimal"
    chunks = authoring.stream_chunks(
        ANSWER,
        authoring.paced_delays(len(ANSWER), first_ms=380, every_ms=60, jitter_ms=15),
        name=name,
        model=MODEL,
        prompt_tokens=authoring.estimate_tokens(PROMPT),
        answer_tokens=authoring.estimate_tokens("".join(ANSWER)),
        thoughts=24,
    )
    return authoring.generate_cassette(
        name,
        "01_text_streaming: thinking kept minimal, the answer starts at once.",
        MODEL,
        request({"thinkingLevel": "MINIMAL"}),
        chunks,
    )


def high() -> dict:
    name = "text_thinking_high"
    parts = [[{"text": t, "thought": True}] for t in THOUGHTS] + ANSWER
    delays = [1150, 140, 155, 170, 1380, 60, 75]
    chunks = authoring.stream_chunks(
        parts,
        delays,
        name=name,
        model=MODEL,
        prompt_tokens=authoring.estimate_tokens(PROMPT),
        answer_tokens=authoring.estimate_tokens("".join(ANSWER)),
        thoughts=412,
    )
    return authoring.generate_cassette(
        name,
        "01_text_streaming: high thinking with thought summaries streamed before the answer.",
        MODEL,
        request({"includeThoughts": True, "thinkingLevel": "HIGH"}),
        chunks,
    )


def main() -> None:
    """Write both cassettes under assets/cassettes/text/."""
    for path in authoring.write_cassettes(OUT, [minimal(), high()]):
        print(f"wrote {path.relative_to(OUT.parent.parent.parent)}")


if __name__ == "__main__":
    main()

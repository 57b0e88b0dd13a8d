"""Write the cassettes of notebooks/01_text_streaming.ipynb from our own text.

Run: ``uv run python scripts/make_text_cassettes.py``. Each answer is written as
realistic chunks (a few words to a sentence each), with a longer wait before the first
chunk (time to first chunk) and usage numbers estimated at about 1.3 tokens per word.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _authoring as authoring  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "cassettes" / "text"
MODEL = "gemini-2.5-flash"


def cassette(
    name: str,
    description: str,
    prompt: str,
    chunks: list[str],
    *,
    first_delay_ms: int = 620,
    delay_ms: int = 140,
    thoughts: int = 0,
) -> dict:
    """Build one generate cassette answering ``prompt`` with ``chunks`` of text."""
    return authoring.generate_cassette(
        name,
        description,
        MODEL,
        {"contents": [authoring.text_content("user", prompt)]},
        authoring.stream_chunks(
            chunks,
            authoring.paced_delays(
                len(chunks), first_ms=first_delay_ms, every_ms=delay_ms, jitter_ms=37
            ),
            name=name,
            model=MODEL,
            prompt_tokens=authoring.estimate_tokens(prompt),
            answer_tokens=authoring.estimate_tokens("".join(chunks)),
            thoughts=thoughts,
        ),
    )


CASSETTES = [
    cassette(
        "text_first_stream",
        "01_text_streaming: the first stream, printed chunk by chunk.",
        "In three short sentences, explain why streaming a model's answer makes a chat app "
        "feel faster.",
        [
            "Streaming shows",
            " the first words of the answer while the model is still writing the rest,",
            " so the reader starts reading after a fraction of a second",
            " instead of staring at a spinner.",
            " The total time to generate the answer barely changes,",
            " but the time to first chunk drops from seconds to a moment.",
            " People judge speed by when something appears, so the app feels several times faster.",
        ],
        thoughts=212,
    ),
    cassette(
        "text_markdown_stream",
        "01_text_streaming: a Markdown answer rendered live with stream_markdown.",
        "Write a short Markdown cheat sheet for streaming with the Gemini API in Python: a "
        "heading, three bullet points and one bold tip.",
        [
            "### Streaming with",
            " the Gemini API\n\n",
            "* Call `client.models.generate_content_stream(...)`",
            " and loop over the chunks it yields.\n",
            "* Read `chunk.text` for the new text of each chunk;",
            " append it to what you already have.\n",
            "* The last chunk carries `finish_reason`",
            " and the final `usage_metadata`.\n\n",
            "**Tip:** use `client.aio` in async apps so one slow stream",
            " never blocks the others.",
        ],
        delay_ms=160,
        thoughts=348,
    ),
    cassette(
        "text_async_stream",
        "01_text_streaming: the async stream with client.aio.",
        "Give me four tips for writing clear prompts, as a numbered list.",
        [
            "1. **Say what you want",
            " first.** Put the task in the opening sentence.\n",
            "2. **Give context.** Tell the model who the answer is for",
            " and why.\n",
            "3. **Show the format.** An example of the output",
            " beats a paragraph describing it.\n",
            "4. **Set limits.** Ask for a length, a tone",
            " or a number of items.",
        ],
        first_delay_ms=540,
        thoughts=176,
    ),
    cassette(
        "text_bad_key_prompt",
        "01_text_streaming: the prompt sent with a bad key (the key check answers first).",
        "Hello!",
        ["Hello! How can I help you today?"],
    ),
]


def main() -> None:
    """Write every cassette as pretty-printed JSON under assets/cassettes/text/."""
    for path in authoring.write_cassettes(OUT, CASSETTES):
        print(f"wrote {path.relative_to(OUT.parent.parent.parent)}")


if __name__ == "__main__":
    main()

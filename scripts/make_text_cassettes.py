"""Write the cassettes of notebooks/01_text_streaming.ipynb from our own text.

Run: ``uv run python scripts/make_text_cassettes.py``. The answers are authored here,
not recorded, and cut the way a live stream cuts them (:func:`_authoring.split_text`):
a short first chunk, then pieces of irregular length that often end mid-word. The first
chunk waits for the model to think (about 0.8 to 2.5 s), later ones follow a few tenths
of a second apart (:func:`_authoring.stream_delays`); thinking tokens agree with that
first wait and the other token counts are estimated at about 1.3 tokens per word. The
model is the package's default text model (``settings.DEFAULT_TEXT_MODEL``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _authoring as authoring  # noqa: E402

from quickstart_helpers import settings  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "cassettes" / "text"
MODEL = settings.DEFAULT_TEXT_MODEL

#: The prompts notebook 01 sends (exactly these).
FIRST_PROMPT = "In three short sentences, explain why bread dough has to rise before it is baked."
CHEAT_SHEET_PROMPT = (
    "Write a short Markdown cheat sheet for baking a first loaf of bread at home: a "
    "heading, three bullet points and one bold tip."
)
TIPS_PROMPT = "Give me four tips for exploring tide pools safely, as a numbered list."

FIRST_ANSWER = (
    "As the dough rests, yeast feeds on the sugars in the flour and releases carbon "
    "dioxide, which the stretchy gluten network traps in thousands of tiny bubbles. "
    "Those bubbles expand in the heat of the oven and then set as the crumb bakes, "
    "giving the loaf its light, open texture. Skip the rise and you get a dense, heavy "
    "brick with a flat, bland flavour, because the yeast never had time to develop it."
)
CHEAT_SHEET_ANSWER = (
    "### Your First Loaf: A Cheat Sheet\n\n"
    "* **Weigh, don't scoop:** use a kitchen scale for the flour and water, since a cup "
    "of flour can vary by 30 grams or more.\n"
    "* **Knead until it stretches:** work the dough for about 10 minutes, until a small "
    "piece stretches thin enough to let light through without tearing.\n"
    "* **Let it rise until doubled:** cover the bowl and wait 1 to 2 hours in a warm "
    "spot; watch the dough, not the clock.\n\n"
    "**Tip:** bake until the bottom sounds hollow when you tap it, then let the loaf cool "
    "for at least an hour before slicing, because it keeps cooking inside as it cools."
)
TIPS_ANSWER = (
    "1. **Check the tide table first.** Go out about an hour before low tide and head "
    "back as soon as the water turns.\n"
    "2. **Wear shoes with grip.** Wet rock and seaweed are slippery, and barnacles cut "
    "bare feet.\n"
    "3. **Keep an eye on the sea.** Never turn your back on the waves, and stay off rocks "
    "the spray can reach.\n"
    "4. **Look, don't take.** Turn any rock you lift back the way you found it, and leave "
    "every animal in its pool."
)


def cassette(
    name: str,
    description: str,
    prompt: str,
    answer: str,
    *,
    first_ms: tuple[int, int] = (800, 2500),
) -> dict:
    """Build one generate cassette answering ``prompt`` with ``answer``, cut as a live stream."""
    chunks = authoring.split_text(answer, seed=name)
    delays = authoring.stream_delays(len(chunks), seed=name, first_ms=first_ms)
    return authoring.generate_cassette(
        name,
        description,
        MODEL,
        {"contents": [authoring.text_content("user", prompt)]},
        authoring.stream_chunks(
            chunks,
            delays,
            name=name,
            model=MODEL,
            prompt_tokens=authoring.estimate_tokens(prompt),
            answer_tokens=authoring.estimate_tokens(answer),
            thoughts=authoring.thinking_tokens(delays[0]),
        ),
    )


CASSETTES = [
    cassette(
        "text_first_stream",
        "01_text_streaming: the first stream, printed chunk by chunk.",
        FIRST_PROMPT,
        FIRST_ANSWER,
    ),
    cassette(
        "text_markdown_stream",
        "01_text_streaming: a Markdown answer rendered live.",
        CHEAT_SHEET_PROMPT,
        CHEAT_SHEET_ANSWER,
    ),
    cassette(
        "text_async_stream",
        "01_text_streaming: the async stream with client.aio.",
        TIPS_PROMPT,
        TIPS_ANSWER,
    ),
    cassette(
        "text_bad_key_prompt",
        "01_text_streaming: the prompt sent with a bad key (the key check answers first).",
        "Hello!",
        "Hello! How can I help you today?",
        first_ms=(500, 900),
    ),
]


def main() -> None:
    """Write every cassette as pretty-printed JSON under assets/cassettes/text/."""
    for path in authoring.write_cassettes(OUT, CASSETTES):
        print(f"wrote {path.relative_to(OUT.parent.parent.parent)}")


if __name__ == "__main__":
    main()

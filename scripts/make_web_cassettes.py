"""Write the cassettes of the web chat (quickstart_helpers.web, notebook 05) from our own text.

Run: ``uv run python scripts/make_web_cassettes.py``. The chat answers (the web chat's
sample question and its follow-up) are cut the way a live stream cuts them
(:func:`_authoring.split_text`: mid-word, irregular lengths), the first chunk after a
thinking wait, later ones a few hundred milliseconds apart, so that in realtime pacing a
browser shows the chat bubble growing chunk by chunk; so is the answer of the broken
stream (its first two chunks, the second ending mid-word). The framing and disconnect
tests' cassettes are cut by hand, for the characters and timings they test. Usage
numbers are estimated at about 1.3 tokens per word; the model is
``settings.DEFAULT_TEXT_MODEL``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _authoring as authoring  # noqa: E402

from quickstart_helpers import settings  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "cassettes" / "web"
MODEL = settings.DEFAULT_TEXT_MODEL

#: The web chat's sample question (``quickstart_helpers.web.SAMPLE_QUESTION``).
CHAT_PROMPT = "How did lighthouse keepers keep the light burning all night?"
CHAT_CHUNKS = authoring.split_text(
    "Before electricity, the keeper climbed the tower at sunset to light an oil lamp, "
    "often burning whale oil and later kerosene, set inside a great glass lens.\n\n"
    "Through the night the keeper stood watch in shifts:\n"
    "trimming the wick so it burned without smoke, polishing soot from the glass, and "
    "winding the clockwork that turned the lens every few hours.\n\n"
    "At dawn the lamp was put out, and the lens was curtained from the sun.",
    seed=CHAT_PROMPT,
)

FOLLOWUP_PROMPT = "Why did the lens need a curtain during the day?"
FOLLOWUP_CHUNKS = authoring.split_text(
    "Because the same lens that throws the lamp's light out to sea will focus the sun's "
    "rays inward. On a bright day it could scorch the lamp, crack the glass or even start "
    "a fire.\n\nSo each morning the keeper drew linen curtains around the lantern room "
    "and opened them again before dusk.",
    seed=FOLLOWUP_PROMPT,
)

#: A packing note holding what trips a hand-written SSE relay: CRLF, a lone CR, an empty
#: chunk, leading spaces, "data:" inside the text, a chunk that is just "[DONE]", wide
#: characters and the line separators U+2028 and NEL (U+0085).
FRAMING_PROMPT = (
    "Write my packing note for a weekend in Kyoto as plain text, ticking off what is done."
)
FRAMING_CHUNKS = [
    "Kyoto weekend\r\npassport, rail pa",
    "ss\rcharger for the camera\n",
    "",
    "  booking data: room 12, check-in after 15:00\n",
    "[DONE]",
    " train tickets printed\n",
    "Words to practise: 日本語, ありがとう. Matcha 🍵 at the café by the station,\u2028then "
    "the bus\u0085to Arashiyama.\n\n",
    "Have a good tr",
    "ip.",
]

BROKEN_PROMPT = "How do migrating birds find their way?"
#: The first two chunks of an answer cut as a live stream cuts it: the connection drops
#: after them, in the middle of a word.
BROKEN_CHUNKS = authoring.split_text(
    "Migrating birds steer by several compasses at once: the sun by day, the stars by night, "
    "and the pull of the Earth's magnetic field, which they seem to sense in their eyes. "
    "Young birds inherit a direction and a distance, and learn landmarks on their first "
    "journey.",
    seed="web_sse_broken",
)[:2]

SLOW_PROMPT = "Tell me the whole history of the bicycle, in detail."
SLOW_CHUNKS = [
    "The bicycle be",
    "gan in 1817 with Karl Drais's running machine: a wooden frame on two wheels, pushed "
    "along by the rider's feet.",
]


def user(text: str) -> dict:
    return authoring.text_content("user", text)


def model(text: str) -> dict:
    return authoring.text_content("model", text)


def cassette(
    name: str,
    description: str,
    contents: list[dict],
    chunks: list[str],
    delays_ms: list[int],
    *,
    finish: bool = True,
    break_after: bool = False,
) -> dict:
    """Build one generate cassette answering ``contents`` with ``chunks`` of text.

    Args:
        finish: The last chunk ends the answer (finish reason and final usage).
        break_after: Drop the connection after the last chunk.
    """
    out = authoring.stream_chunks(
        chunks,
        delays_ms,
        name=name,
        model=MODEL,
        prompt_tokens=sum(
            authoring.estimate_tokens(p["text"]) for c in contents for p in c["parts"]
        ),
        answer_tokens=authoring.estimate_tokens("".join(chunks)),
        thoughts=authoring.thinking_tokens(delays_ms[0]),
        prompt_details=False,
        complete=finish,
    )
    if break_after:
        out.append({"delay_ms": 300, "break": True})
    return authoring.generate_cassette(name, description, MODEL, {"contents": contents}, out)


CASSETTES = [
    cassette(
        "web_sse_chat",
        "05_sse_web_chat and the browser test: one answer relayed to the page as SSE events; "
        "some chunks hold newlines.",
        [user(CHAT_PROMPT)],
        CHAT_CHUNKS,
        authoring.stream_delays(len(CHAT_CHUNKS), seed="web_sse_chat", first_ms=(800, 1600)),
    ),
    cassette(
        "web_sse_followup",
        "The web chat's POST /chat flow: the second turn of a conversation (history sent).",
        [user(CHAT_PROMPT), model("".join(CHAT_CHUNKS)), user(FOLLOWUP_PROMPT)],
        FOLLOWUP_CHUNKS,
        authoring.stream_delays(
            len(FOLLOWUP_CHUNKS), seed="web_sse_followup", first_ms=(800, 1600)
        ),
    ),
    cassette(
        "web_sse_framing",
        "SSE framing tests: CRLF, lone CR, an empty chunk, leading spaces, a chunk reading "
        "[DONE], Unicode and Unicode line separators.",
        [user(FRAMING_PROMPT)],
        FRAMING_CHUNKS,
        [300, 150, 150, 150, 150, 150, 150, 150, 150],
    ),
    cassette(
        "web_sse_broken",
        "Web chat error handling: the connection drops after two chunks.",
        [user(BROKEN_PROMPT)],
        BROKEN_CHUNKS,
        authoring.stream_delays(len(BROKEN_CHUNKS), seed="web_sse_broken", first_ms=(800, 1600)),
        finish=False,
        break_after=True,
    ),
    cassette(
        "web_sse_slow",
        "Disconnect tests: the second chunk comes a minute after the first, so a client "
        "leaves while the model stream is still open.",
        [user(SLOW_PROMPT)],
        SLOW_CHUNKS,
        [0, 60000],
    ),
]


def main() -> None:
    """Write every cassette as pretty-printed JSON under assets/cassettes/web/."""
    for path in authoring.write_cassettes(OUT, CASSETTES):
        print(f"wrote {path.relative_to(OUT.parent.parent.parent)}")


if __name__ == "__main__":
    main()

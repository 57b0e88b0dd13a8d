"""Write the chat cassettes: notebooks/02_chat_streaming.ipynb's and the chat tests'.

Run: ``uv run python scripts/make_chat_cassettes.py``. It writes
``assets/cassettes/chat/*.json`` (the notebook's tide-pool guide, Marlo) and
``tests/cassettes/chat/*.json`` (test-only: a lighthouse keeper, a stream that breaks
midway, a stream that ends without a finish reason).

The emulator matches a request on its whole ``contents``, history included, so each
later turn's cassette holds the earlier turns exactly as the SDK sends them:

- inside one chat session (``chat.send_message_stream``), the SDK keeps a streamed
  answer as one ``model`` Content per chunk, so the history is written ``split``;
- a chat session opened from a saved conversation (``Conversation.open_chat``) holds
  each answer as one Content, so the history is written ``merged``.

The emulator merges consecutive contents of one role before matching, so both forms
match the same cassette; each form is kept here as the SDK sends it.

Either way an answer's text is the concatenation of its turn's chunk texts. Chunks are
a few words to a sentence each, with a longer wait before the first one (time to first
chunk); token counts are estimated at about 1.3 tokens per word.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _authoring as authoring  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gemini-2.5-flash"

MARLO = (
    "You are Marlo, a cheerful guide at a small seaside aquarium who loves tide pools. "
    "Answer in two to four short sentences, in plain words a twelve-year-old would "
    "follow, and never make facts up."
)
KEEPER = "You are a lighthouse keeper of few words. Answer in one sentence."


@dataclass
class Turn:
    """One exchange: the user's message and the model's answer as streamed chunks."""

    prompt: str
    chunks: list[str]

    @property
    def answer(self) -> str:
        return "".join(self.chunks)


def history(turns: list[Turn], form: Literal["split", "merged"]) -> list[dict]:
    """Return earlier turns as wire ``contents``, one model Content per chunk if split."""
    contents: list[dict] = []
    for turn in turns:
        contents.append(authoring.text_content("user", turn.prompt))
        answers = turn.chunks if form == "split" else [turn.answer]
        contents.extend(authoring.text_content("model", a) for a in answers)
    return contents


def cassette(
    name: str,
    description: str,
    system: str,
    earlier: list[Turn],
    form: Literal["split", "merged"],
    turn: Turn,
    *,
    first_delay_ms: int = 580,
    delay_ms: int = 130,
    thoughts: int = 0,
    finish: bool = True,
    break_after: int | None = None,
) -> dict:
    """Build one generate cassette answering ``turn.prompt`` after ``earlier`` turns.

    Args:
        break_after: Drop the connection after this many chunks (a broken stream).
        finish: Put ``finishReason: STOP`` on the last chunk.
    """
    sent = " ".join([system, *(f"{t.prompt} {t.answer}" for t in earlier), turn.prompt])
    chunks = turn.chunks if break_after is None else turn.chunks[:break_after]
    out = authoring.stream_chunks(
        chunks,
        authoring.paced_delays(
            len(chunks), first_ms=first_delay_ms, every_ms=delay_ms, jitter_ms=31
        ),
        name=name,
        model=MODEL,
        prompt_tokens=authoring.estimate_tokens(sent) + 4 * len(earlier),
        answer_tokens=authoring.estimate_tokens(turn.answer),
        thoughts=thoughts,
        complete=break_after is None,
        finish_reason="STOP" if finish else None,
    )
    if break_after is not None:
        out.append({"delay_ms": delay_ms, "break": True})
    contents = history(earlier, form) + [authoring.text_content("user", turn.prompt)]
    request = {"contents": contents, "systemInstruction": {"parts": [{"text": system}]}}
    return authoring.generate_cassette(name, description, MODEL, request, out)


# -- the notebook's conversation with Marlo ---------------------------------------------
T1 = Turn(
    "What might I find in a tide pool at low tide?",
    [
        "Lots of",
        " tiny neighbours! Look for sea anemones",
        " waving their tentacles, hermit crabs borrowing",
        " old snail shells, and purple sea urchins tucked into",
        " holes in the rock. If you are patient, you may spot",
        " a sea star clinging to a ledge",
        " or a small fish darting between the seaweed.",
    ],
)
T2 = Turn(
    "Which of those should I never touch?",
    [
        "Leave the sea",
        " urchins alone: their spines are sharp and can",
        " break off in your skin. Anemones feel sticky,",
        " but the oils and sunscreen on your hands can harm them, so",
        " look with your eyes only. And never pull a sea star",
        " off its rock, because that can tear its tiny tube feet.",
    ],
)
T3 = Turn(
    "Can a sea star stay out of the water for a while?",
    [
        "Not for",
        " long. A sea star breathes through its skin",
        " and its tube feet, and they dry out quickly in the air and sun.",
        " That is why our touch pool lets you stroke them gently",
        " while they stay underwater.",
    ],
)
T4 = Turn(
    "Thanks, Marlo! Can you sum up our chat in one sentence?",
    [
        "We talked",
        " about the anemones, hermit crabs, urchins and sea stars",
        " that live in tide pools, why you should look",
        " but not touch, and why a sea star needs",
        " to stay underwater.",
    ],
)
HELLO = Turn(
    "Hi Marlo! Are you there?",
    ["Hi there!", " I am right here by the tide pools.", " What would you like to know?"],
)

NOTEBOOK = [
    cassette(
        "chat_tide_pool_turn1",
        "02_chat_streaming: turn 1 of the chat with Marlo.",
        MARLO,
        [],
        "split",
        T1,
        thoughts=164,
    ),
    cassette(
        "chat_tide_pool_turn2",
        "02_chat_streaming: turn 2; the history is turn 1 as the chat session keeps it.",
        MARLO,
        [T1],
        "split",
        T2,
        thoughts=198,
    ),
    cassette(
        "chat_tide_pool_turn3_async",
        "02_chat_streaming: turn 3 from an async chat session opened from the conversation.",
        MARLO,
        [T1, T2],
        "merged",
        T3,
        first_delay_ms=520,
        thoughts=142,
    ),
    cassette(
        "chat_tide_pool_turn4_reloaded",
        "02_chat_streaming: turn 4, after the conversation was saved and loaded back.",
        MARLO,
        [T1, T2, T3],
        "merged",
        T4,
        thoughts=121,
    ),
    cassette(
        "chat_bad_key_hello",
        "02_chat_streaming: the message sent again once the user typed a valid key.",
        MARLO,
        [],
        "split",
        HELLO,
        first_delay_ms=450,
    ),
]

# -- test-only cassettes ---------------------------------------------------------------
K1 = Turn("What does a lighthouse do?", ["It warns ships", " away from the rocks", " at night."])
K2 = Turn("How far away can ships see it?", ["About twenty", " nautical miles on a clear night."])
FOG = Turn(
    "Tell me about fog signals.",
    ["When fog hides", " the light, a horn sounds", " every thirty seconds."],
)
SHORT = Turn("Say something short.", ["Calm seas", " tonight."])

TESTS = [
    cassette("test_chat_keeper_turn1", "Chat tests: turn 1.", KEEPER, [], "split", K1),
    cassette(
        "test_chat_keeper_turn2",
        "Chat tests: turn 2, in the same chat session or after reloading the conversation.",
        KEEPER,
        [K1],
        "split",
        K2,
    ),
    cassette(
        "test_chat_keeper_broken",
        "Chat tests: the connection drops after two chunks.",
        KEEPER,
        [],
        "split",
        FOG,
        break_after=2,
    ),
    cassette(
        "test_chat_keeper_no_finish",
        "Chat tests: the stream ends cleanly but without a finish reason.",
        KEEPER,
        [],
        "split",
        SHORT,
        finish=False,
    ),
]


def write(folder: Path, cassettes: list[dict]) -> None:
    """Write each cassette as pretty-printed JSON named after it."""
    for path in authoring.write_cassettes(folder, cassettes):
        print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    """Write the notebook's and the tests' chat cassettes."""
    write(ROOT / "assets" / "cassettes" / "chat", NOTEBOOK)
    write(ROOT / "tests" / "cassettes" / "chat", TESTS)


if __name__ == "__main__":
    main()

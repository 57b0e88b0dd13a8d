"""Write the cassettes of the web chat (quickstart_helpers.web, notebook 05) from our own text.

Run: ``uv run python scripts/make_web_cassettes.py``. The delays are modest
(a few hundred milliseconds) so that, in realtime pacing, a browser shows the chat
bubble growing chunk by chunk. Usage numbers are estimated at about 1.3 tokens per word.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _authoring as authoring  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "cassettes" / "web"
MODEL = "gemini-2.5-flash"

CHAT_PROMPT = "How does a web page show a streamed answer while it is still being written?"
CHAT_CHUNKS = [
    "The server opens a Server-Sent Events stream",
    " and forwards each model chunk as one event.\n\n",
    "In the browser, an EventSource receives the events",
    " and appends each chunk to the chat bubble,",
    " so the answer grows as you watch:\nfirst a few words, then whole sentences.",
    "\n\nWhen the final [DONE] event arrives,",
    " the page closes the stream.",
]

FOLLOWUP_PROMPT = "Why does the page close the stream at the end?"
FOLLOWUP_CHUNKS = [
    "Because an EventSource reconnects on its own when a stream ends.",
    " Without close(), the browser would ask the same question again",
    " a few seconds later.\n\nClosing it on [DONE] or on an error event",
    " ends the exchange cleanly.",
]

FRAMING_PROMPT = "Send the characters that break naive SSE framing."
FRAMING_CHUNKS = [
    "Line one\r\nline two",
    "\rafter a lone carriage return\n",
    "",
    "  two leading spaces, then data: inside the text\n",
    "[DONE]",
    " is only text here.\n",
    "Unicode: café, naïve, 日本語, emoji 🚀, a line separator \u2028 and NEL \u0085 stay.\n\n",
    "The end.",
]

BROKEN_PROMPT = "Tell me about networks that drop connections."
BROKEN_CHUNKS = [
    "Connections drop more often than you think:",
    " mobile networks hand over between cells,",
]

SLOW_PROMPT = "Write a very long answer, slowly."
SLOW_CHUNKS = [
    "This answer starts at once,",
    " but the next chunk takes a whole minute to arrive.",
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
        [450, 260, 300, 240, 280, 260, 220],
    ),
    cassette(
        "web_sse_followup",
        "The web chat's POST /chat flow: the second turn of a conversation (history sent).",
        [user(CHAT_PROMPT), model("".join(CHAT_CHUNKS)), user(FOLLOWUP_PROMPT)],
        FOLLOWUP_CHUNKS,
        [400, 250, 280, 220],
    ),
    cassette(
        "web_sse_framing",
        "SSE framing tests: CRLF, lone CR, an empty chunk, leading spaces, a chunk reading "
        "[DONE], Unicode and Unicode line separators.",
        [user(FRAMING_PROMPT)],
        FRAMING_CHUNKS,
        [300, 150, 150, 150, 150, 150, 150, 150],
    ),
    cassette(
        "web_sse_broken",
        "Web chat error handling: the connection drops after two chunks.",
        [user(BROKEN_PROMPT)],
        BROKEN_CHUNKS,
        [300, 200],
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

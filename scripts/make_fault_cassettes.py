"""Write the cassettes of notebooks/07_errors_and_retries.ipynb: faults, on the real wire.

Run: ``uv run python scripts/make_fault_cassettes.py``. The Live API cassette needs
``espeak-ng`` and ``sox`` (see ``scripts/make_audio_cassettes.py``); the others need
nothing. Every answer is our own text, cut the way a live stream cuts it
(:func:`_authoring.split_text`: a short first chunk, then irregular pieces that often end
mid-word), the first chunk after a thinking wait and later ones a few tenths of a second
apart (:func:`_authoring.stream_delays`). Faults are the cassettes' ``faults`` directives
(see ``quickstart_helpers/emulator/_faults.py``), placed from those chunks: a broken
stream breaks at the first chunk boundary past the middle of its answer that falls
inside a word, and its ``_continued`` cassette answers with exactly the rest. The error
JSON is the live API's.

Written under ``assets/cassettes/faults/`` (audio under ``faults/audio/``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import _authoring as authoring  # noqa: E402

from quickstart_helpers import settings  # noqa: E402
from quickstart_helpers.emulator._http import sse_event  # noqa: E402
from quickstart_helpers.retry import CONTINUE_PROMPT  # noqa: E402

OUT = ROOT / "assets" / "cassettes" / "faults"
MODEL = settings.DEFAULT_TEXT_MODEL

# -- prompts (notebook 07 sends the same) ------------------------------------------------
OVERLOADED = "Name three ways to keep a cast-iron pan in good shape, in one sentence each."
RATE_LIMITED = "Summarize the history of the telegraph in two sentences."
ERROR_MIDSTREAM = "Explain in four short sentences how a lighthouse lens works."
DROPPED = "Describe the water cycle in four short sentences."
SAFETY = "How do fireworks get their colours, and how can I make my own at home?"
MAX_TOKENS = "Write a detailed guide to sourdough bread, from starter to baking."
RECITATION = "Print the first page of a well-known recent novel, word for word."
BLOCKED = "Give me step-by-step instructions to pick the lock on my neighbour's front door."
SPLIT_UTF8 = "Write one sentence about a café in Zürich, with an emoji."
SEPARATORS = (
    "Write a four-line poem about a maple in autumn, with a Unicode line separator "
    "between its lines and a paragraph separator between its two halves."
)

UNAVAILABLE = {
    "error": {
        "code": 503,
        "message": "The model is overloaded. Please try again later.",
        "status": "UNAVAILABLE",
    }
}
QUOTA = {
    "error": {
        "code": 429,
        "message": (
            "You exceeded your current quota, please check your plan and billing details. "
            "For more information on this error, head to: "
            "https://ai.google.dev/gemini-api/docs/rate-limits."
        ),
        "status": "RESOURCE_EXHAUSTED",
        # The details a real 429 carries (as quoted in RooCodeInc/Roo-Code #3883 and
        # googleapis/python-genai #2044), for this model and a per-minute request quota.
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/"
                        "generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": MODEL},
                        "quotaValue": "10",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"},
        ],
    }
}
INTERNAL = {
    "error": {
        "code": 500,
        "message": "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
        "status": "INTERNAL",
    }
}


def request(prompt: str, answer: str | None = None, **config: Any) -> dict[str, Any]:
    """The request body: ``prompt``; with ``answer``, a continue request after it."""
    contents = [authoring.text_content("user", prompt)]
    if answer is not None:
        contents += [
            authoring.text_content("model", answer),
            authoring.text_content("user", CONTINUE_PROMPT),
        ]
    body: dict[str, Any] = {"contents": contents}
    if config:
        body["generationConfig"] = config
    return body


def chunks(name: str, prompt: str, pieces: list[str], **kwargs: Any) -> list[dict[str, Any]]:
    """Chunks answering ``prompt`` with ``pieces`` of text, paced as a live stream: a
    thinking wait before the first (with thinking tokens to match), short gaps after it."""
    delays = authoring.stream_delays(len(pieces), seed=name)
    return authoring.stream_chunks(
        pieces,
        delays,
        name=name,
        model=MODEL,
        prompt_tokens=authoring.estimate_tokens(prompt),
        answer_tokens=authoring.estimate_tokens("".join(pieces)),
        thoughts=authoring.thinking_tokens(delays[0]),
        **kwargs,
    )


def break_point(pieces: list[str]) -> int:
    """The number of chunks a broken stream delivers: up to the first chunk boundary past
    the middle of the answer that falls inside a word, so the partial answer ends mid-word
    as a live stream's does.

    Raises:
        ValueError: No boundary past the middle falls inside a word.
    """
    text, end = "".join(pieces), 0
    for count, piece in enumerate(pieces[:-1], 1):
        end += len(piece)
        if end >= len(text) // 2 and text[end - 1].isalpha() and text[end].isalpha():
            return count
    raise ValueError(f"No chunk boundary inside a word past the middle of {text[:40]!r}...")


def generate(
    name: str,
    description: str,
    body: dict[str, Any],
    chunk_list: list[dict[str, Any]],
    faults: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    cassette = authoring.generate_cassette(name, description, MODEL, body, chunk_list)
    if faults:
        cassette["faults"] = faults
    return cassette


def final_chunk(
    name: str, prompt: str, answer: list[dict[str, Any]], candidate: dict[str, Any]
) -> dict[str, Any]:
    """A last chunk after the ``answer`` chunks, with no text: just a finish reason (and
    ratings, after ``index`` as the API orders them) and the usage."""
    ratings = (
        {"safetyRatings": candidate.pop("safetyRatings")} if "safetyRatings" in candidate else {}
    )
    text = "".join(
        part.get("text", "")
        for chunk in answer
        for part in chunk["response"]["candidates"][0]["content"]["parts"]
    )
    return {
        "delay_ms": 120,
        "response": {
            "candidates": [{**candidate, "index": 0, **ratings}],
            "usageMetadata": authoring.usage_metadata(
                authoring.estimate_tokens(prompt),
                authoring.estimate_tokens(text),
                thoughts=answer[-1]["response"]["usageMetadata"].get("thoughtsTokenCount", 0),
            ),
            "modelVersion": MODEL,
            "responseId": authoring.response_id(name),
        },
    }


def split_offset(response: dict[str, Any], character: str, inside: int = 1) -> int:
    """Byte offset ``inside`` bytes into the first ``character`` of the SSE event of
    ``response``, as the emulator frames it (``_http.sse_event``)."""
    event = sse_event(response)
    return event.index(character.encode()) + inside


def retries() -> list[dict[str, Any]]:
    overloaded = authoring.split_text(
        "Dry it straight after washing, because standing water leaves rust within hours."
        " Wipe a thin film of oil over it while it is still warm, so the seasoning stays sealed."
        " And cook with it often: every batch of fried onions adds to that black, slick layer.",
        seed="faults_overloaded",
    )
    telegraph = authoring.split_text(
        "The electric telegraph, developed in the 1830s and 1840s by Cooke, Wheatstone and"
        " Morse, carried coded messages over wires in minutes instead of days."
        " Undersea cables joined the continents by the 1860s, and the telephone and"
        " radio slowly replaced it in the twentieth century.",
        seed="faults_rate_limited",
    )
    return [
        generate(
            "faults_overloaded",
            "07_errors_and_retries: 503 UNAVAILABLE twice, then the answer (HttpRetryOptions).",
            request(OVERLOADED),
            chunks("faults_overloaded", OVERLOADED, overloaded),
            [{"fault": "http_error", "status": 503, "times": 2, "error": UNAVAILABLE}],
        ),
        generate(
            "faults_rate_limited",
            "07_errors_and_retries: 429 RESOURCE_EXHAUSTED on every attempt (quota used up).",
            request(RATE_LIMITED),
            chunks("faults_rate_limited", RATE_LIMITED, telegraph),
            [{"fault": "http_error", "status": 429, "error": QUOTA}],
        ),
    ]


def resumed(
    name: str, prompt: str, answer: str, fault: dict[str, Any], what: str
) -> list[dict[str, Any]]:
    """A stream broken by ``fault`` partway through ``answer``, and the continue request's
    answer: exactly the rest, so that the partial answer and it join seamlessly.

    ``fault`` gets its ``after`` from :func:`break_point`; ``what`` describes the fault,
    with ``{after}`` for that number of chunks.
    """
    pieces = authoring.split_text(answer, seed=name)
    after = break_point(pieces)
    partial = "".join(pieces[:after])
    rest = answer[len(partial) :]
    # The broken stream holds the whole answer; the fault cuts it after ``after`` chunks.
    return [
        generate(
            name,
            f"07_errors_and_retries: {what.format(after=after)}",
            request(prompt),
            chunks(name, prompt, pieces),
            [{**fault, "after": after}],
        ),
        generate(
            f"{name}_continued",
            f"07_errors_and_retries: the continue request after {name}.",
            request(prompt, partial),
            chunks(
                f"{name}_continued",
                CONTINUE_PROMPT,
                authoring.split_text(rest, seed=f"{name}_continued"),
            ),
        ),
    ]


def broken_streams() -> list[dict[str, Any]]:
    lens = (
        "A lighthouse lens gathers the light of one small lamp and bends it into a narrow beam."
        " Rings of glass prisms, each angled a little more than the last, catch the rays that"
        " would escape up and down. Together they send almost all of the light toward the"
        " horizon. Turning the lens sweeps that beam around, so ships see a flash."
    )
    water = (
        "The sun warms oceans and lakes, and water evaporates into the air."
        " As the vapour rises and cools, it condenses into clouds."
        " When the droplets grow heavy, they fall as rain or snow."
        " The water runs back to the sea in rivers and underground, and the cycle starts again."
    )
    return [
        *resumed(
            "faults_error_midstream",
            ERROR_MIDSTREAM,
            lens,
            {"fault": "error_event", "error": UNAVAILABLE},
            "an error event (503 UNAVAILABLE) after {after} chunks of text.",
        ),
        *resumed(
            "faults_dropped_stream",
            DROPPED,
            water,
            {"fault": "drop", "at_byte": 40},
            "the connection drops after {after} chunks, 40 bytes into the next one.",
        ),
    ]


def finish_reasons() -> list[dict[str, Any]]:
    fireworks = authoring.split_text(
        "Fireworks get their colours from metal salts: strontium burns red, barium green and"
        " copper blue. The heat excites the metal atoms, which give off light of their own"
        " colour.",
        seed="faults_finish_safety",
    )
    # Cut off at 48 tokens (maxOutputTokens), mid-sentence.
    sourdough = authoring.split_text(
        "## A guide to sourdough\n\n### 1. The starter\n\nMix equal weights of flour and water"
        " in a jar, cover it loosely and feed it every day. After about a week",
        seed="faults_finish_max_tokens",
    )
    # Stopped just before it would quote.
    novel = authoring.split_text(
        "I can't reproduce a copyrighted book word for word, but here is how the opening",
        seed="faults_finish_recitation",
    )
    dangerous = {
        "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
        "probability": "MEDIUM",
        "blocked": True,
    }
    return [
        generate(
            "faults_finish_safety",
            "07_errors_and_retries: the answer stops with finishReason SAFETY.",
            request(SAFETY),
            (safety := chunks("faults_finish_safety", SAFETY, fireworks, complete=False))
            + [
                final_chunk(
                    "faults_finish_safety",
                    SAFETY,
                    safety,
                    {"finishReason": "SAFETY", "safetyRatings": [dangerous]},
                )
            ],
        ),
        generate(
            "faults_finish_max_tokens",
            "07_errors_and_retries: maxOutputTokens 48 cuts the answer (MAX_TOKENS).",
            request(MAX_TOKENS, maxOutputTokens=48),
            chunks("faults_finish_max_tokens", MAX_TOKENS, sourdough, finish_reason="MAX_TOKENS"),
        ),
        generate(
            "faults_finish_recitation",
            "07_errors_and_retries: the answer stops with finishReason RECITATION.",
            request(RECITATION),
            (recited := chunks("faults_finish_recitation", RECITATION, novel, complete=False))
            + [
                final_chunk(
                    "faults_finish_recitation",
                    RECITATION,
                    recited,
                    {"finishReason": "RECITATION"},
                )
            ],
        ),
        generate(
            "faults_prompt_blocked",
            "07_errors_and_retries: the prompt is blocked outright (promptFeedback.blockReason).",
            request(BLOCKED),
            [
                {
                    "delay_ms": 380,
                    "response": {
                        "promptFeedback": {
                            "blockReason": "SAFETY",
                            "safetyRatings": [{**dangerous, "probability": "HIGH"}],
                        },
                        "usageMetadata": authoring.usage_metadata(
                            authoring.estimate_tokens(BLOCKED)
                        ),
                        "modelVersion": MODEL,
                        "responseId": authoring.response_id("faults_prompt_blocked"),
                    },
                }
            ],
        ),
    ]


def byte_level() -> list[dict[str, Any]]:
    cafe = authoring.split_text(
        "At the little café on the Limmat in Zürich, the barista draws a heart in every"
        " cappuccino ☕ and nobody is in a hurry.",
        seed="faults_split_utf8",
    )
    split = chunks("faults_split_utf8", SPLIT_UTF8, cafe)
    # Cut é and ü after their first byte, ☕ after its first and second: in whichever
    # chunk each one falls.
    cuts: dict[int, list[int]] = {}
    for character, inside in (("é", 1), ("ü", 1), ("☕", 1), ("☕", 2)):
        index = next(i for i, piece in enumerate(cafe) if character in piece)
        cuts.setdefault(index, []).append(split_offset(split[index]["response"], character, inside))
    poem = authoring.split_text(
        "The maple lets go\u2028of its last red leaf;\u2029it spins on the wind,\u2028unhurried"
        " and brief.",
        seed="faults_line_separators",
    )
    return [
        generate(
            "faults_split_utf8",
            "07_errors_and_retries: chunks written in several TCP writes that split "
            "the UTF-8 bytes of é, ü and ☕ across reads.",
            request(SPLIT_UTF8),
            split,
            [
                {"fault": "split", "chunk": index, "at": sorted(at)}
                for index, at in sorted(cuts.items())
            ],
        ),
        generate(
            "faults_line_separators",
            "07_errors_and_retries: U+2028 and U+2029 raw inside the JSON strings.",
            request(SEPARATORS),
            chunks("faults_line_separators", SEPARATORS, poem),
        ),
    ]


def main() -> int:
    cassettes = [*retries(), *broken_streams(), *finish_reasons(), *byte_level()]
    paths = authoring.write_cassettes(OUT, cassettes)  # live_go_away: make_audio_cassettes.py
    for path in paths:
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

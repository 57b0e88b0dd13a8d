"""Write the Interactions API cassettes of notebooks/06_interactions_streaming.ipynb.

Run: ``uv run python scripts/make_interactions_cassettes.py``.

The answers are authored here, not recorded from the live API, in the API's own event
JSON (``google.genai.interactions`` models; every event checked at write time):
``interaction.created``, ``interaction.status_update``, then per step ``step.start``,
``step.delta`` events and ``step.stop``, and ``interaction.completed``. Text is cut
into chunks of uneven length that split words, as the live API does; the first chunk
waits longer (the model thinks before it writes); thought summaries, function call
arguments (``arguments_delta``) and small PNG images (``image`` deltas) stream the
same way. The models are the package's defaults (:mod:`quickstart_helpers.settings`).

The output is deterministic: running the script again rewrites the same files.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _authoring as authoring  # noqa: E402

from quickstart_helpers import settings  # noqa: E402
from quickstart_helpers.web import SAMPLE_QUESTION  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "cassettes" / "interactions"
TEXT_MODEL = settings.INTERACTIONS_MODEL
IMAGE_MODEL = settings.INTERACTIONS_IMAGE_MODEL
CREATED = "2026-06-18T09:30:00Z"
#: Chunk lengths in characters, cycled: uneven, so chunks end mid-word.
CUTS = (19, 27, 14, 33, 22, 17, 29)

# -- the prompts (notebook 06 sends exactly these) ---------------------------------------
FIRST_PROMPT = "In three sentences, explain why lighthouses use Fresnel lenses."
TOUR_PROMPT = "Greet me in one short sentence."
THOUGHTS_PROMPT = "A train leaves at 14:05 and the trip takes 2 h 50 min. When does it arrive?"
CHAT_PROMPTS = (
    "My name is Ana and I am planning a trip to Lisbon in April. Suggest one "
    "neighbourhood to stay in, in two sentences.",
    "What was my name, and which month am I travelling?",
)
WEATHER_PROMPT = "What is the weather like in Lisbon right now? Use celsius."
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Return the current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. Lisbon."},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
WEATHER_RESULT = {"temperature": 19, "unit": "celsius", "condition": "sunny"}
STORYBOARD_PROMPT = (
    "Draw a two-panel storyboard of a paper boat: in panel 1 it is folded, in panel 2 it "
    "floats on a pond. Write a one-line caption before each panel."
)
DROPPED_PROMPT = (
    "List the planets of the solar system in order from the Sun, one line each with one fact."
)


def chunks(text: str) -> list[str]:
    """Cut ``text`` into chunks of the lengths in :data:`CUTS` (cycled)."""
    out, i, n = [], 0, 0
    while i < len(text):
        size = CUTS[n % len(CUTS)]
        out.append(text[i : i + size])
        i, n = i + size, n + 1
    return out


class Recorder:
    """Build one interaction's events, with event ids and delays."""

    def __init__(self, name: str, model: str) -> None:
        self.name = name
        self.model = model
        self.id = "v1_" + hashlib.sha1(name.encode()).hexdigest()[:24]
        self.events: list[dict[str, Any]] = []

    def add(self, delay_ms: int, event: dict[str, Any]) -> None:
        n = len([e for e in self.events if "event" in e])
        token = hashlib.sha1(f"{self.name}:{n}".encode()).hexdigest()[:16]
        event = {**event, "event_id": f"evt_{n:03d}_{token}"}
        self.events.append({"delay_ms": delay_ms, "event": event})

    def drop(self, delay_ms: int) -> None:
        self.events.append({"delay_ms": delay_ms, "break": True})

    def lifecycle(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": "in_progress",
            "object": "interaction",
            "model": self.model,
            "created": CREATED,
        }

    def start(self) -> None:
        self.add(120, {"event_type": "interaction.created", "interaction": self.lifecycle()})
        self.add(
            15,
            {
                "event_type": "interaction.status_update",
                "interaction_id": self.id,
                "status": "in_progress",
            },
        )

    def step(
        self,
        index: int,
        step: dict[str, Any],
        deltas: list[dict[str, Any]],
        delays: list[int],
        delay_ms: int = 10,
    ) -> None:
        self.add(delay_ms, {"event_type": "step.start", "index": index, "step": step})
        for delta, delay in zip(deltas, delays, strict=True):
            self.add(delay, {"event_type": "step.delta", "index": index, "delta": delta})
        self.add(8, {"event_type": "step.stop", "index": index})

    def finish(self, usage: dict[str, Any], status: str = "completed") -> None:
        if status != "completed":
            self.add(
                6,
                {
                    "event_type": "interaction.status_update",
                    "interaction_id": self.id,
                    "status": status,
                },
            )
        done = {**self.lifecycle(), "status": status, "updated": CREATED, "usage": usage}
        self.add(12, {"event_type": "interaction.completed", "interaction": done})


def usage(prompt: str, answer: str, thoughts: int = 0, extra_out: int = 0) -> dict[str, Any]:
    """The interaction's usage, estimated at about 1.3 tokens per word."""
    inp = authoring.estimate_tokens(prompt)
    out = authoring.estimate_tokens(answer) + extra_out
    result = {
        "total_input_tokens": inp,
        "total_output_tokens": out,
        "total_tokens": inp + out + thoughts,
    }
    if thoughts:
        result["total_thought_tokens"] = thoughts
    return result


def text_deltas(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": piece} for piece in chunks(text)]


def delays(count: int, first_ms: int, every_ms: int = 45) -> list[int]:
    return authoring.paced_delays(count, first_ms=first_ms, every_ms=every_ms, jitter_ms=17)


def cassette(
    rec: Recorder,
    description: str,
    request: dict[str, Any],
    steps: list[dict[str, Any]],
    usage_: dict[str, Any],
    *,
    previous: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    resource = {k: v for k, v in rec.lifecycle().items() if k != "object"}
    interaction = {
        **resource,
        "status": status,
        "updated": CREATED,
        "steps": steps,
        "usage": usage_,
    }
    if previous:
        interaction["previous_interaction_id"] = (
            "v1_" + hashlib.sha1(previous.encode()).hexdigest()[:24]
        )
    data: dict[str, Any] = {
        "name": rec.name,
        "kind": "interactions",
        "description": description,
        "model": rec.model,
    }
    if previous:
        data["previous"] = previous
    data.update(request=request, events=rec.events, interaction=interaction)
    return data


def text_answer(
    name: str,
    description: str,
    prompt: Any,
    answer: str,
    *,
    first_ms: int,
    previous: str | None = None,
    request: dict[str, Any] | None = None,
    prompt_text: str | None = None,
) -> dict[str, Any]:
    """An interaction that answers with one streamed text step."""
    rec = Recorder(name, TEXT_MODEL)
    rec.start()
    deltas = text_deltas(answer)
    rec.step(0, {"type": "model_output"}, deltas, delays(len(deltas), first_ms))
    use = usage(prompt_text or str(prompt), answer)
    rec.finish(use)
    steps = [{"type": "model_output", "content": [{"type": "text", "text": answer}]}]
    return cassette(rec, description, request or {"input": prompt}, steps, use, previous=previous)


FIRST_ANSWER = (
    "A Fresnel lens bends the light of a small lamp into a narrow, bright beam that ships "
    "can see many miles out at sea. Instead of one thick curved lens it uses rings of "
    "glass prisms, so it stays thin and light enough to turn at the top of a tower. Less "
    "glass also means less light lost inside the lens, which is why lighthouses adopted "
    "it in the nineteenth century."
)

THOUGHT_SUMMARY = (
    "**Adding the travel time**\n\nI start from the departure time, 14:05, and add the "
    "two hours first, which gives 16:05. Then I add the remaining 50 minutes: 16:05 plus "
    "50 minutes is 16:55, still within the same hour."
)
THOUGHTS_ANSWER = (
    "The train arrives at **16:55**: 14:05 plus 2 hours is 16:05, plus 50 minutes is 16:55."
)


def thoughts() -> dict[str, Any]:
    rec = Recorder("interactions_thoughts", TEXT_MODEL)
    rec.start()
    summary = [
        {"type": "thought_summary", "content": {"type": "text", "text": piece}}
        for piece in chunks(THOUGHT_SUMMARY)
    ]
    signature = base64.b64encode(hashlib.sha256(b"interactions_thoughts").digest()).decode()
    rec.step(
        0,
        {"type": "thought"},
        [*summary, {"type": "thought_signature", "signature": signature}],
        delays(len(summary) + 1, 900, 70),
    )
    deltas = text_deltas(THOUGHTS_ANSWER)
    rec.step(1, {"type": "model_output"}, deltas, delays(len(deltas), 260))
    use = usage(THOUGHTS_PROMPT, THOUGHTS_ANSWER, thoughts=186)
    rec.finish(use)
    steps = [
        {
            "type": "thought",
            "signature": signature,
            "summary": [{"type": "text", "text": THOUGHT_SUMMARY}],
        },
        {"type": "model_output", "content": [{"type": "text", "text": THOUGHTS_ANSWER}]},
    ]
    request = {"input": THOUGHTS_PROMPT, "generation_config": {"thinking_summaries": "auto"}}
    return cassette(
        rec,
        "06: thought summaries stream in a thought step before the answer.",
        request,
        steps,
        use,
    )


CALL_ID = "call_" + hashlib.sha1(b"interactions_weather_call").hexdigest()[:12]
WEATHER_ARGS = '{"city": "Lisbon", "unit": "celsius"}'
WEATHER_ANSWER = "It is sunny in Lisbon right now, at 19 °C."


def weather_call() -> dict[str, Any]:
    rec = Recorder("interactions_weather_call", TEXT_MODEL)
    rec.start()
    pieces = ['{"city": "Lis', 'bon", "unit": "cel', 'sius"}']
    assert "".join(pieces) == WEATHER_ARGS
    step = {"type": "function_call", "id": CALL_ID, "name": "get_weather", "arguments": {}}
    rec.step(
        0,
        step,
        [{"type": "arguments_delta", "arguments": p} for p in pieces],
        delays(len(pieces), 640, 30),
    )
    use = usage(WEATHER_PROMPT, WEATHER_ARGS)
    rec.finish(use, status="requires_action")
    steps = [
        {
            "type": "function_call",
            "id": CALL_ID,
            "name": "get_weather",
            "arguments": {"city": "Lisbon", "unit": "celsius"},
        }
    ]
    request = {"input": WEATHER_PROMPT, "tools": [WEATHER_TOOL]}
    return cassette(
        rec,
        "06: a function call whose arguments stream as arguments_delta.",
        request,
        steps,
        use,
        status="requires_action",
    )


def weather_answer() -> dict[str, Any]:
    result = [
        {
            "type": "function_result",
            "call_id": CALL_ID,
            "name": "get_weather",
            "result": WEATHER_RESULT,
        }
    ]
    return text_answer(
        "interactions_weather_answer",
        "06: the model's answer once it has the function's result.",
        result,
        WEATHER_ANSWER,
        first_ms=380,
        previous="interactions_weather_call",
        request={"input": result, "tools": [WEATHER_TOOL]},
        prompt_text=str(WEATHER_RESULT),
    )


def panel(folded: bool) -> str:
    """Draw a 96x72 storyboard panel; return it as base64 PNG."""
    img = Image.new("RGB", (96, 72), (236, 242, 248) if folded else (190, 224, 246))
    draw = ImageDraw.Draw(img)
    if folded:
        draw.rectangle((20, 14, 76, 58), fill=(250, 250, 250), outline=(120, 120, 120))
        draw.line((20, 14, 76, 58), fill=(150, 150, 150))
        draw.line((76, 14, 20, 58), fill=(150, 150, 150))
    else:
        draw.rectangle((0, 48, 96, 72), fill=(70, 130, 180))
        draw.polygon([(22, 44), (74, 44), (62, 54), (34, 54)], fill=(250, 250, 250))
        draw.polygon([(48, 20), (48, 44), (64, 44)], fill=(240, 240, 240), outline=(140, 140, 140))
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


STORY_CAPTIONS = (
    "Panel 1: A square of white paper, creased corner to corner, ready to fold.\n\n",
    "\n\nPanel 2: The finished paper boat floats on a calm blue pond.\n\n",
)


def storyboard() -> dict[str, Any]:
    rec = Recorder("interactions_storyboard", IMAGE_MODEL)
    rec.model = IMAGE_MODEL
    rec.start()
    images = [panel(True), panel(False)]
    deltas: list[dict[str, Any]] = []
    waits: list[int] = []
    content: list[dict[str, Any]] = []
    for caption, image in zip(STORY_CAPTIONS, images, strict=True):
        pieces = text_deltas(caption)
        deltas += [*pieces, {"type": "image", "mime_type": "image/png", "data": image}]
        waits += [*delays(len(pieces), 700 if not waits else 90), 1400]
        content += [
            {"type": "text", "text": caption},
            {"type": "image", "mime_type": "image/png", "data": image},
        ]
    rec.step(0, {"type": "model_output"}, deltas, waits)
    use = usage(STORYBOARD_PROMPT, "".join(STORY_CAPTIONS), extra_out=2 * 1290)
    rec.finish(use)
    request = {"input": STORYBOARD_PROMPT, "response_modalities": ["text", "image"]}
    return cassette(
        rec,
        "06: text and image deltas in one stream (two small PNG panels).",
        request,
        [{"type": "model_output", "content": content}],
        use,
    )


PLANETS = (
    "1. Mercury: the smallest planet and the closest to the Sun.\n"
    "2. Venus: the hottest surface of any planet, around 465 °C.\n"
    "3. Earth: the only planet known to host life.\n"
    "4. Mars: home of Olympus Mons, the tallest volcano in the solar system.\n"
    "5. Jupiter: the largest planet, more than twice as massive as all the others together.\n"
    "6. Saturn: its bright rings are made mostly of ice.\n"
    "7. Uranus: it spins on its side, tilted about 98 degrees.\n"
    "8. Neptune: the fastest winds measured on any planet, over 2,000 km/h."
)


def dropped() -> dict[str, Any]:
    rec = Recorder("interactions_dropped", TEXT_MODEL)
    rec.start()
    deltas = text_deltas(PLANETS)
    rec.add(10, {"event_type": "step.start", "index": 0, "step": {"type": "model_output"}})
    for i, (delta, wait) in enumerate(zip(deltas, delays(len(deltas), 520, 60), strict=True)):
        if i == 6:
            rec.drop(30)  # the connection breaks after six text chunks
        rec.add(wait, {"event_type": "step.delta", "index": 0, "delta": delta})
    rec.add(8, {"event_type": "step.stop", "index": 0})
    use = usage(DROPPED_PROMPT, PLANETS)
    rec.finish(use)
    steps = [{"type": "model_output", "content": [{"type": "text", "text": PLANETS}]}]
    return cassette(
        rec,
        "06: the connection drops after six chunks; get() resumes it.",
        {"input": DROPPED_PROMPT},
        steps,
        use,
    )


CHAT_ANSWERS = (
    "Alfama is a good choice, Ana: its steep, winding streets below the castle are the "
    "oldest part of Lisbon and full of small restaurants and fado houses. In April the "
    "weather is mild, so walking its hills is a pleasure rather than a chore.",
    "Your name is Ana, and you are travelling to Lisbon in April.",
)

WEB_ANSWER = (
    "Before electricity, the keeper climbed the tower at sunset to light an oil lamp, often "
    "burning whale oil and later kerosene, set inside a great glass lens. Through the night "
    "the keeper stood watch in shifts: trimming the wick so it burned without smoke, "
    "polishing soot from the glass, and winding the clockwork that turned the lens every few "
    "hours. At dawn the lamp was put out, and the lens was curtained from the sun."
)


def web_chat() -> dict[str, Any]:
    """The web chat's sample question, for ``quickstart serve --api interactions``."""
    rec = Recorder("interactions_web_chat", TEXT_MODEL)
    rec.start()
    deltas = text_deltas(WEB_ANSWER)
    rec.step(0, {"type": "model_output"}, deltas, delays(len(deltas), 480, 110))
    use = usage(SAMPLE_QUESTION, WEB_ANSWER)
    rec.finish(use)
    steps = [{"type": "model_output", "content": [{"type": "text", "text": WEB_ANSWER}]}]
    return cassette(
        rec,
        "05/web chat: the sample question over the Interactions API (resumable relay).",
        {"input": SAMPLE_QUESTION},
        steps,
        use,
    )


CASSETTES = [
    text_answer(
        "interactions_first_stream",
        "06: the first stream, text deltas printed.",
        FIRST_PROMPT,
        FIRST_ANSWER,
        first_ms=540,
    ),
    text_answer(
        "interactions_event_tour",
        "06: a short answer, every event shown.",
        TOUR_PROMPT,
        "Hello, and welcome aboard!",
        first_ms=420,
    ),
    thoughts(),
    text_answer(
        "interactions_chat_turn1",
        "06: a conversation's first turn.",
        CHAT_PROMPTS[0],
        CHAT_ANSWERS[0],
        first_ms=610,
    ),
    text_answer(
        "interactions_chat_turn2",
        "06: the second turn, by previous_interaction_id.",
        CHAT_PROMPTS[1],
        CHAT_ANSWERS[1],
        first_ms=450,
        previous="interactions_chat_turn1",
    ),
    weather_call(),
    weather_answer(),
    storyboard(),
    dropped(),
    web_chat(),
]


def main() -> None:
    """Write every cassette under assets/cassettes/interactions/."""
    for path in authoring.write_cassettes(OUT, CASSETTES):
        print(f"wrote {path.relative_to(OUT.parent.parent.parent)}")


if __name__ == "__main__":
    main()

"""Write the Interactions API cassettes of notebooks/06_interactions_streaming.ipynb.

Run: ``uv run python scripts/make_interactions_cassettes.py``.

The answers are authored here, not recorded from the live API, in the shapes of the real
stream (``tests/wire/interactions/``, checked by ``tests/test_wire_interactions.py``;
the rules are ``interactions.*`` in ``quickstart_helpers/emulator/_profiles.py``):
``interaction.created`` with ``metadata.usage``, ``interaction.status_update``, then per
step ``step.start``, ``step.delta`` events (running ``metadata.usage`` on the last) and
``step.stop``, and ``interaction.completed`` with ``usage``, ``created``, ``updated`` and
``service_tier``; keys in the captures' order. The text model thinks: its answers open
with a thought step whose signature comes after an empty signature delta. Text is cut
into chunks of uneven length that split words; thought summaries, function call
arguments (``arguments_delta``) and small PNG images (``image`` deltas) stream the same
way. Every event is checked with the SDK's models at write time. The models are the
package's defaults (:mod:`quickstart_helpers.settings`).

The output is deterministic: running the script again rewrites the same files.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
from collections.abc import Collection
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


def interaction_id(name: str) -> str:
    """Return an id of the real form: ``v1_`` and the base64url of two copies of a
    23-character id, each with its protobuf tag (as in the B1 capture)."""
    rid = base64.urlsafe_b64encode(hashlib.sha1(name.encode()).digest()[:17])[:23]
    return "v1_" + base64.urlsafe_b64encode(b"\n\x17" + rid + b"\x12\x17" + rid).decode().rstrip(
        "="
    )


def signature(name: str) -> str:
    """A stand-in thought signature (opaque base64, as the API's)."""
    return base64.b64encode(b"\n\x24\x01" + hashlib.sha512(name.encode()).digest()).decode()


def usage(inp: int, out: int = 0, thoughts: int = 0) -> dict[str, Any]:
    """The API's usage JSON, every key the capture shows, in its order."""
    return {
        "total_tokens": inp + out + thoughts,
        "total_input_tokens": inp,
        "input_tokens_by_modality": [{"modality": "text", "tokens": inp}],
        "total_cached_tokens": 0,
        "total_output_tokens": out,
        "total_tool_use_tokens": 0,
        "total_thought_tokens": thoughts,
    }


class Recorder:
    """Build one interaction's events (key order of the real captures) and its steps.

    Usage rides as running totals (``metadata.usage``) on ``interaction.created`` and on
    the last ``step.delta`` of each step; ``event_id`` (for resuming) sits before
    ``event_type``, where the SDK's models have it.
    """

    def __init__(self, name: str, model: str, prompt: str, thoughts: int = 0) -> None:
        self.name, self.model, self.id = name, model, interaction_id(name)
        self.inp, self.out, self.thoughts = authoring.estimate_tokens(prompt), 0, thoughts
        self.events: list[dict[str, Any]] = []
        self.steps: list[dict[str, Any]] = []
        created = {"id": self.id, "status": "in_progress", "object": "interaction"}
        self.add(120, {"interaction": {**created, "model": model}}, "interaction.created", True)
        status = {"interaction_id": self.id, "status": "in_progress"}
        self.add(15, status, "interaction.status_update")

    def add(self, delay_ms: int, body: dict[str, Any], kind: str, usage_: bool = False) -> None:
        n = len([e for e in self.events if "event" in e])
        token = hashlib.sha1(f"{self.name}:{n}".encode()).hexdigest()[:16]
        event = {**body, "event_id": f"evt_{n:03d}_{token}", "event_type": kind}
        if usage_:  # the thinking comes first: half of it is counted at creation
            thoughts = self.thoughts // 2 if kind == "interaction.created" else self.thoughts
            event["metadata"] = {"usage": usage(self.inp, self.out, thoughts)}
        self.events.append({"delay_ms": delay_ms, "event": event})

    def drop(self, delay_ms: int) -> None:
        self.events.append({"delay_ms": delay_ms, "break": True})

    def step(
        self,
        start: dict[str, Any],
        deltas: list[dict[str, Any]],
        delays: list[int],
        out: int = 0,
        drop_after: int | None = None,
        marks: Collection[int] = (),
    ) -> None:
        """Stream one step: ``step.start``, its deltas (usage on the last and on those in
        ``marks``), ``step.stop``."""
        index = len(self.steps)
        self.add(10, {"index": index, "step": start}, "step.start")
        self.out += out
        for i, (delta, wait) in enumerate(zip(deltas, delays, strict=True)):
            if i == drop_after:
                self.drop(30)
            body = {"index": index, "delta": delta}
            self.add(wait, body, "step.delta", i in marks or i == len(deltas) - 1)
        self.add(8, {"index": index}, "step.stop")

    def thought(self, first_ms: int, summaries: tuple[str, ...] = ()) -> None:
        """A thought step. With summaries, as the B1 capture: each summary delta (one per
        thought) is followed by an empty signature delta, usage rides on the last summary,
        and the last delta carries the signature. Without, as the docs' example: one
        signature delta."""
        sig = signature(self.name)
        deltas: list[dict[str, Any]] = []
        for text in summaries:
            deltas.append({"content": {"text": text, "type": "text"}, "type": "thought_summary"})
            deltas.append({"signature": "", "type": "thought_signature"})
        deltas.append({"signature": sig, "type": "thought_signature"})
        marks = {len(deltas) - 3} if summaries else set()
        self.step({"type": "thought"}, deltas, delays(len(deltas), first_ms, 70), marks=marks)
        step: dict[str, Any] = {"type": "thought", "signature": sig}
        if summaries:
            step["summary"] = [{"type": "text", "text": text} for text in summaries]
        self.steps.append(step)

    def text(self, answer: str, first_ms: int, drop_after: int | None = None) -> None:
        deltas = [{"text": piece, "type": "text"} for piece in chunks(answer)]
        waits = delays(len(deltas), first_ms)
        self.step({"type": "model_output"}, deltas, waits, tokens(answer), drop_after)
        self.steps.append({"type": "model_output", "content": [{"type": "text", "text": answer}]})

    def cassette(
        self,
        description: str,
        request: dict[str, Any],
        *,
        previous: str | None = None,
        status: str = "completed",
    ) -> dict[str, Any]:
        """Finish the stream (``interaction.completed``) and return the cassette."""
        if status != "completed":
            self.add(6, {"interaction_id": self.id, "status": status}, "interaction.status_update")
        final = usage(self.inp, self.out, self.thoughts)
        done = {"id": self.id, "status": status, "usage": final, "created": CREATED}
        done |= {"updated": CREATED, "service_tier": "standard"}
        body = {"interaction": {**done, "object": "interaction", "model": self.model}}
        self.add(12, body, "interaction.completed")
        interaction = {**done, "model": self.model}
        if previous:
            interaction["previous_interaction_id"] = interaction_id(previous)
        interaction["steps"] = self.steps
        data: dict[str, Any] = {"name": self.name, "kind": "interactions"}
        data |= {"description": description, "model": self.model}
        if previous:
            data["previous"] = previous
        return data | {"request": request, "events": self.events, "interaction": interaction}


def tokens(text: str) -> int:
    return authoring.estimate_tokens(text)


def delays(count: int, first_ms: int, every_ms: int = 45) -> list[int]:
    return authoring.paced_delays(count, first_ms=first_ms, every_ms=every_ms, jitter_ms=17)


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
    """A thinking model's answer: a thought step (signature only), then the text."""
    thinking = authoring.thinking_tokens(first_ms)
    rec = Recorder(name, TEXT_MODEL, prompt_text or str(prompt), thinking)
    rec.thought(first_ms)
    rec.text(answer, 60)
    return rec.cassette(description, request or {"input": prompt}, previous=previous)


FIRST_ANSWER = (
    "A Fresnel lens bends the light of a small lamp into a narrow, bright beam that ships "
    "can see many miles out at sea. Instead of one thick curved lens it uses rings of "
    "glass prisms, so it stays thin and light enough to turn at the top of a tower. Less "
    "glass also means less light lost inside the lens, which is why lighthouses adopted "
    "it in the nineteenth century."
)

THOUGHT_SUMMARIES = (
    "**Adding the travel time**\n\nI start from the departure time, 14:05, and add the two "
    "hours first, which gives 16:05.\n\n\n",
    "**Adding the minutes**\n\nThen I add the remaining 50 minutes: 16:05 plus 50 minutes "
    "is 16:55, still within the same hour.\n\n\n",
)
THOUGHTS_ANSWER = (
    "The train arrives at **16:55**: 14:05 plus 2 hours is 16:05, plus 50 minutes is 16:55."
)


def thoughts() -> dict[str, Any]:
    rec = Recorder("interactions_thoughts", TEXT_MODEL, THOUGHTS_PROMPT, thoughts=186)
    rec.thought(900, THOUGHT_SUMMARIES)
    rec.text(THOUGHTS_ANSWER, 260)
    request = {"input": THOUGHTS_PROMPT, "generation_config": {"thinking_summaries": "auto"}}
    description = "06: thought summaries stream in a thought step before the answer."
    return rec.cassette(description, request)


CALL_ID = "call_" + hashlib.sha1(b"interactions_weather_call").hexdigest()[:12]
WEATHER_ARGS = '{"city": "Lisbon", "unit": "celsius"}'
WEATHER_ANSWER = "It is sunny in Lisbon right now, at 19 °C."


def weather_call() -> dict[str, Any]:
    """A function call: id and name on ``step.start`` (as the docs show it, without a
    thought step), the arguments in ``arguments_delta`` pieces."""
    rec = Recorder("interactions_weather_call", TEXT_MODEL, WEATHER_PROMPT)
    pieces = ['{"city": "Lis', 'bon", "unit": "cel', 'sius"}']
    assert "".join(pieces) == WEATHER_ARGS
    start = {"type": "function_call", "id": CALL_ID, "name": "get_weather", "arguments": {}}
    deltas = [{"arguments": p, "type": "arguments_delta"} for p in pieces]
    rec.step(start, deltas, delays(len(pieces), 640, 30), tokens(WEATHER_ARGS))
    rec.steps.append({**start, "arguments": json.loads(WEATHER_ARGS)})
    request = {"input": WEATHER_PROMPT, "tools": [WEATHER_TOOL]}
    description = "06: a function call whose arguments stream as arguments_delta."
    return rec.cassette(description, request, status="requires_action")


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
    rec = Recorder("interactions_storyboard", IMAGE_MODEL, STORYBOARD_PROMPT)
    deltas: list[dict[str, Any]] = []
    waits: list[int] = []
    content: list[dict[str, Any]] = []
    for caption, image in zip(STORY_CAPTIONS, [panel(True), panel(False)], strict=True):
        pieces = [{"text": piece, "type": "text"} for piece in chunks(caption)]
        deltas += [*pieces, {"data": image, "mime_type": "image/png", "type": "image"}]
        waits += [*delays(len(pieces), 700 if not waits else 90), 1400]
        content += [
            {"type": "text", "text": caption},
            {"type": "image", "mime_type": "image/png", "data": image},
        ]
    out = tokens("".join(STORY_CAPTIONS)) + 2 * 1290
    rec.step({"type": "model_output"}, deltas, waits, out)
    rec.steps.append({"type": "model_output", "content": content})
    request = {"input": STORYBOARD_PROMPT, "response_modalities": ["text", "image"]}
    return rec.cassette("06: text and image deltas in one stream (two small PNG panels).", request)


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
    rec = Recorder("interactions_dropped", TEXT_MODEL, DROPPED_PROMPT, thoughts=41)
    rec.thought(520)
    rec.text(PLANETS, 60, drop_after=6)  # the connection breaks after six text chunks
    description = "06: the connection drops after six chunks; get() resumes it."
    return rec.cassette(description, {"input": DROPPED_PROMPT})


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
    rec = Recorder("interactions_web_chat", TEXT_MODEL, SAMPLE_QUESTION, thoughts=31)
    rec.thought(480)
    rec.text(WEB_ANSWER, 110)
    description = "05/web chat: the sample question over the Interactions API (resumable relay)."
    return rec.cassette(description, {"input": SAMPLE_QUESTION})


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

"""The interactions family: notebook 06's Interactions API streams
(``recordings/interactions.toml``, whose opening comment gives the rules applied here)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Collection, Sequence
from typing import Any

import _authoring as a
from PIL import Image, ImageDraw

from quickstart_helpers import settings
from quickstart_helpers.emulator import FORMAT, InteractionsCassette
from quickstart_helpers.emulator._cassette import InteractionEvent
from quickstart_helpers.web import SAMPLE_QUESTION

IMAGE_TOKENS = 1290  # billed per generated image of up to 1024x1024 pixels


def interaction_id(name: str) -> str:
    """An id of the real form: ``v1_`` and the base64url of two copies of a 23-character
    id, each with its protobuf tag (as in the B1 capture)."""
    rid = base64.urlsafe_b64encode(hashlib.sha1(name.encode()).digest()[:17])[:23]
    return "v1_" + base64.urlsafe_b64encode(b"\n\x17" + rid + b"\x12\x17" + rid).decode().rstrip(
        "="
    )


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


def panel(folded: bool) -> str:
    """A 96x72 storyboard panel (the paper boat folded, or floating) as base64 PNG."""
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


class Stream:
    """One interaction's events and steps, built step by step."""

    def __init__(self, family: dict[str, Any], spec: dict[str, Any], prompt: str) -> None:
        self.family, self.name, self.id = family, spec["name"], interaction_id(spec["name"])
        self.model = getattr(settings, spec.get("model", family["model"]))
        thought = next((s for s in spec["step"] if s["type"] == "thought"), None)
        default = a.thinking_tokens(thought["first_ms"]) if thought else 0
        self.inp, self.out = a.estimate_tokens(prompt), 0
        self.thoughts = spec.get("thoughts", default)
        self.events: list[InteractionEvent] = []
        self.steps: list[dict[str, Any]] = []
        created = {"id": self.id, "status": "in_progress", "object": "interaction"}
        self.add(
            120, {"interaction": {**created, "model": self.model}}, "interaction.created", True
        )
        self.add(
            15, {"interaction_id": self.id, "status": "in_progress"}, "interaction.status_update"
        )

    def add(self, delay_ms: int, body: dict[str, Any], kind: str, with_usage: bool = False) -> None:
        """One event: ``event_id`` (to resume) before ``event_type``, as the SDK has them."""
        n = len([e for e in self.events if e.event])
        token = hashlib.sha1(f"{self.name}:{n}".encode()).hexdigest()[:16]
        event = {**body, "event_id": f"evt_{n:03d}_{token}", "event_type": kind}
        if with_usage:  # the thinking comes first: half of it is counted at creation
            thoughts = self.thoughts // 2 if kind == "interaction.created" else self.thoughts
            event["metadata"] = {"usage": usage(self.inp, self.out, thoughts)}
        self.events.append(InteractionEvent(delay_ms=delay_ms, event=event))

    def delays(self, count: int, first_ms: int, every_ms: int = 45) -> list[int]:
        return a.paced_delays(count, first_ms=first_ms, every_ms=every_ms, jitter_ms=17)

    def pieces(self, text: str) -> list[str]:
        """``text`` cut into chunks of the family's ``cuts`` lengths (cycled)."""
        cuts, out, i = self.family["cuts"], [], 0
        while i < len(text):
            size = cuts[len(out) % len(cuts)]
            out.append(text[i : i + size])
            i += size
        return out

    def step(
        self,
        start: dict[str, Any],
        deltas: list[dict[str, Any]],
        delays: list[int],
        out: int = 0,
        drop_after: int | None = None,
        marks: Collection[int] = (),
    ) -> None:
        """``step.start``, the deltas (usage on the last and those in ``marks``), ``step.stop``."""
        index = len(self.steps)
        self.add(10, {"index": index, "step": start}, "step.start")
        self.out += out
        for i, (delta, wait) in enumerate(zip(deltas, delays, strict=True)):
            if i == drop_after:
                self.events.append(InteractionEvent(delay_ms=30, break_=True))
            body = {"index": index, "delta": delta}
            self.add(wait, body, "step.delta", i in marks or i == len(deltas) - 1)
        self.add(8, {"index": index}, "step.stop")

    def thought(self, first_ms: int, summaries: Sequence[str] = ()) -> None:
        sig = base64.b64encode(b"\n\x24\x01" + hashlib.sha512(self.name.encode()).digest()).decode()
        deltas: list[dict[str, Any]] = []
        for text in summaries:
            deltas.append({"content": {"text": text, "type": "text"}, "type": "thought_summary"})
            deltas.append({"signature": "", "type": "thought_signature"})
        deltas.append({"signature": sig, "type": "thought_signature"})
        marks = {len(deltas) - 3} if summaries else set()
        self.step({"type": "thought"}, deltas, self.delays(len(deltas), first_ms, 70), marks=marks)
        step: dict[str, Any] = {"type": "thought", "signature": sig}
        if summaries:
            step["summary"] = [{"type": "text", "text": text} for text in summaries]
        self.steps.append(step)

    def text(self, answer: str, first_ms: int, drop_after: int | None = None) -> None:
        deltas = [{"text": piece, "type": "text"} for piece in self.pieces(answer)]
        waits = self.delays(len(deltas), first_ms)
        self.step({"type": "model_output"}, deltas, waits, a.estimate_tokens(answer), drop_after)
        self.steps.append({"type": "model_output", "content": [{"type": "text", "text": answer}]})

    def call(self, first_ms: int, id: str, name: str, arguments: list[str]) -> None:
        start = {"type": "function_call", "id": id, "name": name, "arguments": {}}
        deltas = [{"arguments": p, "type": "arguments_delta"} for p in arguments]
        text = "".join(arguments)
        self.step(start, deltas, self.delays(len(deltas), first_ms, 30), a.estimate_tokens(text))
        self.steps.append({**start, "arguments": json.loads(text)})

    def images(self, first_ms: int, captions: list[str], folded: list[bool]) -> None:
        deltas: list[dict[str, Any]] = []
        waits: list[int] = []
        content: list[dict[str, Any]] = []
        for caption, image in zip(captions, [panel(f) for f in folded], strict=True):
            pieces = [{"text": piece, "type": "text"} for piece in self.pieces(caption)]
            deltas += [*pieces, {"data": image, "mime_type": "image/png", "type": "image"}]
            waits += [*self.delays(len(pieces), 90 if waits else first_ms), 1400]
            content += [
                {"type": "text", "text": caption},
                {"type": "image", "mime_type": "image/png", "data": image},
            ]
        out = a.estimate_tokens("".join(captions)) + len(folded) * IMAGE_TOKENS
        self.step({"type": "model_output"}, deltas, waits, out)
        self.steps.append({"type": "model_output", "content": content})

    def cassette(self, spec: dict[str, Any], request: dict[str, Any]) -> InteractionsCassette:
        """Finish the stream (``interaction.completed``) and return the cassette."""
        status = spec.get("status", "completed")
        if status != "completed":
            self.add(6, {"interaction_id": self.id, "status": status}, "interaction.status_update")
        created = self.family["created"]
        done = {"id": self.id, "status": status, "usage": usage(self.inp, self.out, self.thoughts)}
        done |= {"created": created, "updated": created, "service_tier": "standard"}
        body = {"interaction": {**done, "object": "interaction", "model": self.model}}
        self.add(12, body, "interaction.completed")
        interaction = {**done, "model": self.model}
        extra = {}
        if "previous" in spec:
            interaction["previous_interaction_id"] = interaction_id(spec["previous"])
            extra["previous"] = spec["previous"]
        return InteractionsCassette(
            format=FORMAT,
            name=self.name,
            kind="interactions",
            description=spec["description"],
            model=self.model,
            **extra,
            request=request,
            events=self.events,
            interaction=interaction | {"steps": self.steps},
        )


def outputs(family: dict[str, Any]) -> list[a.Output]:
    """Every cassette of the interactions family."""
    out = []
    for spec in family["cassette"]:
        given = SAMPLE_QUESTION if spec["input"] == "$SAMPLE_QUESTION" else spec["input"]
        stream = Stream(family, spec, spec.get("prompt_text", given))
        for step in spec["step"]:
            getattr(stream, step["type"])(**{k: v for k, v in step.items() if k != "type"})
        request = {"input": given, **spec.get("request", {})}
        if "tools" in spec:
            request["tools"] = [family["tools"][name] for name in spec["tools"]]
        out.append(a.cassette_file(family["folder"], stream.cassette(spec, request)))
    return out

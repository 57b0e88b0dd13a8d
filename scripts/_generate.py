"""The ``generate`` families: text, chat, web (``recordings/{text,chat,web}.toml``) and the
faults of notebook 07 (``recordings/faults.toml``). The rules each file's data follows
are in its opening comment; this is the code that applies them."""

from __future__ import annotations

from typing import Any

import _authoring as a

from quickstart_helpers import settings
from quickstart_helpers.emulator import Chunk, GenerateCassette
from quickstart_helpers.emulator._cassette import SplitFault
from quickstart_helpers.emulator._http import sse_event
from quickstart_helpers.retry import CONTINUE_PROMPT


def _chunks(turn: dict[str, Any], seed: str) -> list[str]:
    return list(turn["chunks"]) if "chunks" in turn else a.split_text(turn["answer"], seed=seed)


def _answer(turn: dict[str, Any], seed: str) -> str:
    return "".join(_chunks(turn, seed))


def _delays(spec: dict[str, Any], count: int) -> list[int]:
    if "delays" in spec:
        return list(spec["delays"])
    if "paced" in spec:
        return a.paced_delays(count, **spec["paced"])
    ranges = {k: spec[k] for k in ("first_ms", "gap_ms") if k in spec}
    return a.stream_delays(count, seed=spec["name"], **ranges)


def conversation(
    family: dict[str, Any], spec: dict[str, Any], faults: list[dict[str, Any]] | None = None
) -> GenerateCassette:
    """One answer to ``spec``'s turn after its ``history`` (see chat.toml's comment)."""
    turns, name = family.get("turns", {}), spec["name"]
    turn = turns[spec["turn"]] if "turn" in spec else spec
    earlier = [turns[key] for key in spec.get("history", [])]

    def seed(t: dict[str, Any]) -> str:
        rule = family.get("seed", "name")
        return spec.get("seed") or (t["prompt"] if rule == "prompt" else name)

    model = getattr(settings, spec.get("model", family["model"]))
    system = family.get("systems", {}).get(spec.get("system"))
    contents = []
    for t in earlier:
        contents.append(a.text_content("user", t["prompt"]))
        split = spec.get("form") == "split"
        answers = _chunks(t, seed(t)) if split else [_answer(t, seed(t))]
        contents += [a.text_content("model", text) for text in answers]
    contents.append(a.text_content("user", turn["prompt"]))
    if family.get("prompt_tokens") == "per_content":
        prompt_tokens = sum(a.estimate_tokens(c["parts"][0]["text"]) for c in contents)
    else:
        history = [f"{t['prompt']} {_answer(t, seed(t))}" for t in earlier]
        sent = " ".join([*([system] if system else []), *history, turn["prompt"]])
        prompt_tokens = a.estimate_tokens(sent) + 4 * len(earlier)
    chunks = _chunks(turn, seed(turn))
    answer = "".join(chunks)
    if "break_after" in spec:
        chunks = chunks[: spec["break_after"]]
    if family.get("answer_tokens") == "sent":
        answer = "".join(chunks)
    thoughts = [[{"text": t, "thought": True}] for t in spec.get("thought_chunks", [])]
    delays = _delays(spec, len(thoughts) + len(chunks))
    out = a.stream_chunks(
        [*thoughts, *chunks],
        delays,
        name=name,
        model=model,
        prompt_tokens=prompt_tokens,
        answer_tokens=a.estimate_tokens(answer),
        thoughts=spec.get("thoughts", a.thinking_tokens(delays[0])),
        prompt_details=family.get("prompt_details", True),
        complete="break_after" not in spec and "final" not in spec,
        finish_reason=spec.get("finish_reason", "STOP") if spec.get("finish", True) else None,
    )
    if "break_after" in spec:
        out.append(Chunk(delay_ms=spec["break_ms"], break_=True))
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": [{"text": system}]}
    if "config" in spec:
        request["generationConfig"] = spec["config"]
    extra = {"faults": faults} if faults else {}
    return a.generate_cassette(name, spec["description"], model, request, out, **extra)


def family_outputs(family: dict[str, Any]) -> list[a.Output]:
    """Every cassette of a text, chat or web family."""
    return [
        a.cassette_file(spec.get("folder", family["folder"]), conversation(family, spec))
        for spec in family["cassette"]
    ]


def _fill(value: Any, model: str) -> Any:
    """``value`` with every ``"$model"`` string replaced by ``model``."""
    if isinstance(value, dict):
        return {k: _fill(v, model) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, model) for v in value]
    return model if value == "$model" else value


def break_point(pieces: list[str]) -> int:
    """Chunks a broken stream delivers: up to the first boundary past the middle of the
    answer that falls inside a word (a partial answer ends mid-word, as a live one does).

    Raises:
        ValueError: No boundary past the middle falls inside a word.
    """
    text, end = "".join(pieces), 0
    for count, piece in enumerate(pieces[:-1], 1):
        end += len(piece)
        if end >= len(text) // 2 and text[end - 1].isalpha() and text[end].isalpha():
            return count
    raise ValueError(f"No chunk boundary inside a word past the middle of {text[:40]!r}...")


def _continued(spec: dict[str, Any], model: str, after: int) -> GenerateCassette:
    """The continue request's answer after ``spec``'s stream broke: exactly the rest."""
    pieces = a.split_text(spec["answer"], seed=spec["name"])
    partial, name = "".join(pieces[:after]), f"{spec['name']}_continued"
    rest = a.split_text(spec["answer"][len(partial) :], seed=name)
    delays = a.stream_delays(len(rest), seed=name)
    chunks = a.stream_chunks(
        rest,
        delays,
        name=name,
        model=model,
        prompt_tokens=a.estimate_tokens(CONTINUE_PROMPT),
        answer_tokens=a.estimate_tokens("".join(rest)),
        thoughts=a.thinking_tokens(delays[0]),
    )
    turns = [("user", spec["prompt"]), ("model", partial), ("user", CONTINUE_PROMPT)]
    request = {"contents": [a.text_content(role, text) for role, text in turns]}
    description = f"07_errors_and_retries: the continue request after {spec['name']}."
    return a.generate_cassette(name, description, model, request, chunks)


def fault_outputs(family: dict[str, Any]) -> list[a.Output]:
    """Every ``generate`` cassette of the faults family (see faults.toml's comment)."""
    model = getattr(settings, family["model"])
    errors = _fill(family["errors"], model)
    out = []
    for spec in family["cassette"]:
        faults = [
            {**f, "error": errors[f["error"]]} if "error" in f else f
            for f in spec.get("faults", [])
        ]
        name, more = spec["name"], []
        if spec.get("resume"):
            after = break_point(a.split_text(spec["answer"], seed=name))
            faults = [{**f, "after": after} for f in faults]
            spec = {**spec, "description": spec["description"].format(after=after)}
            more = [_continued(spec, model, after)]
        if "blocked" in spec:
            usage = a.usage_metadata(a.estimate_tokens(spec["prompt"]))
            body = a.response(name, model, None, usage, promptFeedback=spec["blocked"])
            request = {"contents": [a.text_content("user", spec["prompt"])]}
            chunks = [Chunk(delay_ms=spec["delays"][0], response=body)]
            cassette = a.generate_cassette(name, spec["description"], model, request, chunks)
        else:
            cassette = conversation(family, spec, faults)
        chunks = cassette.chunks
        if "final" in spec:
            last = chunks[-1].response["usageMetadata"]  # type: ignore[index]
            usage = a.usage_metadata(
                last["promptTokenCount"],
                a.estimate_tokens(spec["answer"]),
                thoughts=last.get("thoughtsTokenCount", 0),
            )
            final = a.response(name, model, dict(spec["final"]), usage)
            chunks.append(Chunk(delay_ms=120, response=final))
        if "split_at" in spec:
            cuts: dict[int, list[int]] = {}
            for character, inside in spec["split_at"]:
                index = next(i for i, c in enumerate(chunks) if character in _text(c))
                event = sse_event(chunks[index].response)
                cuts.setdefault(index, []).append(event.index(character.encode()) + inside)
            splits = [
                SplitFault(fault="split", chunk=i, at=sorted(at)) for i, at in sorted(cuts.items())
            ]
            cassette = a.generate_cassette(
                name, spec["description"], model, cassette.request, chunks, faults=splits
            )
        out += [a.cassette_file(family["folder"], c) for c in [cassette, *more]]
    return out


def _text(chunk: Chunk) -> str:
    parts = chunk.response["candidates"][0]["content"]["parts"]  # type: ignore[index]
    return "".join(p.get("text", "") for p in parts)


def openai_outputs(family: dict[str, Any]) -> list[a.Output]:
    """Every cassette of the openai family (see openai.toml's comment)."""
    model, out = getattr(settings, family["model"]), []
    messages = [{"role": "system", "content": family["system"]}]
    for number, turn in enumerate(family["turns"], 1):
        name, pieces = f"{family['name']}_{number}", _chunks(turn, turn["prompt"])
        messages.append({"role": "user", "content": turn["prompt"]})
        delays = a.stream_delays(len(pieces), seed=name)
        prompt = a.estimate_tokens(" ".join(m["content"] for m in messages))
        answer = a.estimate_tokens(turn["answer"])
        total = prompt + answer + a.thinking_tokens(delays[0])
        usage = {"completion_tokens": answer, "prompt_tokens": prompt, "total_tokens": total}
        ids, chunks = {"created": family["created"], "id": a.response_id(name), "model": model}, []
        for i, (piece, delay) in enumerate(zip(pieces, delays, strict=True)):
            end = {"finish_reason": "stop"} if i == len(pieces) - 1 else {}
            choice = {"delta": {"content": piece, "role": "assistant"}, **end, "index": 0}
            body = {"choices": [choice], **ids, "object": "chat.completion.chunk"}
            chunks.append(Chunk(delay_ms=delay, response=body | ({"usage": usage} if end else {})))
        request = {"messages": list(messages), "stream": True}
        request["stream_options"] = {"include_usage": True}
        description = f"08_openai_compatible_streaming: turn {number} of the chat with Marlo."
        cassette = a.generate_cassette(name, description, model, request, chunks, kind="openai")
        out.append(a.cassette_file(family["folder"], cassette))
        messages.append({"role": "assistant", "content": "".join(pieces)})
    return out

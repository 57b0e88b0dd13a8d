"""Matching requests to recordings (equal keys: the fields that select a recording as
canonical JSON, camelCase or snake_case), and the "no recording" 404 naming the fields in
which a request differs from the nearest recording."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ._cassette import AnyCassette, CountTokensCassette
from ._protocol import RECORD_COMMAND, bare_model, short, to_json

T = TypeVar("T")

#: Keys whose values are user data (function arguments, schemas): left as they are.
_OPAQUE = frozenset({"args", "response", "parameters", "parametersJsonSchema", "responseSchema"})
#: Characters of each prompt the closest-cassette hint compares: a long one costs no more.
HINT_CHARS = 2000


def _camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m[1].upper(), name)


def _camel_keys(value: Any) -> Any:
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    if not isinstance(value, dict):
        return value
    named = {_camel(str(k)) if "_" in str(k) else k: v for k, v in value.items()}
    return {k: v if k in _OPAQUE else _camel_keys(v) for k, v in named.items()}


def _digest(data: Any) -> str:
    return hashlib.sha256(str(data).encode()).hexdigest()


def _key(fields: dict[str, Any]) -> str:
    return to_json(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _normal_part(part: dict[str, Any]) -> dict[str, Any] | None:
    """A part as it selects a recording (None: it does not; thoughts, ...); data by hash."""
    if "text" in part and not part.get("thought"):
        return {"text": str(part["text"])}
    if isinstance(data := part.get("inlineData"), dict):
        return {"inlineData": [data.get("mimeType"), _digest(data.get("data") or "")]}
    if isinstance(data := part.get("fileData"), dict):
        return {"fileData": [data.get("mimeType"), data.get("fileUri")]}
    for field, arguments in (("functionCall", "args"), ("functionResponse", "response")):
        if isinstance(data := part.get(field), dict):
            return {field: [data.get("name"), data.get(arguments) or {}]}
    return None


def normalize_contents(contents: Any) -> list[dict[str, Any]]:
    """Reduce wire ``contents`` (list, dict or None) to one ``{"role", "parts"}`` per run of
    a role, adjacent texts joined (SDK chats send an answer back one content per chunk).
    Time linear in the size of ``contents``."""
    return _normalize(_camel_keys(contents))


def _normalize(contents: Any) -> list[dict[str, Any]]:
    """:func:`normalize_contents` of ``contents`` whose keys are camelCase already."""
    result: list[dict[str, Any]] = []
    for content in [contents] if isinstance(contents, dict) else contents or []:
        if not isinstance(content, dict):
            continue
        given = content.get("parts")
        given = [given] if isinstance(given, dict) else given if isinstance(given, list) else []
        role = str(content.get("role") or "user").lower()
        if not result or result[-1]["role"] != role:
            result.append({"role": role, "parts": []})
        parts = result[-1]["parts"]
        for normal in (_normal_part(p) for p in given if isinstance(p, dict)):
            if normal and "text" in normal and parts and "texts" in parts[-1]:
                parts[-1]["texts"].append(normal["text"])  # joined once, below
            elif normal:
                parts.append({"texts": [normal["text"]]} if "text" in normal else normal)
    for content in result:
        joined = [{"text": "".join(p["texts"])} if "texts" in p else p for p in content["parts"]]
        content["parts"] = joined
    return result


def prompt_text(contents: Any) -> str:
    """Return the text of the last user turn in ``contents`` (for messages)."""
    for content in reversed(normalize_contents(contents)):
        if content["role"] == "user":
            return " ".join(p["text"] for p in content["parts"] if "text" in p)
    return ""


def _modalities(given: Any, default: str) -> Any:
    if not isinstance(given, list):
        return given
    case = str.upper if default.isupper() else str.lower
    return sorted({case(str(m)) for m in given} or {default})


def request_fields(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """Return the fields that select a ``generateContent`` request's recording: the
    generation config's ``thinkingConfig`` (it changes the parts) and modalities (a set;
    none: ``TEXT``) count, no other setting (temperature, ...)."""
    body = _camel_keys(body if isinstance(body, dict) else {})
    config = body.get("generationConfig") if isinstance(body.get("generationConfig"), dict) else {}
    instruction, contents = body.get("systemInstruction"), _normalize(body.get("contents"))
    fields = {
        "model": bare_model(model),
        "history": contents[:-1],
        "prompt": contents[-1] if contents else None,
        "systemInstruction": _normalize([instruction])[0]["parts"] if instruction else [],
        "tools": body.get("tools") or [],
        "toolConfig": body.get("toolConfig") or {},
        "responseModalities": _modalities(config.get("responseModalities") or [], "TEXT"),
    }
    if isinstance(config.get("thinkingConfig"), dict) and config["thinkingConfig"]:
        fields["thinkingConfig"] = config["thinkingConfig"]
    return fields


def request_key(model: str, body: dict[str, Any]) -> str:
    return _key(request_fields(model, body))


def interactions_fields(model: str, body: dict[str, Any], previous: str | None) -> dict[str, Any]:
    """Return the fields that select an ``interactions.create`` request's recording
    (``previous``: the cassette ``previous_interaction_id`` names; ``data`` by hash)."""
    body = body if isinstance(body, dict) else {}
    given = body.get("input")
    items = [given] if isinstance(given, str | dict) else given or []
    items = [{"type": "text", "text": i} if isinstance(i, str) else i for i in items]

    def digested(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _digest(v) if k == "data" else digested(v) for k, v in value.items()}
        return [digested(v) for v in value] if isinstance(value, list) else value

    return {
        "model": bare_model(model),
        "previous": previous,
        "input": digested(items),
        "system_instruction": body.get("system_instruction") or "",
        "tools": body.get("tools") or [],
        "response_format": body.get("response_format"),
        "response_modalities": _modalities(body.get("response_modalities") or [], "text"),
    }


def openai_fields(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """Return the fields that select a chat completion's recording: the model, the messages
    (keys set to null left out), ``tools``, ``response_format`` and ``reasoning_effort``."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    fields = {k: body.get(k) for k in ("tools", "response_format", "reasoning_effort")}
    sent = [{k: v for k, v in m.items() if v is not None} for m in messages]
    return {"model": bare_model(model), "messages": sent, **fields}


def key_of(kind: str, model: str, body: dict[str, Any], previous: str | None = None) -> str:
    """Return the key (kind first) of a request of cassette ``kind`` (:data:`SELECTS`)."""
    return f"{kind} " + _key(SELECTS[kind][0](model, body, previous))


def last_message(body: dict[str, Any]) -> str:
    """Return the text of a chat completion body's last message (for messages)."""
    content = ([{}, *(body.get("messages") or [])][-1] or {}).get("content") or ""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def input_text(body: dict[str, Any]) -> str:
    """Return the text of an ``interactions.create`` body's input (for messages)."""
    items = [i for i in interactions_fields("", body, None)["input"] if isinstance(i, dict)]
    return " ".join(str(i.get("text") or f"[{i.get('type')}]") for i in items)


def count_request(body: Any) -> dict[str, Any]:
    """Return the generate request a ``countTokens`` body counts (its ``contents`` or
    ``generateContentRequest``)."""
    body = body if isinstance(body, dict) else {}
    inner = body.get("generateContentRequest") or body.get("generate_content_request")
    return inner if isinstance(inner, dict) else {"contents": body.get("contents")}


#: The request fields that decide a token count.
_COUNTED = ("contents", "systemInstruction", "system_instruction", "tools", "toolConfig")


def count_key(model: str, request: dict[str, Any]) -> str:
    """Return the key of a token count: :func:`request_key` of the counted fields only."""
    return request_key(model, {k: v for k, v in request.items() if k in _COUNTED})


def cassette_key(cassette: AnyCassette) -> str | None:
    """Return the key (kind first) of the request a cassette answers (None: several)."""
    if isinstance(cassette, CountTokensCassette):
        return "count_tokens " + count_key(cassette.model, count_request(cassette.request))
    if cassette.kind in SELECTS:  # generate, interactions, openai
        earlier = getattr(cassette, "previous", None)
        return key_of(cassette.kind, cassette.model, cassette.request, earlier)  # type: ignore[union-attr]
    return None


def closest_text(wanted: str, texts: Sequence[str]) -> int | None:
    """Return the index of the text most like ``wanted`` (as :func:`nearest`), or None."""
    return nearest({}, wanted, [(i, {}, text) for i, text in enumerate(texts)])


def differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    return [name for name in {**recorded, **wanted} if recorded.get(name) != wanted.get(name)]


def nearest(wanted: dict, text: str, candidates: Sequence[tuple[T, dict, str]]) -> T | None:
    """Return the ``item`` of the ``(item, fields, text)`` differing from ``wanted`` in the
    fewest fields, then with the text most like ``text`` (:data:`HINT_CHARS`), or None."""

    def rank(c: tuple[T, dict[str, Any], str]) -> tuple[int, float]:
        likeness = difflib.SequenceMatcher(None, text[:HINT_CHARS], c[2][:HINT_CHARS]).ratio()
        return len(differences(c[1], wanted)), -likeness

    return min(candidates, key=rank, default=(None, {}, ""))[0]


def _label(name: str) -> str:
    words = re.sub(r"([A-Z])", r" \1", name).replace("_", " ").lower()
    if name in ("thinkingConfig", "responseModalities"):
        return f"the generation config's {words}"
    more = {"prompt": " (the last turn)", "history": " (the turns before the prompt)"}
    return f"the {words}{more.get(name, '')}" + (" interaction" if name == "previous" else "")


def _show(name: str, value: Any) -> str:
    if value in (None, "", [], {}):
        return "none"
    if name == "history":
        return f"{len(value)} turn{'s' * (len(value) != 1)}"
    parts = value.get("parts", []) if isinstance(value, dict) and "role" in value else value
    if isinstance(parts, list) and all(isinstance(p, dict) and "text" in p for p in parts):
        value = " ".join(str(p["text"]) for p in parts)
    if isinstance(value, str):
        return repr(short(value))
    return short(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _differs(cassette: AnyCassette, recorded: dict[str, Any], wanted: dict[str, Any]) -> str:
    where = cassette.path.name if cassette.path else "in memory"
    fields = [
        f"{_label(n)} (recorded: {_show(n, recorded.get(n))}; sent: {_show(n, wanted.get(n))})"
        for n in differences(recorded, wanted)
    ]
    return (
        f"The closest cassette is {cassette.name!r} ({where}); this request differs from it "
        f"in {', '.join(fields) or 'nothing that selects a recording'}."
    )


#: Per cassette kind: the fields that select a request's recording (from the model, body and,
#: for an interaction, the cassette ``previous_interaction_id`` names) and the text a 404 quotes.
SELECTS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "generate": (lambda m, b, _: request_fields(m, b), lambda b: prompt_text(b.get("contents"))),
    "interactions": (interactions_fields, input_text),
    "openai": (lambda m, b, _: openai_fields(m, b), last_message),
}
_RECORD = (
    f"record your request with {RECORD_COMMAND} and list DIR in QUICKSTART_CASSETTES "
    "(see docs/recording.md)"
)
_WRITE = (
    "write an interactions cassette for yours in a folder listed in QUICKSTART_CASSETTES (see "
    "docs/recording.md; record mode does not record the Interactions API)"
)


def no_recording(kind: str, model: str, body: dict, closest: Any, previous: Any = None) -> str:
    """Return the 404 message for an unrecorded request of cassette ``kind`` (``closest``: the
    nearest recording, None, or why none was searched for; ``previous``: as :func:`key_of`)."""
    fields, text = SELECTS[kind]
    hint = f"There is no {'interactions ' * (kind == 'interactions')}recording to compare it with."
    if closest is not None:
        hint, earlier = closest, getattr(closest, "previous", None)
    if not isinstance(hint, str):
        recorded = fields(closest.model, closest.request, earlier)
        hint = _differs(closest, recorded, fields(model, body, previous))
        hint += f" It records a turn continuing {earlier!r}." if earlier else ""
    subject, about, todo = "response", f" with the prompt {short(text(body))!r}", _RECORD
    if kind == "interactions":
        subject, todo = "interaction", _WRITE
        about = f" continuing the interaction of cassette {previous!r}" if previous else ""
    return (
        f"No recorded {subject} (cassette) matches this request to model {model!r}{about}. The "
        f"offline emulator only replays recordings and never makes an answer up. {hint} List "
        "what is recorded with `quickstart cassettes` (`--json` prints each recorded request as "
        f"a client sends it), {todo}, or set GEMINI_API_KEY to run against the live API."
    )

"""The Live API's wire for :mod:`._live`: close codes and reasons, server messages rendered
from cassette messages, client messages parsed with the SDK's types, setups compared."""

from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import LiveSessionClosed as _Close
from ._auth_tokens import TOKEN_PREFIX
from ._cassette import MAX_REASON_BYTES, LiveAudio, LiveCassette, LiveMessage
from ._matching import normalize_contents
from ._protocol import key_error
from ._validation import violation

if TYPE_CHECKING:
    from aiohttp import web
    from google.genai import types

    from ._server import Emulator

LIVE_ROUTE = "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
CONSTRAINED_ROUTE = LIVE_ROUTE + "Constrained"
CLOSE_INVALID_ARGUMENT = 1007  # INVALID_ARGUMENT (RFC 6455: invalid payload data)
CLOSE_NOT_FOUND = 1008  # NOT_FOUND / PERMISSION_DENIED (RFC 6455: policy violation)
CLOSE_INTERNAL = 1011
INVALID_ARGUMENT = "Request contains an invalid argument."  # the API's (google/adk-python #5018)


def close_reason(text: str) -> bytes:
    """Encode a close reason, cut to :data:`MAX_REASON_BYTES` on a character boundary."""
    data = " ".join(text.split()).encode("utf-8")
    if len(data) <= MAX_REASON_BYTES:
        return data
    cut = data[: MAX_REASON_BYTES - 3].decode("utf-8", "ignore")  # room for "…" (3 bytes)
    return (cut + "…").encode("utf-8")


def encode_message(payload: dict[str, Any]) -> bytes:
    """One server message's bytes (compact JSON, UTF-8), sent in a binary frame as the API does."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def load_audio(path: Path) -> tuple[int, bytes]:
    """``(rate, pcm)`` of a cassette's WAV file; ValueError unless 16-bit mono PCM."""
    with wave.open(str(path), "rb") as wav:
        width, channels = wav.getsampwidth(), wav.getnchannels()
        if (width, channels) != (2, 1):
            has = f"{width * 8}-bit samples and {channels} channels"
            raise ValueError(f"{path} must be 16-bit mono PCM (it has {has}).")
        return wav.getframerate(), wav.readframes(wav.getnframes())


def wav_bytes(pcm: bytes | bytearray, rate: int) -> bytes:
    """``pcm`` as the 16-bit mono WAV file :func:`load_audio` reads."""
    with io.BytesIO() as file:
        with wave.open(file, "wb") as wav:
            wav.setparams((1, 2, rate, 0, "NONE", "not compressed"))
            wav.writeframes(pcm)
        return file.getvalue()


def audio_slice(
    cassette: LiveCassette, slice_: LiveAudio, audio: dict[str, tuple[int, bytes]] | None = None
) -> tuple[int, bytes]:
    """``(rate, pcm)`` of a cassette's audio slice (``audio``: the WAV files read, by name).
    ValueError: a slice past its file."""
    name, audio = slice_.file, {} if audio is None else audio
    if name not in audio:
        audio[name] = load_audio((cassette.path.parent if cassette.path else Path.cwd()) / name)
    rate, pcm = audio[name]
    start, frames = slice_.start, slice_.frames
    if (start + frames) * 2 > len(pcm):
        where = f"frames {start}..{start + frames} lie past the end of {name}"
        raise ValueError(f"Cassette {cassette.name!r}: {where} ({len(pcm) // 2} frames).")
    return rate, pcm[start * 2 : (start + frames) * 2]


def render_message(
    cassette: LiveCassette,
    message: LiveMessage,
    *,
    output_transcription: bool = True,
    input_transcription: bool = True,
    audio: dict[str, tuple[int, bytes]] | None = None,
) -> dict[str, Any] | None:
    """The JSON a cassette message sends (None: nothing). An audio slice becomes an ``inlineData``
    part of ``serverContent.modelTurn`` beside what else it carries; ``outputTranscription``
    and ``inputTranscription`` are dropped unless the setup asked for them."""
    payload = dict(message.message)  # copied as deep as it is changed
    content = payload.get("serverContent")
    if isinstance(content, dict):
        content = payload["serverContent"] = dict(content)
        for asked, key in (output_transcription, "output"), (input_transcription, "input"):
            if not asked:
                content.pop(f"{key}Transcription", None)
        if not content:
            del payload["serverContent"]
    if message.audio is not None:
        rate, pcm = audio_slice(cassette, message.audio, audio)
        data = base64.b64encode(pcm).decode("ascii")
        part = {"inlineData": {"mimeType": f"audio/pcm;rate={rate}", "data": data}}
        content = payload.get("serverContent") or {}
        turn = dict(content.pop("modelTurn", {}))
        turn["parts"] = [*turn.get("parts", []), part]
        payload["serverContent"] = {"modelTurn": turn, **content}  # modelTurn first
    return payload or None


def render_turn(
    cassette: LiveCassette, index: int, *, transcription: bool, heard: bool = False
) -> list[bytes | None]:
    """The wire bytes of each message of turn ``index`` (None: nothing), with the output
    (``transcription``) and input (``heard``) transcriptions, rendered once per cassette
    (20 concurrent replays took 1.6x a bare replay without it); ValueError as above."""
    if (key := (index, transcription, heard)) not in cassette._wire:  # noqa: SLF001
        audio: dict[str, tuple[int, bytes]] = {}  # each WAV file read once
        kept = {"output_transcription": transcription, "input_transcription": heard}
        messages = cassette.turns[index].messages
        payloads = [render_message(cassette, m, **kept, audio=audio) for m in messages]
        cassette._wire[key] = [None if p is None else encode_message(p) for p in payloads]  # noqa: SLF001
    return cassette._wire[key]  # noqa: SLF001


def parse_client_message(data: Any, kind: str = "LiveClientMessage") -> Any:
    """Parse a client message (or part, ``kind``) with the SDK's ``types``; a field unknown or
    of the wrong type raises LiveSessionClosed (1007, the API's "Unknown name" message)."""
    from google.genai import types

    try:
        return getattr(types, kind).model_validate(data)
    except ValidationError as exc:
        raise _Close(CLOSE_INVALID_ARGUMENT, violation(exc.errors()[0])[1]) from None


def setup_modalities(setup: types.LiveClientSetup | None) -> list[str]:
    config = setup.generation_config if setup is not None else None
    wanted = (config.response_modalities if config is not None else None) or ["AUDIO"]
    return [str(getattr(m, "value", m)).upper() for m in wanted]


def setup_instruction(setup: types.LiveClientSetup | None) -> list[dict[str, Any]] | None:
    if setup is None or setup.system_instruction is None:
        return None
    value = setup.system_instruction
    if isinstance(value, str):
        return normalize_contents([{"parts": [{"text": value}]}])
    return normalize_contents([value.model_dump(mode="json", by_alias=True, exclude_none=True)])


def recorded_setup(cassette: LiveCassette) -> types.LiveClientSetup:
    """The cassette's setup (without its model) as the SDK's type."""
    from google.genai import types

    setup = {k: v for k, v in cassette.setup.items() if k != "model"}
    return types.LiveClientSetup.model_validate(setup)


def check_key(
    emulator: Emulator, request: web.Request, first: dict[str, Any], *, constrained: bool
) -> dict[str, Any]:
    """Check the key (on the constrained route, spend a token use); return the first
    message, its setup with the token's locked fields put over the client's."""
    if not constrained:
        if (error := key_error(request)) is None:
            return first
        message = json.loads(error.body)["error"]["message"]  # type: ignore[arg-type]
        raise _Close(CLOSE_INVALID_ARGUMENT if error.status == 400 else CLOSE_NOT_FOUND, message)
    auth = request.headers.get("Authorization", "")
    name = (auth[6:] if auth.startswith("Token ") else "") or request.query.get("access_token", "")
    if not name.startswith(TOKEN_PREFIX):
        token = "an ephemeral token (Authorization: Token auth_tokens/...)"
        why = f"The constrained endpoint needs {token} from auth_tokens.create."
        raise _Close(CLOSE_NOT_FOUND, why)
    try:
        locked = emulator.tokens.start_session(name).setup
    except PermissionError as exc:
        raise _Close(CLOSE_NOT_FOUND, str(exc)) from None
    setup = first.get("setup")
    if not locked or not isinstance(setup, dict):
        return first
    merged = dict(setup)
    for key, value in locked.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = {**merged[key], **value} if both else value
    return {"setup": merged}

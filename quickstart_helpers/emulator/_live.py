"""The emulator's Live API: a TLS WebSocket that replays ``live`` cassettes.

The route is the one the SDK's ``client.aio.live.connect`` opens with an API key:
``GET /ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent``
(any version). A session goes like the live API's:

1. The client sends ``{"setup": {"model": "models/...", "generationConfig":
   {"responseModalities": ["AUDIO"]}, ...}}``. The emulator checks the key (header
   ``x-goog-api-key`` or query ``key``), that a ``live`` cassette exists for the model
   and that the response modalities are the recorded ones, then answers
   ``{"setupComplete": {}}``.
2. For each client turn (``clientContent``/``client_content`` ``turns`` up to
   ``turnComplete``, or ``realtimeInput``/``realtime_input`` ``text``) it replays the
   cassette turn whose ``input`` is that text: audio chunks as
   ``serverContent.modelTurn.parts[].inlineData`` (``audio/pcm;rate=24000``), output
   transcription only when the setup asked for ``outputAudioTranscription``,
   ``generationComplete``, ``interrupted``, ``goAway`` and finally ``turnComplete``
   with ``usageMetadata``, each after its recorded ``delay_ms`` (realtime pacing) or
   at once (fast pacing).

Errors close the socket the way the live API does, and the SDK raises
``google.genai.errors.APIError`` with the close code and reason: ``1007`` for an
invalid argument (bad key, bad JSON, unsupported modality) and ``1008`` for what is
not found or not allowed (unknown model, missing key, a turn no cassette recorded).
A close reason holds at most 123 bytes, so it says briefly what to do; the full
explanation is logged (level INFO) by the ``quickstart_helpers.emulator`` logger.

Fault directives (``close``, ``drop``, ``goAway``) and session resumption
(``sessionResumptionUpdate`` handles; a setup carrying one continues the cassette from
the next turn) are carried out by :mod:`._faults`.

Client messages are parsed with the SDK's own ``types.LiveClientMessage`` (camelCase or
snake_case; unknown fields refused with 1007, as the live API does).

Cassette format (``kind: "live"``, see :mod:`quickstart_helpers.emulator._cassettes`)::

    {"format": 1, "name": "live_narration", "kind": "live",
     "model": "gemini-3.1-flash-live-preview",
     "setup": {"generationConfig": {"responseModalities": ["AUDIO"]}},
     "turns": [{"input": "Read this aloud ...",
                "messages": [
                  {"delay_ms": 700,
                   "audio": {"file": "audio/x.wav", "start": 0, "frames": 1920}},
                  {"delay_ms": 40,
                   "message": {"serverContent": {"outputTranscription": {"text": "Read"}}}},
                  {"delay_ms": 0, "message": {"serverContent": {"generationComplete": true}}},
                  {"delay_ms": 0, "message": {"serverContent": {"turnComplete": true},
                                              "usageMetadata": {"totalTokenCount": 90}}}]}]}
"""

from __future__ import annotations

import asyncio
import base64
import copy
import difflib
import json
import logging
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from ..errors import LiveSessionClosed as _Close
from ._cassettes import LiveCassette, LiveMessage, LiveTurn, normalize_contents
from ._faults import LiveFaults
from ._protocol import ReceivedRequest, bare_model, key_error

if TYPE_CHECKING:
    from google.genai import types

    from ._server import Emulator

__all__ = [
    "CLOSE_INVALID_ARGUMENT",
    "CLOSE_NOT_FOUND",
    "LIVE_ROUTE",
    "add_routes",
    "close_reason",
    "load_audio",
    "render_message",
]

#: The Live API's route for Gemini API keys (any version segment).
LIVE_ROUTE = "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"

#: Close code the live API uses for ``INVALID_ARGUMENT`` (RFC 6455: invalid payload data).
CLOSE_INVALID_ARGUMENT = 1007
#: Close code the live API uses for ``NOT_FOUND`` / ``PERMISSION_DENIED`` (policy violation).
CLOSE_NOT_FOUND = 1008
_CLOSE_INTERNAL = 1011

#: Longest close reason RFC 6455 allows, in UTF-8 bytes.
MAX_REASON_BYTES = 123

logger = logging.getLogger("quickstart_helpers.emulator")


def close_reason(text: str, limit: int = MAX_REASON_BYTES) -> bytes:
    """Encode a close reason, cut to ``limit`` UTF-8 bytes on a character boundary."""
    data = " ".join(text.split()).encode("utf-8")
    if len(data) <= limit:
        return data
    ellipsis = "…".encode()
    return data[: limit - len(ellipsis)].decode("utf-8", "ignore").encode("utf-8") + ellipsis


def add_routes(app: web.Application, emulator: Emulator) -> None:
    """Register the Live API WebSocket route on the emulator's aiohttp app."""

    async def bidi_generate_content(request: web.Request) -> web.StreamResponse:
        return await _LiveSession(emulator, request).run()

    app.router.add_get(LIVE_ROUTE, bidi_generate_content)


_audio_cache: dict[tuple[Path, float], tuple[int, bytes]] = {}


def load_audio(path: Path) -> tuple[int, bytes]:
    """Return ``(rate, pcm)`` of a cassette's WAV file (16-bit mono), cached.

    Raises:
        ValueError: The file is not 16-bit mono PCM WAV.
        OSError: It cannot be read.
    """
    path = path.resolve()
    key = (path, path.stat().st_mtime)
    if key not in _audio_cache:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise ValueError(
                    f"{path} must be 16-bit mono PCM (it has {wav.getsampwidth() * 8}-bit "
                    f"samples and {wav.getnchannels()} channels)."
                )
            _audio_cache[key] = (wav.getframerate(), wav.readframes(wav.getnframes()))
    return _audio_cache[key]


def render_message(
    cassette: LiveCassette, message: LiveMessage, *, output_transcription: bool = True
) -> dict[str, Any] | None:
    """Build the JSON a cassette message sends, or None when nothing is left to send.

    Audio slices are read from the cassette's WAV file and added as an ``inlineData``
    part; ``outputTranscription`` is dropped unless ``output_transcription``.

    Raises:
        ValueError: The audio slice lies outside its WAV file, or the file is invalid.
    """
    payload = copy.deepcopy(message.message)
    content = payload.get("serverContent")
    if not output_transcription and isinstance(content, dict):
        content.pop("outputTranscription", None)
        if not content:
            del payload["serverContent"]
    if message.audio is not None:
        folder = cassette.path.parent if cassette.path else Path.cwd()
        rate, pcm = load_audio(folder / message.audio.file)
        start, end = message.audio.start * 2, (message.audio.start + message.audio.frames) * 2
        if end > len(pcm):
            raise ValueError(
                f"Cassette {cassette.name!r}: frames {message.audio.start}.."
                f"{message.audio.start + message.audio.frames} lie past the end of "
                f"{message.audio.file} ({len(pcm) // 2} frames)."
            )
        part = {
            "inlineData": {
                "mimeType": f"audio/pcm;rate={rate}",
                "data": base64.b64encode(pcm[start:end]).decode("ascii"),
            }
        }
        content = payload.setdefault("serverContent", {})
        content.setdefault("modelTurn", {}).setdefault("parts", []).append(part)
    return payload or None


def parse_client_message(data: dict[str, Any]) -> types.LiveClientMessage:
    """Parse one client message with the SDK's ``types.LiveClientMessage``.

    camelCase and snake_case field names are both accepted, as the live API does.

    Raises:
        LiveSessionClosed: Code 1007 with the live API's "Unknown name" message when a
            field is unknown or a value has the wrong type.
    """
    from google.genai import types

    try:
        return types.LiveClientMessage.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            message = f'Invalid JSON payload received. Unknown name "{where}": Cannot find field.'
        else:
            message = f"Invalid JSON payload received. Invalid value at '{where}'."
        raise _Close(CLOSE_INVALID_ARGUMENT, message) from None


def _modalities(setup: types.LiveClientSetup | None) -> list[str]:
    config = setup.generation_config if setup is not None else None
    wanted = (config.response_modalities if config is not None else None) or ["AUDIO"]
    return [str(getattr(m, "value", m)).upper() for m in wanted]


def _instruction(setup: types.LiveClientSetup | None) -> list[dict[str, Any]] | None:
    if setup is None or setup.system_instruction is None:
        return None
    value = setup.system_instruction
    if isinstance(value, str):
        value = {"parts": [{"text": value}]}
    else:
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return normalize_contents([value])


def _recorded_setup(cassette: LiveCassette) -> types.LiveClientSetup:
    from google.genai import types

    setup = {k: v for k, v in cassette.setup.items() if k != "model"}
    return types.LiveClientSetup.model_validate(setup)


def _normal_text(text: str) -> str:
    return " ".join(text.split())


def _short(text: str, limit: int = 40) -> str:
    text = _normal_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _LiveSession:
    emulator: Emulator
    request: web.Request
    ws: web.WebSocketResponse = field(init=False)
    received: ReceivedRequest | None = None
    setup: types.LiveClientSetup | None = None
    cassettes: list[LiveCassette] = field(default_factory=list)
    current: LiveCassette | None = None
    next_index: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)
    faults: LiveFaults | None = None

    async def run(self) -> web.StreamResponse:
        self.ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
        await self.ws.prepare(self.request)
        try:
            await self._serve()
        except _Close as close:
            if close.detail != close.reason:
                logger.info("Live API emulator closed a session (%s): %s", close.code, close.detail)
            if not self.ws.closed:
                await self.ws.close(code=close.code, message=close_reason(close.reason))
        except (ConnectionResetError, asyncio.CancelledError):
            return self.ws  # the connection is gone: nothing to close
        except Exception as exc:  # noqa: BLE001 - reported to the client, then logged
            logger.exception("Live API emulator failed")
            if not self.ws.closed:
                await self.ws.close(
                    code=_CLOSE_INTERNAL, message=close_reason(f"Emulator error: {exc}")
                )
        if not self.ws.closed:
            await self.ws.close()
        return self.ws

    async def _next_message(self) -> dict[str, Any] | None:
        msg = await self.ws.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return None
        if msg.type == WSMsgType.ERROR:
            raise ConnectionResetError(str(msg.data))
        raw = msg.data
        try:
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8")
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _Close(CLOSE_INVALID_ARGUMENT, "Invalid JSON payload received.") from None
        if not isinstance(data, dict):
            raise _Close(CLOSE_INVALID_ARGUMENT, "Invalid JSON payload received.")
        if self.received is not None:
            self.received.body.append(data)
        return data

    async def _serve(self) -> None:
        # Read the setup before any error, so the SDK's send() has completed and its
        # recv() turns the close frame into an APIError.
        first = await self._next_message()
        if first is None:
            return
        self._check_key()
        setup = first.get("setup")
        model = setup.get("model") if isinstance(setup, dict) else None
        self.received = ReceivedRequest(
            "BidiGenerateContent",
            bare_model(str(model or "")),
            self.request.match_info["version"],
            [first],
        )
        self.emulator.requests.append(self.received)
        self._check_setup(first)
        await self.ws.send_str(json.dumps({"setupComplete": {}}))
        # Read and answer at the same time, so a client that closes mid-reply is heard
        # at once; turns (and errors about them) are answered in the order they came.
        queue: asyncio.Queue[tuple[LiveCassette, LiveTurn] | _Close] = asyncio.Queue()
        reader = asyncio.ensure_future(self._read_turns(queue))
        worker = asyncio.ensure_future(self._answer_turns(queue))
        try:
            await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_COMPLETED)
            if worker.done():
                worker.result()  # raises what ended the replay
            elif reader.result():  # the client closed the connection
                return
            await worker  # answer what is queued, up to the error that ends it
        finally:
            for task in (reader, worker):
                task.cancel()
            await asyncio.gather(reader, worker, return_exceptions=True)

    async def _read_turns(
        self, queue: asyncio.Queue[tuple[LiveCassette, LiveTurn] | _Close]
    ) -> bool:
        """Queue each client turn's cassette turn; return True when the client closed."""
        while True:
            try:
                data = await self._next_message()
                if data is None:
                    return True
                text = self._turn_text(data)
                if text is not None:
                    queue.put_nowait(self._find_turn(text))
            except _Close as close:
                queue.put_nowait(close)
                return False

    async def _answer_turns(
        self, queue: asyncio.Queue[tuple[LiveCassette, LiveTurn] | _Close]
    ) -> None:
        while True:
            item = await self.faults.next_turn(queue) if self.faults else await queue.get()
            if isinstance(item, _Close):
                raise item
            await self._replay(item)

    def _check_key(self) -> None:
        error = key_error(self.request)
        if error is None:
            return
        body = json.loads(error.body)  # type: ignore[arg-type]
        message = body["error"]["message"]
        code = CLOSE_INVALID_ARGUMENT if error.status == 400 else CLOSE_NOT_FOUND
        raise _Close(code, message)

    def _check_setup(self, first: dict[str, Any]) -> None:
        message = parse_client_message(first)
        if message.setup is None or set(first) != {"setup"}:
            raise _Close(
                CLOSE_INVALID_ARGUMENT,
                "The first message must be a setup message ({'setup': {'model': ...}}).",
            )
        self.setup = message.setup
        model = bare_model(str(message.setup.model or ""))
        version = self.request.match_info["version"]
        cassettes = self.emulator.store.live(model)
        if not model or not cassettes:
            recorded = sorted(
                {c.model for c in self.emulator.store.cassettes if isinstance(c, LiveCassette)}
            )
            raise _Close(
                CLOSE_NOT_FOUND,
                f"models/{model} is not found for API version {version}, or is not "
                "supported for bidiGenerateContent.",
                f"models/{model} is not found for API version {version}, or is not supported "
                f"for bidiGenerateContent. Offline, the Live API models with cassettes are: "
                f"{', '.join(recorded) or 'none'}.",
            )
        wanted = _modalities(message.setup)
        matching = [c for c in cassettes if _modalities(_recorded_setup(c)) == wanted]
        if not matching:
            recorded = _modalities(_recorded_setup(cassettes[0]))
            raise _Close(
                CLOSE_INVALID_ARGUMENT,
                f"The requested combination of response modalities ({', '.join(wanted)}) is "
                f"not supported by the model. Use {recorded}.",
            )
        self.cassettes = matching
        # Fault directives and session resumption (see _faults).
        resumption = message.setup.session_resumption
        self.faults = LiveFaults(self.emulator, resumption=resumption is not None)
        if resumption is not None and resumption.handle:
            self.current, self.next_index = self.faults.resume(resumption.handle, matching)

    def _turn_text(self, data: dict[str, Any]) -> str | None:
        """Return the text of a completed client turn, or None when none is complete."""
        message = parse_client_message(data)
        if message.client_content is not None:
            content = message.client_content
            self.pending.extend(
                t.model_dump(mode="json", by_alias=True, exclude_none=True)
                for t in content.turns or []
            )
            if not content.turn_complete:
                return None
            turns, self.pending = self.pending, []
            texts = [
                p["text"]
                for c in normalize_contents(turns)
                if c["role"] == "user"
                for p in c["parts"]
                if "text" in p
            ]
            return " ".join(texts)
        if message.realtime_input is not None:
            realtime = message.realtime_input
            if realtime.text is not None:
                return realtime.text
            if realtime.audio or realtime.video or realtime.media_chunks:
                raise _Close(
                    CLOSE_NOT_FOUND,
                    "The offline emulator replays text turns only, not audio or video "
                    "input. Send text, or set GEMINI_API_KEY.",
                )
            return None  # activityStart/End, audioStreamEnd: nothing to answer
        if message.tool_response is not None:
            raise _Close(
                CLOSE_NOT_FOUND,
                "No cassette records tool calls for the Live API. Set GEMINI_API_KEY to use tools.",
            )
        if message.setup is not None:
            raise _Close(CLOSE_INVALID_ARGUMENT, "The setup message may be sent only once.")
        unknown = ", ".join(sorted(data)) or "(empty message)"
        raise _Close(
            CLOSE_INVALID_ARGUMENT,
            f'Invalid JSON payload received. Unknown name "{_short(unknown, 30)}": '
            "Cannot find field.",
        )

    def _system_instruction_matches(self, cassette: LiveCassette) -> bool:
        recorded = _instruction(_recorded_setup(cassette))
        if recorded is None:
            return True
        return (_instruction(self.setup) or normalize_contents([{}])) == recorded

    def _find_turn(self, text: str) -> tuple[LiveCassette, LiveTurn]:
        wanted = _normal_text(text)
        ordered = ([self.current] if self.current else []) + [
            c for c in self.cassettes if c is not self.current
        ]
        instruction_mismatch = False
        for cassette in ordered:
            turns = cassette.turns
            # Prefer the next turn of the cassette in use, then any of its turns.
            start = self.next_index if cassette is self.current else 0
            for index in [*range(start, len(turns)), *range(0, start)]:
                if _normal_text(turns[index].input) == wanted:
                    if not self._system_instruction_matches(cassette):
                        instruction_mismatch = True
                        continue
                    self.current, self.next_index = cassette, index + 1
                    if self.received is not None and self.received.cassette is None:
                        self.received.cassette = cassette.name
                    return cassette, turns[index]
        if instruction_mismatch:
            raise _Close(
                CLOSE_NOT_FOUND,
                "No cassette recorded this turn with this system instruction. Use the "
                "recorded one (assets/cassettes/live) or set GEMINI_API_KEY.",
            )
        inputs = [t.input for c in self.cassettes for t in c.turns]
        closest = difflib.get_close_matches(wanted, inputs, n=1, cutoff=0)
        hint = f" The closest recorded turn is {closest[0]!r}." if closest else ""
        tail = "; send a recorded turn (assets/cassettes/live) or set GEMINI_API_KEY."
        room = MAX_REASON_BYTES - len(f"No cassette for ''{tail}".encode())
        excerpt = _short(wanted, max(8, room))
        while len(close_reason(f"No cassette for {excerpt!r}{tail}", 10_000)) > MAX_REASON_BYTES:
            excerpt = _short(excerpt[:-2], len(excerpt) - 2)
        raise _Close(
            CLOSE_NOT_FOUND,
            f"No cassette for {excerpt!r}{tail}",
            f"No Live API cassette for model {getattr(self.setup, 'model', None)!r} recorded the "
            f"turn {_short(wanted, 200)!r}. The offline emulator only replays recordings "
            f"and never makes an answer up.{hint} Send a recorded turn, record a cassette "
            "under assets/cassettes/live/, or set GEMINI_API_KEY to use the live API.",
        )

    async def _replay(self, found: tuple[LiveCassette, LiveTurn]) -> None:
        cassette, turn = found
        transcription = self.setup is not None and self.setup.output_audio_transcription is not None
        index = next(i for i, t in enumerate(cassette.turns) if t is turn)
        for position, message in enumerate(turn.messages):
            if self.faults is not None:
                await self.faults.before_message(
                    self.ws, self.request, cassette, index, position, message
                )
            if self.emulator.pacing == "realtime" and message.delay_ms > 0:
                await asyncio.sleep(message.delay_ms / 1000)
            if message.break_:
                # Drop the connection mid-turn, as a network failure would.
                if self.request.transport is not None:
                    self.request.transport.abort()
                raise ConnectionResetError("cassette break")
            payload = render_message(cassette, message, output_transcription=transcription)
            if payload is not None:
                await self.ws.send_str(json.dumps(payload, separators=(",", ":")))
        if self.faults is not None:
            await self.faults.before_message(
                self.ws, self.request, cassette, index, len(turn.messages), None
            )

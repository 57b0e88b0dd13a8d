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
explanation is logged (level INFO) by the ``quickstart_helpers.emulator`` logger. A
cassette message ``{"close": {"code", "reason"}}`` (record mode writes one when the live
API closes a session mid-turn, e.g. 1011) closes the session with that code and reason.

Session resumption: when the setup holds ``sessionResumption``, each turn ends with
``turnComplete`` and then ``{"sessionResumptionUpdate": {"newHandle": ...,
"resumable": true}}`` (the live API's order); a new connection whose setup carries the
handle continues the cassette from the next turn (:class:`ResumptionStore`; an unknown
handle is refused with 1008). Fault directives (``close``, ``drop``, ``goAway``) are
carried out by :mod:`._faults`.

Client messages are parsed with the SDK's own ``types.LiveClientMessage`` (camelCase or
snake_case; unknown fields refused with 1007, as the live API does).

Cassette format (``kind: "live"``, see :mod:`quickstart_helpers.emulator._cassette`)::

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
import functools
import json
import logging
import secrets
import threading
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from ..errors import LiveSessionClosed as _Close
from ._auth_tokens import TOKEN_PREFIX
from ._cassette import LiveCassette, LiveMessage, LiveTurn
from ._faults import LiveFaults
from ._live_cache import rendered_turn
from ._matching import closest_text, normalize_contents
from ._protocol import BoundedMemo, ReceivedRequest, bare_model, key_error

if TYPE_CHECKING:
    from google.genai import types

    from ._server import Emulator

__all__ = [
    "CLOSE_INVALID_ARGUMENT",
    "CLOSE_NOT_FOUND",
    "CONSTRAINED_ROUTE",
    "LIVE_ROUTE",
    "PARSED_MESSAGES",
    "ParsedMessages",
    "ResumptionStore",
    "add_routes",
    "close_reason",
    "encode_message",
    "load_audio",
    "render_message",
    "render_wire",
]

#: The Live API's route for Gemini API keys (any version segment).
LIVE_ROUTE = "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
#: The Live API's route for ephemeral tokens (``auth_tokens/...``), any version segment.
CONSTRAINED_ROUTE = LIVE_ROUTE + "Constrained"

#: Close code the live API uses for ``INVALID_ARGUMENT`` (RFC 6455: invalid payload data).
CLOSE_INVALID_ARGUMENT = 1007
#: Close code the live API uses for ``NOT_FOUND`` / ``PERMISSION_DENIED`` (policy violation).
CLOSE_NOT_FOUND = 1008
_CLOSE_INTERNAL = 1011

#: Longest close reason RFC 6455 allows, in UTF-8 bytes.
MAX_REASON_BYTES = 123

logger = logging.getLogger("quickstart_helpers.emulator")

#: ``asyncio.timeout`` (Python 3.11+): a deadline in the current task.
_timeout = getattr(asyncio, "timeout", None)


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
        if emulator.recorder is not None:  # record mode: forward and record (see _record.py)
            return await emulator.recorder.live(emulator, request)
        return await _LiveSession(emulator, request).run()

    async def constrained(request: web.Request) -> web.StreamResponse:
        return await _LiveSession(emulator, request, constrained=True).run()

    app.router.add_get(LIVE_ROUTE, bidi_generate_content)
    app.router.add_get(CONSTRAINED_ROUTE, constrained)


@dataclass(frozen=True)
class _Resumption:
    cassette: str
    next_index: int


class ResumptionStore:
    """Session resumption handles one emulator gave out: where each session stood.

    A handle names a cassette and the index of the next turn; a new connection whose
    setup carries it continues that cassette from there. Handles are opaque random
    strings, valid only in the emulator that issued them.
    """

    def __init__(self) -> None:
        self._handles: dict[str, _Resumption] = {}
        self._lock = threading.Lock()

    def issue(self, cassette: str, next_index: int) -> str:
        """Return a new handle for a session at ``next_index`` of ``cassette``."""
        handle = secrets.token_urlsafe(24)
        with self._lock:
            self._handles[handle] = _Resumption(cassette, next_index)
        return handle

    def resume(self, handle: str) -> tuple[str, int] | None:
        """Return ``(cassette name, next turn index)`` for a handle, or None if unknown."""
        with self._lock:
            state = self._handles.get(handle)
        return None if state is None else (state.cassette, state.next_index)


def send_message(ws: web.WebSocketResponse, payload: dict[str, Any]) -> Any:
    """Send one server message as the live API does: compact JSON in a binary frame.

    The live API sends its messages as binary frames: the JavaScript SDK decodes
    ``Blob`` and ``ArrayBuffer`` message data (what a browser's WebSocket gives for
    binary frames) and the Python SDK reads ``recv(decode=False)`` (bytes whatever the
    frame type), so a binary frame is what both are written for.
    """
    return ws.send_bytes(encode_message(payload))


def encode_message(payload: dict[str, Any]) -> bytes:
    """Return the wire bytes of one server message: compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def render_wire(
    cassette: LiveCassette, message: LiveMessage, *, output_transcription: bool = True
) -> bytes | None:
    """Return the bytes :func:`send_message` sends for a cassette message, or None.

    Raises:
        ValueError: As :func:`render_message`.
    """
    payload = render_message(cassette, message, output_transcription=output_transcription)
    return None if payload is None else encode_message(payload)


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


def _locked(setup: dict[str, Any], locked: dict[str, Any]) -> dict[str, Any]:
    """Return the client's setup with a token's locked fields put over it."""
    merged = dict(setup)
    for key, value in locked.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


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


class ParsedMessages(BoundedMemo):
    """Client messages already parsed, by their exact JSON text (bounded, thread-safe).

    :func:`parse_client_message` (the SDK's ``LiveClientMessage``) is a pure function
    of the message's text and most of a session's own CPU besides sending, and every
    replay of a notebook sends the same setup and turns. A message the SDK's type
    accepted is kept with its parse (the SDK's objects, only read) and, for a complete
    client turn sent alone, its text; the same text again skips both. A refused message
    is never kept (it is parsed, and refused, again).

    Args:
        max_entries: Most messages kept, the oldest forgotten first. Defaults to 256.
        max_chars: Longest message kept, in characters. Defaults to 16 Ki.

    Raises:
        ValueError: A limit is not positive.
    """

    def __init__(self, max_entries: int = 256, max_chars: int = 16 * 1024) -> None:
        super().__init__(max_entries, max_chars)

    def add(self, raw: str, message: types.LiveClientMessage) -> list[Any] | None:
        """Keep an accepted message's parse; return its entry (None if not kept)."""
        entry = [message, None]
        return entry if self._put(raw, entry, len(raw)) else None


#: The client messages every emulator of this process parsed (see :class:`ParsedMessages`).
PARSED_MESSAGES = ParsedMessages()


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
    """The cassette's setup as the SDK's type, parsed once per setup dictionary (read-only)."""
    from google.genai import types

    private = cassette.__pydantic_private__  # ``cassette._setup_model``, without a failed lookup
    kept = private["_setup_model"]  # type: ignore[index]
    if kept is not None and kept[0] is cassette.setup:
        return kept[1]
    setup = {k: v for k, v in cassette.setup.items() if k != "model"}
    parsed = types.LiveClientSetup.model_validate(setup)
    private["_setup_model"] = (cassette.setup, parsed)  # type: ignore[index]
    return parsed


def _normal_text(text: str) -> str:
    return " ".join(text.split())


def _short(text: str, limit: int = 40) -> str:
    text = _normal_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _LiveSession:
    emulator: Emulator
    request: web.Request
    constrained: bool = False
    ws: web.WebSocketResponse = field(init=False)
    received: ReceivedRequest | None = None
    setup: types.LiveClientSetup | None = None
    cassettes: list[LiveCassette] = field(default_factory=list)
    current: LiveCassette | None = None
    next_index: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)
    faults: LiveFaults | None = None
    #: The setup message, when record mode has read it already (see _record.py).
    first_message: dict[str, Any] | None = None
    #: Whether each cassette's system instruction (by id) is the session's.
    instruction_matches: dict[int, bool] = field(default_factory=dict)
    #: Bytes of the last message read (for the request log's accounting).
    last_size: int = 0
    #: The last message read: its JSON text and what it parsed to.
    last_read: tuple[str, dict[str, Any]] | None = None

    async def run(self, ws: web.WebSocketResponse | None = None) -> web.StreamResponse:
        if ws is None:
            ws = web.WebSocketResponse(
                max_msg_size=self.emulator.max_body_bytes,
                compress=self.emulator.live_compression,
            )
            await ws.prepare(self.request)
        self.ws = ws
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
        self.last_size = len(raw)
        try:
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8")
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise _Close(CLOSE_INVALID_ARGUMENT, "Invalid JSON payload received.") from None
        if not isinstance(data, dict):
            raise _Close(CLOSE_INVALID_ARGUMENT, "Invalid JSON payload received.")
        self.last_read = (raw, data)
        if self.received is not None:
            self.emulator.requests.add_message(self.received, data, self.last_size)
        return data

    def _parse(self, data: dict[str, Any]) -> tuple[types.LiveClientMessage, list[Any] | None]:
        """:func:`parse_client_message`, from :data:`PARSED_MESSAGES` when ``data`` was read
        as is; return the message and its entry there (None if not kept)."""
        last = self.last_read
        if last is None or last[1] is not data:  # not read from the socket as it is
            return parse_client_message(data), None
        entry = PARSED_MESSAGES.get(last[0])
        if entry is None:
            message = parse_client_message(data)
            return message, PARSED_MESSAGES.add(last[0], message)
        return entry[0], entry

    async def _setup_message(self) -> dict[str, Any] | None:
        """Read the first message, closing the socket if none comes in time (issue 16)."""
        timeout = self.emulator.live_setup_timeout
        try:
            if _timeout is not None:  # in this task, not a new one
                async with _timeout(timeout):
                    return await self._next_message()
            return await asyncio.wait_for(self._next_message(), timeout)  # pragma: no cover
        except asyncio.TimeoutError:
            raise _Close(
                _CLOSE_INTERNAL,
                f"Deadline expired: no setup message within {timeout:g} s.",
                f"The client sent no setup message within {timeout:g} s "
                "(Emulator.live_setup_timeout); the emulator closed the socket.",
            ) from None

    async def _serve(self) -> None:
        # Read the setup before any error, so the SDK's send() has completed and its
        # recv() turns the close frame into an APIError.
        first = self.first_message or await self._setup_message()
        if first is None:
            return
        token_setup = self._check_key()
        if token_setup and isinstance(first.get("setup"), dict):
            first = {"setup": _locked(first["setup"], token_setup)}
        setup = first.get("setup")
        model = setup.get("model") if isinstance(setup, dict) else None
        self.received = ReceivedRequest(
            "BidiGenerateContentConstrained" if self.constrained else "BidiGenerateContent",
            bare_model(str(model or "")),
            self.request.match_info["version"],
            [first],
            size=self.last_size,
        )
        self.emulator.requests.append(self.received)
        self._check_setup(first)
        self._resume()
        await send_message(self.ws, {"setupComplete": {}})
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

    def _resume(self) -> None:
        """Continue the session a ``sessionResumption.handle`` names, if any."""
        config = self.setup.session_resumption if self.setup is not None else None
        handle = config.handle if config is not None else None
        if not handle:
            return
        state = self.emulator.live_handles.resume(handle)
        cassette = next(
            (c for c in self.cassettes if state is not None and c.name == state[0]), None
        )
        if state is None or cassette is None:
            raise _Close(
                CLOSE_NOT_FOUND,
                "The session resumption handle is not valid here (unknown, or for another "
                "model or setup).",
            )
        self.current, self.next_index = cassette, state[1]
        if self.received is not None:
            self.received.cassette = cassette.name

    def _check_key(self) -> dict[str, Any] | None:
        """Check the key (or, on the constrained route, spend a token use).

        Returns:
            The token's locked setup fields on the constrained route, else None.
        """
        if self.constrained:
            auth = self.request.headers.get("Authorization", "")
            name = auth[len("Token ") :] if auth.startswith("Token ") else ""
            name = name or self.request.query.get("access_token", "")
            if not name.startswith(TOKEN_PREFIX):
                raise _Close(
                    CLOSE_NOT_FOUND,
                    "The constrained endpoint needs an ephemeral token (Authorization: Token "
                    "auth_tokens/...) from auth_tokens.create.",
                )
            try:
                return self.emulator.tokens.start_session(name).setup
            except PermissionError as exc:
                raise _Close(CLOSE_NOT_FOUND, str(exc)) from None
        error = key_error(self.request)
        if error is None:
            return None
        body = json.loads(error.body)  # type: ignore[arg-type]
        message = body["error"]["message"]
        code = CLOSE_INVALID_ARGUMENT if error.status == 400 else CLOSE_NOT_FOUND
        raise _Close(code, message)

    def _check_setup(self, first: dict[str, Any]) -> None:
        message, _ = self._parse(first)
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
        self.faults = LiveFaults(self.emulator)  # fault directives (see _faults)

    def _turn_text(self, data: dict[str, Any]) -> str | None:
        """Return the text of a completed client turn, or None when none is complete."""
        message, entry = self._parse(data)
        if message.client_content is not None:
            content = message.client_content
            alone = not self.pending and content.turn_complete  # its text is its own
            if alone and entry is not None and entry[1] is not None:
                return entry[1]  # the same message as before: the same text
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
            text = " ".join(texts)
            if alone and entry is not None:
                entry[1] = text
            return text
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
        # Once per cassette and session: the setup cannot change within a session.
        known = self.instruction_matches.get(id(cassette))
        if known is None:
            recorded = _instruction(_recorded_setup(cassette))
            known = recorded is None or (
                (_instruction(self.setup) or normalize_contents([{}])) == recorded
            )
            self.instruction_matches[id(cassette)] = known
        return known

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
        closest = closest_text(wanted, inputs)  # bounded prefix (issue 16)
        hint = f" The closest recorded turn is {inputs[closest]!r}." if closest is not None else ""
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
        # -- messages rendered once per cassette turn (see _live_cache) --
        rendered = rendered_turn(
            cassette,
            turn,
            output_transcription=transcription,
            render=functools.partial(render_wire, cassette, output_transcription=transcription),
        )
        # Fault directives, if the cassette has any (before_message does nothing without).
        faults = self.faults if cassette.faults else None
        turn_index = next(i for i, t in enumerate(cassette.turns) if t is turn) if faults else 0
        realtime = self.emulator.pacing == "realtime"
        send_bytes = self.ws.send_bytes
        sent = rendered.sent() if faults is None and not realtime else None
        for data in sent or ():  # every message rendered before: just send the bytes
            await send_bytes(data)
        for index, message in enumerate(() if sent is not None else turn.messages):
            if faults is not None:
                await faults.before_message(
                    self.ws, self.request, cassette, turn_index, index, message
                )
            if realtime and message.delay_ms > 0:
                await asyncio.sleep(message.delay_ms / 1000)
            if message.break_:
                # Drop the connection mid-turn, as a network failure would.
                if self.request.transport is not None:
                    self.request.transport.abort()
                raise ConnectionResetError("cassette break")
            if message.close is not None:  # a recorded close (e.g. 1011) ends the session
                raise _Close(message.close.code, message.close.reason)
            data = rendered[index]
            if data is not None:
                await send_bytes(data)  # as send_message does
        if faults is not None:
            await faults.before_message(
                self.ws, self.request, cassette, turn_index, len(turn.messages), None
            )
        if self.setup is not None and self.setup.session_resumption is not None:
            handle = self.emulator.live_handles.issue(cassette.name, self.next_index)
            update = {"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}}
            await send_message(self.ws, update)

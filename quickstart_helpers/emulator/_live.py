"""The emulator's Live API (docs/offline.md, "The Live API"): a TLS WebSocket session replaying
``live`` cassettes on ``LIVE_ROUTE`` (an API key) and ``CONSTRAINED_ROUTE`` (ephemeral tokens). A
spoken turn (``realtimeInput.audio``) is matched by its PCM, however it was chunked, and ends at the
recorded end of speech, ``audioStreamEnd`` or ``activityEnd``. The model's rules (:mod:`._profiles`)
hold. Errors close the socket as the API does (1007 invalid argument, 1008 not found or not allowed;
the full explanation logged at INFO). Faults: :mod:`._faults`; the wire: :mod:`._live_wire`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from ..errors import LiveSessionClosed as _Close
from . import _live_wire as wire
from ._cassette import LiveCassette
from ._faults import LiveFaults, abort
from ._live_wire import CLOSE_INTERNAL, CLOSE_INVALID_ARGUMENT, CLOSE_NOT_FOUND, INVALID_ARGUMENT
from ._matching import closest_text, normalize_contents
from ._profiles import Profile, profile_for
from ._protocol import ReceivedRequest, bare_model, hinted, off_loop, parse_json, short
from ._record_stream import LiveProxy

if TYPE_CHECKING:
    from google.genai import types

    from ._server import Emulator

__all__ = ["add_routes"]

logger = logging.getLogger("quickstart_helpers.emulator")
_NO_TOOLS = "No cassette records tool calls for the Live API. Set GEMINI_API_KEY to use tools."
_MEDIA_CHUNKS = "realtime_input.media_chunks is deprecated. Use audio, video, or text instead."
_NO_AUDIO = "No cassette recorded this audio ({}); record it with quickstart record or set {}."
_NO_VIDEO = "Offline, no video or mediaChunks input is replayed: set GEMINI_API_KEY."
_MANUAL = "activityStart/End need realtimeInputConfig.automaticActivityDetection.disabled: true."


def add_routes(app: web.Application, emulator: Emulator) -> None:
    async def live(request: web.Request) -> web.StreamResponse:
        # Record mode records every session (its turns are unknown when it starts).
        constrained, recorder = request.path.endswith("Constrained"), emulator.recorder
        if recorder is not None and recorder.records and not constrained:
            return await LiveProxy(recorder, emulator, request).run()
        return await _LiveSession(emulator, request, constrained=constrained).run()

    app.router.add_get(wire.LIVE_ROUTE, live)
    app.router.add_get(wire.CONSTRAINED_ROUTE, live)


@dataclass
class _LiveSession:
    emulator: Emulator
    request: web.Request
    constrained: bool = False
    ws: web.WebSocketResponse = field(init=False)
    received: ReceivedRequest | None = None
    setup: types.LiveClientSetup = field(init=False)
    rules: Profile = field(default_factory=lambda: profile_for(""))
    cassettes: list[LiveCassette] = field(default_factory=list)
    #: Each cassette's recorded system instruction (None: any), by name; and the session's.
    instructions: dict[str, Any] = field(default_factory=dict)
    instruction: Any = None
    current: LiveCassette | None = None
    next_index: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)
    started: bool = False  # the realtime conversation started: no more history seeded
    keys: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)  # turn -> key
    sizes: list[int] = field(default_factory=list)  # bytes of each recorded spoken turn
    heard: bytearray = field(default_factory=bytearray)  # this turn's audio so far
    rate: str = "16000"
    manual: bool = False  # automatic activity detection disabled: activityStart/End mark turns
    faults: LiveFaults = field(init=False)
    last: bytes | str = ""  # the last message read, as received (for the request log)

    async def run(self) -> web.StreamResponse:
        limit, compress = self.emulator.max_body_bytes, self.emulator.live_compression
        self.ws = ws = web.WebSocketResponse(max_msg_size=limit, compress=compress)
        await ws.prepare(self.request)
        self.faults = LiveFaults(ws, self.request, fast=self.emulator.pacing == "fast")
        try:
            await self._serve()
        except _Close as close:
            if close.detail != close.reason:
                logger.info("Live API emulator closed a session (%s): %s", close.code, close.detail)
            await ws.close(code=close.code, message=wire.close_reason(close.reason))
        except (ConnectionResetError, asyncio.CancelledError):
            return ws  # the connection is gone: nothing to close
        except Exception as exc:  # noqa: BLE001 - reported to the client, then logged
            logger.exception("Live API emulator failed")
            await ws.close(code=CLOSE_INTERNAL, message=wire.close_reason(f"Emulator error: {exc}"))
        await ws.close()  # does nothing when closed already
        return ws

    async def _next_message(self) -> dict[str, Any] | None:
        msg = await self.ws.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return None
        if msg.type == WSMsgType.ERROR:
            raise ConnectionResetError(str(msg.data))
        if self.received is not None:  # logged before it is parsed (see RequestLog)
            self.emulator.requests.add_message(self.received, msg.data)
        self.last = msg.data
        data, _ = await off_loop(len(msg.data), parse_json, msg.data)
        if not isinstance(data, dict):
            raise _Close(CLOSE_INVALID_ARGUMENT, "Invalid JSON payload received.")
        return data

    async def _serve(self) -> None:
        # The setup is read before any error: the SDK's recv() then raises APIError.
        timeout = self.emulator.live_setup_timeout
        try:
            async with asyncio.timeout(timeout):
                first = await self._next_message()
        except TimeoutError:
            reason = f"Deadline expired: no setup message within {timeout:g} s."
            detail = reason + " (Emulator.live_setup_timeout)"
            raise _Close(CLOSE_INTERNAL, reason, detail) from None
        if first is None:
            return
        first = wire.check_key(self.emulator, self.request, first, constrained=self.constrained)
        setup = first.get("setup")
        model = bare_model(str(setup.get("model") or "")) if isinstance(setup, dict) else ""
        route = "BidiGenerateContent" + ("Constrained" if self.constrained else "")
        version = self.request.match_info["version"]
        self.received = ReceivedRequest(route, model, version, [self.last], size=len(self.last))
        self.emulator.requests.append(self.received)
        self._check_setup(first)
        self._resume()
        await self.ws.send_bytes(wire.encode_message({"setupComplete": {}}))
        # Read while answering (a client that closes mid-reply is heard at once); turns,
        # and errors about them, are answered in order.
        queue: asyncio.Queue[tuple[LiveCassette, int] | _Close] = asyncio.Queue()
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

    async def _read_turns(self, queue: asyncio.Queue[Any]) -> bool:
        """Queue each client turn's cassette turn; return True when the client closed."""
        while True:
            try:
                data = await self._next_message()
                if data is None:
                    return True
                text = await off_loop(len(self.last), self._turn_text, data)
                if text is not None:
                    found = await off_loop(len(text), self._find_turn, text)
                    if found is None and isinstance(text, bytes):
                        seconds = f"{len(text) / 2 / int(self.rate or 16000):.1f} s"
                        raise _Close(CLOSE_NOT_FOUND, _NO_AUDIO.format(seconds, "GEMINI_API_KEY"))
                    if found is None:
                        inputs = [t.input for c in self.cassettes for t in c.turns]
                        closest = await hinted(len(text), closest_text, text, inputs)
                        raise self._no_turn(text, inputs, closest)
                    queue.put_nowait(found)
            except _Close as close:
                queue.put_nowait(close)
                return False

    async def _answer_turns(self, queue: asyncio.Queue[Any]) -> None:
        while not isinstance(item := await self.faults.next_turn(queue), _Close):
            await self._replay(*item)
        raise item

    def _resume(self) -> None:
        """Continue the session a ``sessionResumption.handle`` names, if any."""
        config = self.setup.session_resumption
        if config is None or not config.handle:
            return
        state = self.emulator.live_handles.get(config.handle)
        found = [c for c in self.cassettes if state is not None and c.name == state[0]]
        if state is None or not found:
            why = "The session resumption handle is unknown here, or for another model or setup."
            raise _Close(CLOSE_NOT_FOUND, why)
        self.current, self.next_index = found[0], state[1]
        if self.received is not None:
            self.received.cassette = found[0].name

    def _check_setup(self, first: dict[str, Any]) -> None:
        # realtimeInputConfig: in the API's setup, not in the SDK's LiveClientSetup type.
        setup = dict(first["setup"]) if isinstance(first.get("setup"), dict) else None
        realtime = setup and (setup.pop("realtimeInputConfig", None) or {})
        config = wire.parse_client_message(realtime, "RealtimeInputConfig")
        detection = config.automatic_activity_detection
        self.manual = bool(detection and detection.disabled)  # activityStart/End mark turns
        message = wire.parse_client_message({**first, "setup": setup})
        if message.setup is None or set(first) != {"setup"}:
            why = "The first message must be a setup message ({'setup': {'model': ...}})."
            raise _Close(CLOSE_INVALID_ARGUMENT, why)
        self.setup = message.setup
        model = bare_model(str(message.setup.model or ""))
        self.rules = profile_for(model)
        raw = first["setup"].get("sessionResumption", first["setup"].get("session_resumption"))
        null_handle = isinstance(raw, dict) and "handle" in raw and raw["handle"] is None
        if null_handle and self.rules.has("live.null_resumption_handle_refused"):
            why = "sessionResumption.handle is null: omit the handle to start a new session."
            raise _Close(CLOSE_NOT_FOUND, why)
        version = self.request.match_info["version"]
        cassettes = self.emulator.store.live(model)
        if not model or not cassettes:
            live = {c.model for c in self.emulator.store.cassettes if isinstance(c, LiveCassette)}
            recorded = ", ".join(sorted(live))
            where = f"API version {version}, or is not supported for bidiGenerateContent."
            reason = f"models/{model} is not found for {where}"
            offline = f" Offline, the Live API models with cassettes are: {recorded or 'none'}."
            raise _Close(CLOSE_NOT_FOUND, reason, reason + offline)
        wanted = wire.setup_modalities(message.setup)
        recorded = [(c, wire.recorded_setup(c)) for c in cassettes]  # each parsed once a session
        self.cassettes = [c for c, setup in recorded if wire.setup_modalities(setup) == wanted]
        self.instructions = {c.name: wire.setup_instruction(setup) for c, setup in recorded}
        self.instruction = wire.setup_instruction(message.setup) or normalize_contents([{}])
        for cassette in self.cassettes:
            for i, turn in enumerate(cassette.turns):
                rate, pcm = wire.audio_slice(cassette, turn.audio) if turn.audio else (0, b"")
                self.keys[cassette.name, i] = _key(pcm if turn.audio else turn.input, str(rate))
                self.sizes += [len(pcm)] if turn.audio else []
        if not self.cassettes:
            use = wire.setup_modalities(recorded[0][1])
            why = f"The requested combination of response modalities ({', '.join(wanted)}) is"
            raise _Close(CLOSE_INVALID_ARGUMENT, f"{why} not supported by the model. Use {use}.")

    def _seed_history(self, content: types.LiveClientContent) -> None:
        """Take ``clientContent`` as the initial history (Live 3.1), or refuse it."""
        history = self.setup.history_config
        if self.started or not (history and history.initial_history_in_client_content):
            why = "after the conversation started" if self.started else "without historyConfig"
            detail = (
                f"clientContent {why}: on {self.setup.model} it only seeds the initial history, "
                "with setup.historyConfig.initialHistoryInClientContent; send text during the "
                "conversation with send_realtime_input(text=...)."
            )
            raise _Close(CLOSE_INVALID_ARGUMENT, INVALID_ARGUMENT, detail)
        self.started = bool(content.turn_complete)  # the history is complete: no model call

    def _turn_text(self, data: dict[str, Any]) -> str | bytes | None:
        """Return the text or audio (PCM) of a completed client turn, or None."""
        message = wire.parse_client_message(data)
        if message.client_content is not None:
            content = message.client_content
            if self.rules.has("live.client_content_only_as_history"):
                self._seed_history(content)
                return None
            self.pending.extend(
                t.model_dump(mode="json", by_alias=True, exclude_none=True)
                for t in content.turns or []
            )
            if not content.turn_complete:
                return None
            turns, self.pending = normalize_contents(self.pending), []
            parts = [p for c in turns if c["role"] == "user" for p in c["parts"]]
            return " ".join(p["text"] for p in parts if "text" in p)
        if message.realtime_input is not None:
            realtime, self.started = message.realtime_input, True
            if realtime.media_chunks and self.rules.has("live.media_chunks_refused"):
                raise _Close(CLOSE_INVALID_ARGUMENT, _MEDIA_CHUNKS)
            if realtime.text is not None:
                return realtime.text
            manual, activity = self.manual, realtime.activity_start or realtime.activity_end
            if activity and not manual and self.rules.has("live.activity_signals_need_manual"):
                raise _Close(CLOSE_INVALID_ARGUMENT, _MANUAL)
            if realtime.activity_start:
                self.heard = bytearray()  # a new turn starts
            if realtime.audio is not None and realtime.audio.data:
                before = len(self.heard)
                self.rate = (realtime.audio.mime_type or "").partition("rate=")[2]
                self.heard += realtime.audio.data
                for size in [] if manual else self.sizes:  # the recorded end of speech
                    if before < size <= len(self.heard):
                        if _key(bytes(self.heard[:size]), self.rate) in self.keys.values():
                            spoken, self.heard = bytes(self.heard[:size]), self.heard[size:]
                            return spoken
            elif realtime.video or realtime.media_chunks:
                raise _Close(CLOSE_NOT_FOUND, _NO_VIDEO)
            if (realtime.activity_end if manual else realtime.audio_stream_end) and self.heard:
                spoken, self.heard = bytes(self.heard), bytearray()
                return spoken  # the turn's audio, ended by activityEnd or audioStreamEnd
            return None
        if message.tool_response is not None:
            raise _Close(CLOSE_NOT_FOUND, _NO_TOOLS)
        if message.setup is not None:
            raise _Close(CLOSE_INVALID_ARGUMENT, "The setup message may be sent only once.")
        unknown = short(", ".join(sorted(data)) or "(empty message)", 30)
        why = f'Invalid JSON payload received. Unknown name "{unknown}": Cannot find field.'
        raise _Close(CLOSE_INVALID_ARGUMENT, why)

    def _find_turn(self, text: str | bytes) -> tuple[LiveCassette, int] | None:
        wanted = _key(text, self.rate)
        instruction_mismatch = False
        # The cassette in use first, from its next turn; then the others.
        for cassette in sorted(self.cassettes, key=lambda c: c is not self.current):
            turns = cassette.turns
            start = self.next_index if cassette is self.current else 0
            for index in [*range(start, len(turns)), *range(0, start)]:
                if self.keys[cassette.name, index] != wanted:
                    continue
                recorded = self.instructions[cassette.name]
                if recorded is not None and recorded != self.instruction:
                    instruction_mismatch = True
                    continue
                self.current, self.next_index, self.started = cassette, index + 1, True
                if self.received is not None and self.received.cassette is None:
                    self.received.cassette = cassette.name
                return cassette, index
        if instruction_mismatch:
            what = "No cassette recorded this turn with this system instruction."
            todo = "Use the recorded one (assets/cassettes/live) or set GEMINI_API_KEY."
            raise _Close(CLOSE_NOT_FOUND, f"{what} {todo}")
        return None

    def _no_turn(self, text: str, inputs: list[str], closest: int | str | None) -> _Close:
        """The close for a turn no cassette recorded (``closest``: an index in ``inputs``,
        None, or why none was searched for)."""
        wanted = text[:1000]  # folded by short()
        hint = " " + closest if isinstance(closest, str) else ""
        if isinstance(closest, int):
            hint = f" The closest recorded turn is {inputs[closest]!r}."
        return _Close(
            CLOSE_NOT_FOUND,
            f"No cassette for {short(wanted, 36)!r}; record one in assets/cassettes/live or "
            "set GEMINI_API_KEY.",
            f"No Live API cassette for model {self.setup.model!r} recorded the turn "
            f"{short(wanted, 200)!r}; the emulator never makes an answer up.{hint} Send a "
            "recorded turn, record one under assets/cassettes/live/, or set GEMINI_API_KEY.",
        )

    async def _replay(self, cassette: LiveCassette, turn: int) -> None:
        transcription = self.setup.output_audio_transcription is not None
        heard = self.setup.input_audio_transcription is not None
        rendered = wire.render_turn(cassette, turn, transcription=transcription, heard=heard)
        messages = cassette.turns[turn].messages
        for index in range(len(messages) + 1):  # faults may come after the last message too
            await self.faults.before_message(cassette, turn, index)
            if index == len(messages):
                break
            message = messages[index]
            await self.emulator.sleep(message.delay_ms)
            if message.break_:  # drop the connection mid-turn, as a network failure would
                abort(self.request)
                raise ConnectionResetError("cassette break")
            if message.close is not None:  # a recorded close (e.g. 1011) ends the session
                raise _Close(message.close.code, message.close.reason)
            if rendered[index] is not None:
                await self.ws.send_bytes(rendered[index])  # type: ignore[arg-type]
        if self.setup.session_resumption is not None:
            handle = secrets.token_urlsafe(24)
            self.emulator.live_handles[handle] = (cassette.name, self.next_index)
            update = {"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}}
            await self.ws.send_bytes(wire.encode_message(update))


def _key(said: str | bytes, rate: str = "") -> tuple[str, str]:
    """What a turn is matched by: its text, spaces folded, or its audio's rate and PCM digest."""
    if isinstance(said, str):
        return "text", " ".join(said.split())
    return "audio", f"{rate or 16000}:{hashlib.sha256(said).hexdigest()}"

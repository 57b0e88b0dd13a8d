"""Record mode's Live API sessions: a WebSocket proxy that passes every message on as it comes and
records the setup, each client turn's text (``realtimeInput.text``, or ``clientContent`` up to
``turnComplete``; not where it only seeds the initial history, rule
``live.client_content_only_as_history``) or spoken audio (``realtimeInput.audio``, to
``audio/<cassette>_input.wav``, a turn from its first chunk to the reply's end) and each server
message with its delay. Reply audio goes to ``audio/<cassette>.wav`` (:class:`~._cassette.LiveAudio`
slices); an upstream close mid-turn (not 1000) is a final ``close`` message. A session is written
when it ends with every turn answered to its end."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web

from .._scrub import slug
from ..errors import LiveSessionClosed
from ._cassette import LiveAudio, LiveCassette, LiveClose, LiveMessage, LiveTurn
from ._faults import abort
from ._live_wire import close_reason, parse_client_message, wav_bytes
from ._matching import normalize_contents
from ._profiles import profile_for
from ._protocol import ReceivedRequest, bare_model, parse_json

if TYPE_CHECKING:
    from ._record import Recorder
    from ._server import Emulator

#: What the upstream's failures raise.
UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
_DATA = (WSMsgType.TEXT, WSMsgType.BINARY)


def cassette_name(prefix: str, model: str, text: str, identity: Any) -> str:
    """Return a recording's name: prefix, model, the prompt's first words (keys scrubbed, as
    from bodies) and a digest of ``identity`` (the request as JSON): a request keeps its name."""
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:10]
    return "_".join(p for p in [prefix, slug(model), slug(text) or "request", digest] if p)


def ms(since: float) -> int:
    """Milliseconds since ``since`` (a ``time.monotonic()``)."""
    return round((time.monotonic() - since) * 1000)


async def _send(target: Any, msg: aiohttp.WSMessage) -> None:
    await (target.send_bytes if msg.type == WSMsgType.BINARY else target.send_str)(msg.data)


@dataclass
class LiveProxy:
    """One Live API session forwarded upstream and recorded (see the module's docstring)."""

    recorder: Recorder
    emulator: Emulator
    request: web.Request
    ws: web.WebSocketResponse = field(init=False)  # the client's
    setup: dict[str, Any] = field(default_factory=dict)  # the client's, as the upstream got it
    model: str = ""  # the setup's, without ``models/``
    received: ReceivedRequest | None = None  # the session in the emulator's request log
    turns: list[LiveTurn] = field(default_factory=list)
    complete: bool = False  # whether the last turn was answered to its end
    pending: list[dict[str, Any]] = field(default_factory=list)  # clientContent turns
    last: float = 0.0  # when the last message came (``time.monotonic()``)
    rate: int = 24000
    pcm: bytearray = field(default_factory=bytearray)
    heard_rate: int = 16000  # the client's audio, to ``audio/<cassette>_input.wav``
    heard: bytearray = field(default_factory=bytearray)

    async def run(self) -> web.WebSocketResponse:
        limit, compress = self.emulator.max_body_bytes, self.emulator.live_compression
        self.ws = web.WebSocketResponse(max_msg_size=limit, compress=compress)
        await self.ws.prepare(self.request)
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(**self.recorder.target(self.request), max_msg_size=limit) as up,
            ):
                tasks = [asyncio.ensure_future(f(up)) for f in (self._downstream, self._upstream)]
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                await up.close()  # the client left: end the upstream session too
                await asyncio.gather(*tasks, return_exceptions=True)
        except UPSTREAM_ERRORS as exc:
            self.recorder.failures.append(f"Live API upstream: {type(exc).__name__}: {exc}")
            await self.ws.close(code=1011, message=b"Record mode could not reach the upstream.")
        finally:  # also when the server cancels the handler because the client left
            self._finish()
        await self.ws.close()
        return self.ws

    def _finish(self) -> None:
        """Write the session's cassette if every turn was answered to its end."""
        self._drop_unanswered_audio()
        if not (self.turns and self.complete and self.received):
            self.recorder.failures.append("A Live API session ended midway; nothing recorded.")
            return
        inputs = [t.input for t in self.turns]
        spoken = [hashlib.sha256(self.heard).hexdigest()] if self.heard else []
        identity = [self.setup, inputs, *spoken]  # the same session keeps its name
        name = cassette_name("live", self.model, inputs[0] or "spoken", identity)
        for message in (m for t in self.turns for m in t.messages if m.audio is not None):
            message.audio.file = f"audio/{name}.wav"  # type: ignore[union-attr]
        for turn in (t for t in self.turns if t.audio is not None):
            turn.audio.file = f"audio/{name}_input.wav"  # type: ignore[union-attr]
        files = {name: (self.pcm, self.rate), f"{name}_input": (self.heard, self.heard_rate)}
        audio = {f"audio/{file}.wav": wav_bytes(*pcm) for file, pcm in files.items() if pcm[0]}
        built = LiveCassette.model_construct(
            name=name, model=self.model, setup=self.setup, turns=self.turns
        )
        self.recorder.commit(self.emulator, built, self.request, self.received, audio)

    async def _upstream(self, upstream: aiohttp.ClientWebSocketResponse) -> None:
        """Client to upstream: pass every message on; note where each turn starts."""
        async for msg in self.ws:
            if msg.type not in _DATA:
                break
            data = parse_json(msg.data)[0]  # not a JSON object: the upstream refuses it
            if isinstance(data, dict) and isinstance(data.get("setup"), dict) and not self.setup:
                self.setup, version = data["setup"], self.request.match_info["version"]
                self.model = bare_model(str(self.setup.get("model") or ""))
                self.received = ReceivedRequest("BidiGenerateContent", self.model, version, [data])
                self.emulator.requests.append(self.received)
            elif isinstance(data, dict) and (text := self._turn_text(data)) is not None:
                self.turns.append(LiveTurn.model_construct(input=text, messages=[]))
                self.complete, self.last = False, time.monotonic()
            elif isinstance(data, dict):
                self._hear(data)
            await _send(upstream, msg)
        self._drop_unanswered_audio()
        if not self.complete:
            self.turns.clear()  # the client left mid-turn: nothing to record

    def _hear(self, data: dict[str, Any]) -> None:
        """Add realtime input audio to the spoken turn it opens or continues."""
        with contextlib.suppress(LiveSessionClosed):  # not a valid message: the upstream says so
            realtime = parse_client_message(data).realtime_input
            spoken = realtime and realtime.audio
            if not spoken or (self.turns and not self.complete and self.turns[-1].audio is None):
                return  # no audio, or audio during a text turn's reply
            self.heard_rate = int((spoken.mime_type or "").partition("rate=")[2] or 16000)
            if self.complete or not self.turns:
                audio = LiveAudio.model_construct(file="", start=len(self.heard) // 2, frames=0)
                self.turns.append(LiveTurn.model_construct(input="", audio=audio, messages=[]))
                self.complete = False
            self.turns[-1].audio.frames += len(spoken.data or b"") // 2  # type: ignore[union-attr]
            self.heard += spoken.data or b""
            self.last = time.monotonic()  # the reply's delay counts from the last audio

    def _drop_unanswered_audio(self) -> None:  # audio nothing answered (trailing silence)
        if self.turns and self.turns[-1].audio is not None and not self.turns[-1].messages:
            self.turns.pop()
            self.complete = bool(self.turns)

    def _turn_text(self, data: dict[str, Any]) -> str | None:
        """Return the text of the client turn ``data`` completes, or None."""
        content = data.get("clientContent", data.get("client_content"))
        history_only = profile_for(self.model).has("live.client_content_only_as_history")
        if isinstance(content, dict) and not history_only:
            self.pending += content.get("turns") or []
            if not content.get("turnComplete", content.get("turn_complete")):
                return None
            user = [c for c in normalize_contents(self.pending) if c["role"] == "user"]
            self.pending = []
            return " ".join(p["text"] for c in user for p in c["parts"] if "text" in p)
        realtime = data.get("realtimeInput", data.get("realtime_input")) or {}
        return realtime.get("text") if isinstance(realtime.get("text"), str) else None

    async def _downstream(self, upstream: aiohttp.ClientWebSocketResponse) -> None:
        """Upstream to client: pass every message on as it comes and record it."""
        while (msg := await upstream.receive()).type in _DATA:
            delay, self.last = ms(self.last), time.monotonic()  # from one arrival to the next
            await _send(self.ws, msg)
            data = json.loads(msg.data)
            if self.turns and "setupComplete" not in data:
                self._record(data, delay)
        if msg.type != WSMsgType.CLOSE:  # the upstream dropped the connection: drop it too
            abort(self.request)
            return
        code, reason = msg.data, close_reason(str(msg.extra or ""))
        if code != 1000 and self.turns and not self.complete:
            close = LiveClose.model_construct(code=code, reason=reason.decode())
            message = LiveMessage.model_construct(delay_ms=ms(self.last), close=close)
            self.turns[-1].messages.append(message)
            self.complete = True  # the session ends here, as recorded
        await self.ws.close(code=code, message=reason)

    def _record(self, data: dict[str, Any], delay: int) -> None:
        """Record one server message; a last part of PCM audio (at the session's one sample
        rate) goes to the WAV file, as replay adds it back: last."""
        entry = LiveMessage.model_construct(delay_ms=delay, message=data)
        content = data.get("serverContent") or {}
        turn = content.get("modelTurn") or {}
        parts = turn.get("parts") or [{}]
        inline = parts[-1].get("inlineData") or {}
        kind, _, rate = inline.get("mimeType", "").partition(";rate=")
        if kind == "audio/pcm" and rate.isdecimal() and (not self.pcm or self.rate == int(rate)):
            pcm, self.rate = base64.b64decode(inline["data"]), int(rate)
            parts.pop()  # the audio, now in the WAV file; then what it leaves empty
            for outer, key, inner in (turn, "parts", parts), (content, "modelTurn", turn):
                if not inner:
                    outer.pop(key, None)
            if not content:
                data.pop("serverContent", None)
            start, frames = len(self.pcm) // 2, len(pcm) // 2  # named with the cassette
            entry.audio = LiveAudio.model_construct(file="", start=start, frames=frames)
            self.pcm += pcm
        self.turns[-1].messages.append(entry)
        self.complete = self.complete or bool(content.get("turnComplete"))

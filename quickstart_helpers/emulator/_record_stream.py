"""Record mode's streams, passed on as they come and recorded: ``streamGenerateContent``
answers (SSE events or a streamed JSON array) and Live API sessions (a WebSocket proxy).

A Live session records its setup, each client turn's text (``realtimeInput.text``, or
``clientContent`` up to ``turnComplete``) and every server message with its delay; audio
goes to ``audio/<cassette>.wav`` beside the cassette (a :class:`~._cassette.LiveAudio`
slice); an upstream close mid-turn with a code other than 1000 becomes a final ``close``
message. Where ``clientContent`` only seeds the initial history (rule
``live.client_content_only_as_history``: no model call), it is no turn, as in replay. A
session is written when it ends with every turn answered to its end.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import hashlib
import io
import json
import re
import time
import wave
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web

from ._cassette import (
    FORMAT,
    Chunk,
    GenerateCassette,
    LiveAudio,
    LiveCassette,
    LiveClose,
    LiveMessage,
    LiveTurn,
)
from ._live_wire import close_reason
from ._matching import normalize_contents
from ._profiles import profile_for
from ._protocol import ReceivedRequest, bare_model

if TYPE_CHECKING:
    from ._record import Recorder
    from ._server import Emulator

MAX_MESSAGE = 64 * 1024 * 1024
#: What the upstream's failures raise.
UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
_DATA = (WSMsgType.TEXT, WSMsgType.BINARY)
_DECODER = json.JSONDecoder()


def cassette_name(prefix: str, model: str, text: str, identity: Any) -> str:
    """Return a recording's name: prefix, model, the prompt's first words and a digest of
    ``identity`` (what the request is, as JSON), so that a request keeps its name."""
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:10]
    slugs = [re.sub(r"[^a-z0-9]+", "-", t.lower())[:40].strip("-") for t in (model, text)]
    return "_".join(p for p in [prefix, slugs[0], slugs[1] or "request", digest] if p)


def ms(since: float) -> int:
    """Milliseconds since ``since`` (a ``time.monotonic()``)."""
    return round((time.monotonic() - since) * 1000)


def chunk(data: dict[str, Any], delay: int) -> Chunk:
    """One recorded chunk: a response, or an ``{"error": ...}`` event in the stream."""
    if set(data) == {"error"}:
        return Chunk.model_construct(delay_ms=delay, error=data["error"])
    return Chunk.model_construct(delay_ms=delay, response=data)


class _Reader:
    """Split a streamed answer, read in pieces of any size, into its JSON items: the
    ``data`` of SSE events, or the objects of a JSON array (``[{...}``, ``\\n,\\r\\n{...}``,
    ``\\n]``)."""

    def __init__(self, sse: bool = False) -> None:
        self.sse, self.text = sse, ""
        self.decode = codecs.getincrementaldecoder("utf-8")().decode  # split characters

    def feed(self, piece: bytes) -> list[Any]:
        """Add bytes; return every item they complete, in order."""
        self.text += self.decode(piece)
        if self.sse:
            *events, self.text = re.split(r"\r?\n\r?\n", self.text)
            lines = [re.split(r"\r?\n", event) for event in events]
            data = [[x[5:].removeprefix(" ") for x in e if x.startswith("data:")] for e in lines]
            return [json.loads("\n".join(d)) for d in data if d]
        items = []
        while True:
            self.text = self.text.lstrip(" \t\r\n[,]")
            try:
                item, end = _DECODER.raw_decode(self.text)
            except json.JSONDecodeError:  # empty or incomplete: wait for more
                return items
            items.append(item)
            self.text = self.text[end:]


async def record_stream(
    recorder: Recorder,
    emulator: Emulator,
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    cassette: GenerateCassette,
    received: ReceivedRequest,
    last: float,
) -> web.StreamResponse:
    """Pass a ``streamGenerateContent`` answer on as it comes and record its chunks."""
    content_type = upstream.headers.get("Content-Type", "text/event-stream")
    response = web.StreamResponse(
        headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    reader, chunks = _Reader(sse=request.query.get("alt") == "sse"), cassette.chunks
    try:
        async for piece in upstream.content.iter_any():
            await response.write(piece)
            for item in reader.feed(piece):
                chunks.append(chunk(item, ms(last)))
                last = time.monotonic()
        await response.write_eof()
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
        # The upstream dropped the connection: record (and pass on) the break.
        chunks.append(Chunk.model_construct(delay_ms=ms(last), break_=True))
        if request.transport is not None:
            request.transport.abort()
    except (ConnectionResetError, asyncio.CancelledError):
        # The client went away. After an error event it had the whole answer (the SDK
        # raises at the error event and hangs up); otherwise nothing is recorded.
        if not chunks or chunks[-1].error is None:
            recorder.failures.append(f"{cassette.name}: the client disconnected; nothing recorded")
            return response
    if chunks:
        recorder.commit(emulator, cassette, request, received)
    return response


def _wav(rate: int, pcm: bytes) -> bytes:
    """Return 16-bit mono PCM as a WAV file's bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


async def _send(target: Any, msg: aiohttp.WSMessage) -> None:
    await (target.send_bytes if msg.type == WSMsgType.BINARY else target.send_str)(msg.data)


@dataclass
class LiveProxy:
    """One Live API session forwarded upstream and recorded (see the module's docstring)."""

    recorder: Recorder
    emulator: Emulator
    request: web.Request
    ws: web.WebSocketResponse
    first: aiohttp.WSMessage  # the client's setup message
    setup: dict[str, Any]
    turns: list[LiveTurn] = field(default_factory=list)
    complete: bool = False  # whether the last turn was answered to its end
    pending: list[dict[str, Any]] = field(default_factory=list)  # clientContent turns
    last: float = 0.0  # when the last message came (``time.monotonic()``)
    rate: int = 24000
    pcm: bytearray = field(default_factory=bytearray)

    async def run(self) -> web.WebSocketResponse:
        url, headers = self.recorder.target(self.request)
        model = bare_model(str(self.setup.get("model") or ""))
        version = self.request.match_info["version"]
        setup = json.loads(self.first.data)
        received = ReceivedRequest("BidiGenerateContent", model, version, [setup])
        self.emulator.requests.append(received)
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(
                    url.replace("http", "ws", 1),  # https:// to wss://
                    headers=headers,
                    ssl=self.recorder.ssl_context or True,
                    max_msg_size=MAX_MESSAGE,
                ) as upstream,
            ):
                await _send(upstream, self.first)
                down = asyncio.ensure_future(self._downstream(upstream))
                up = asyncio.ensure_future(self._upstream(upstream))
                await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
                await upstream.close()  # the client left: end the upstream session too
                await asyncio.gather(down, up, return_exceptions=True)
        except UPSTREAM_ERRORS as exc:
            self.recorder.failures.append(f"Live API upstream: {type(exc).__name__}: {exc}")
            await self.ws.close(code=1011, message=b"Record mode could not reach the upstream.")
        finally:  # also when the server cancels the handler because the client left
            self._finish(received)
        await self.ws.close()
        return self.ws

    def _finish(self, received: ReceivedRequest) -> None:
        """Write the session's cassette if every turn was answered to its end."""
        if not (self.turns and self.complete):
            self.recorder.failures.append("A Live API session ended midway; nothing recorded.")
            return
        inputs = [t.input for t in self.turns]
        model = bare_model(str(self.setup.get("model") or ""))
        name = cassette_name("live", model, inputs[0], [self.setup, inputs])
        audio = {f"audio/{name}.wav": _wav(self.rate, bytes(self.pcm))} if self.pcm else {}
        for message in (m for t in self.turns for m in t.messages if m.audio is not None):
            message.audio.file = f"audio/{name}.wav"  # type: ignore[union-attr]
        built = LiveCassette.model_construct(
            format=FORMAT,
            name=name,
            description=f"Live API session recorded from {self.recorder.upstream}.",
            model=model,
            setup=self.setup,
            turns=self.turns,
        )
        self.recorder.commit(self.emulator, built, self.request, received, audio)

    async def _upstream(self, upstream: aiohttp.ClientWebSocketResponse) -> None:
        """Client to upstream: pass every message on; note where each turn starts."""
        history_only = profile_for(str(self.setup.get("model") or "")).has(
            "live.client_content_only_as_history"
        )
        async for msg in self.ws:
            if msg.type not in _DATA:
                break
            try:
                text = self._turn_text(json.loads(msg.data), history_only)
            except (ValueError, AttributeError):  # not a JSON object: the upstream refuses it
                text = None
            if text is not None:
                self.turns.append(LiveTurn.model_construct(input=text, messages=[]))
                self.complete, self.last = False, time.monotonic()
            await _send(upstream, msg)
        if not self.complete:
            self.turns.clear()  # the client left mid-turn: nothing to record

    def _turn_text(self, data: dict[str, Any], history_only: bool) -> str | None:
        """Return the text of the client turn ``data`` completes, or None."""
        content = data.get("clientContent", data.get("client_content"))
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
            await _send(self.ws, msg)
            data = json.loads(msg.data)
            if self.turns and "setupComplete" not in data:
                self._record(data)
        if msg.type != WSMsgType.CLOSE:  # the upstream dropped the connection: drop it too
            if self.request.transport is not None:
                self.request.transport.abort()
            return
        code, reason = msg.data, close_reason(str(msg.extra or ""))
        if code != 1000 and self.turns and not self.complete:
            close = LiveClose.model_construct(code=code, reason=reason.decode())
            self.turns[-1].messages.append(
                LiveMessage.model_construct(delay_ms=ms(self.last), close=close)
            )
            self.complete = True  # the session ends here, as recorded
        await self.ws.close(code=code, message=reason)

    def _record(self, data: dict[str, Any]) -> None:
        """Record one server message; its last part, when the one audio part, goes to
        the WAV file (at one sample rate per session)."""
        entry = LiveMessage.model_construct(delay_ms=ms(self.last), message=data)
        self.last = time.monotonic()
        content = data.get("serverContent") or {}
        turn = content.get("modelTurn") or {}
        parts = turn.get("parts") or [{}]
        inline = parts[-1].get("inlineData") or {}
        rate = re.fullmatch(r"audio/pcm;rate=(\d+)", inline.get("mimeType", ""))
        one = sum("inlineData" in p for p in parts) == 1
        if rate and one and (not self.pcm or self.rate == int(rate[1])):
            pcm, self.rate = base64.b64decode(inline["data"]), int(rate[1])
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

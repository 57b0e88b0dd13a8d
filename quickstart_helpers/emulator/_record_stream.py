"""Record mode's streams, passed on as they come and recorded: ``streamGenerateContent``
answers (SSE events or a streamed JSON array) and Live API sessions (a WebSocket proxy).

A Live session records the setup, each client turn's text (``clientContent`` up to
``turnComplete``, or ``realtimeInput`` text) and every server message with its delay;
audio goes to ``audio/<cassette>.wav`` beside the cassette (a :class:`~._cassette.LiveAudio`
slice); an upstream close mid-turn with a code other than 1000 (1007, 1011 ...) becomes a
final ``close`` message. A session is written when it ends with every turn complete.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import re
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web

from ._cassette import (
    FORMAT,
    AnyCassette,
    Chunk,
    LiveAudio,
    LiveCassette,
    LiveClose,
    LiveMessage,
    LiveTurn,
)
from ._live_wire import close_reason
from ._matching import normalize_contents
from ._protocol import ReceivedRequest, bare_model

if TYPE_CHECKING:
    from ._record import Recorder
    from ._server import Emulator

MAX_MESSAGE = 64 * 1024 * 1024
#: What the upstream's failures raise.
UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def cassette_name(prefix: str, model: str, text: str, identity: str) -> str:
    """Return a recording's name: prefix, model, the prompt's first words, a digest."""
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:10]
    slug = [
        re.sub(r"[^A-Za-z0-9]+", "-", t).strip("-").lower()[:40].strip("-")
        for t in (bare_model(model), text)
    ]
    return "_".join(p for p in [prefix, slug[0], slug[1] or "request", digest] if p)


def ms(since: float) -> int:
    """Milliseconds since ``since`` (a ``time.monotonic()``)."""
    return max(0, round((time.monotonic() - since) * 1000))


def chunk(data: Any, delay: int) -> Chunk:
    """One recorded chunk: a response, or an ``{"error": ...}`` event in the stream."""
    if isinstance(data, dict) and set(data) == {"error"} and isinstance(data["error"], dict):
        return Chunk.model_construct(delay_ms=delay, error=data["error"])
    return Chunk.model_construct(delay_ms=delay, response=data)


async def record_stream(
    recorder: Recorder,
    emulator: Emulator,
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    build: Callable[..., AnyCassette],
    secrets: set[str],
    received: ReceivedRequest,
    last: float,
) -> web.StreamResponse:
    """Pass a ``streamGenerateContent`` answer on as it comes, and record its chunks."""
    content_type = upstream.headers.get("Content-Type", "text/event-stream")
    response = web.StreamResponse(
        status=upstream.status,
        headers={"Content-Type": content_type, "Cache-Control": "no-cache"},
    )
    await response.prepare(request)
    reader = _SseReader() if request.query.get("alt") == "sse" else _JsonArrayReader()
    chunks: list[Chunk] = []
    try:
        try:
            async for piece in upstream.content.iter_any():
                await response.write(piece)
                for item in reader.feed(piece):
                    chunks.append(chunk(item, ms(last)))
                    last = time.monotonic()
            chunks += [chunk(item, ms(last)) for item in reader.end()]
            await response.write_eof()
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            # The upstream dropped the connection: record (and pass on) the break.
            chunks.append(Chunk.model_construct(delay_ms=ms(last), break_=True))
            if request.transport is not None:
                request.transport.abort()
    except (ConnectionResetError, asyncio.CancelledError):
        # The client went away. After an error event it had the whole answer (the
        # SDK raises at the error event and hangs up); otherwise nothing is recorded.
        if not chunks or chunks[-1].error is None:
            recorder.failures.append(f"{build().name}: the client disconnected; nothing recorded")
            return response
    if chunks:
        recorder.commit(emulator, build(chunks=chunks), secrets, received)
    return response


class _SseReader:
    """Split an SSE stream into its events' ``data`` JSON."""

    def __init__(self) -> None:
        self._pending, self._data = b"", []

    def feed(self, piece: bytes) -> list[Any]:
        """Add bytes; return the JSON of every event completed by them, in order."""
        *lines, self._pending = (self._pending + piece).split(b"\n")
        items = []
        for line in lines:
            text = line.decode("utf-8").rstrip("\r")
            if text == "" and self._data:
                items.append(json.loads("\n".join(self._data)))
                self._data = []
            elif text.startswith("data:"):
                self._data.append(text[5:].removeprefix(" "))
        return items

    def end(self) -> list[Any]:
        """Return the last event when the stream ended without its blank line."""
        return [json.loads("\n".join(self._data))] if self._data else []


class _JsonArrayReader:
    """Split a streamed JSON array (``[{...}``, ``\\n,\\r\\n{...}``, ``\\n]``) into objects."""

    def __init__(self) -> None:
        self._text, self._bytes = "", b""
        self._decoder = json.JSONDecoder()

    def feed(self, piece: bytes) -> list[Any]:
        """Add bytes; return every object completed by them, in order."""
        self._bytes += piece
        try:
            self._text += self._bytes.decode("utf-8")
            self._bytes = b""
        except UnicodeDecodeError as exc:  # a character split between pieces
            self._text += self._bytes[: exc.start].decode("utf-8")
            self._bytes = self._bytes[exc.start :]
        items = []
        while True:
            rest = self._text.lstrip(" \t\r\n[,]")
            try:
                item, end = self._decoder.raw_decode(rest)
            except json.JSONDecodeError:  # empty or incomplete: wait for more
                self._text = rest
                return items
            items.append(item)
            self._text = rest[end:]

    def end(self) -> list[Any]:
        """Nothing: an unfinished object is not an object."""
        return []


def _wav_bytes(rate: int, pcm: bytes) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setparams((1, 2, rate, 0, "NONE", "not compressed"))  # mono, 16-bit
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
    first: aiohttp.WSMessage
    setup: dict[str, Any]
    turns: list[LiveTurn] = field(default_factory=list)
    complete: bool = False
    pending_turns: list[dict[str, Any]] = field(default_factory=list)
    last: float = 0.0
    rate: int | None = None
    pcm: bytearray = field(default_factory=bytearray)
    client_closed_midway: bool = False
    finished: bool = False

    async def run(self) -> web.WebSocketResponse:
        url, headers, secrets = self.recorder.target(self.request)
        url = url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        model = bare_model(str(self.setup.get("model") or ""))
        version = self.request.match_info["version"]
        received = ReceivedRequest(
            "BidiGenerateContent", model, version, [json.loads(self.first.data)]
        )
        self.emulator.requests.append(received)
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(
                    url,
                    headers=headers,
                    ssl=self.recorder.ssl_context or True,
                    max_msg_size=MAX_MESSAGE,
                ) as upstream,
            ):
                await _send(upstream, self.first)
                down = asyncio.ensure_future(self._downstream(upstream))
                up = asyncio.ensure_future(self._upstream(upstream))
                done, _ = await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
                if up in done and not down.done():
                    # The client closed: give the upstream a moment to finish, then stop.
                    await upstream.close()
                await asyncio.gather(down, up, return_exceptions=True)
        except UPSTREAM_ERRORS as exc:
            self.recorder.failures.append(f"Live API upstream: {type(exc).__name__}: {exc}")
            if not self.ws.closed:
                await self.ws.close(code=1011, message=b"Record mode could not reach the upstream.")
            return self.ws
        except asyncio.CancelledError:
            # The client left and the server cancelled this handler: a session whose
            # turns completed is still recorded.
            self._finish(secrets, received)
            raise
        if not self.ws.closed:
            await self.ws.close()
        self._finish(secrets, received)
        return self.ws

    def _finish(self, secrets: set[str], received: ReceivedRequest) -> None:
        """Write the session's cassette if every turn completed, once."""
        if self.finished:
            return
        self.finished = True
        if not (self.turns and self.complete and not self.client_closed_midway):
            self.recorder.failures.append("A Live API session ended midway; nothing recorded.")
            return
        inputs = [t.input for t in self.turns]
        model = bare_model(str(self.setup.get("model") or ""))
        name = cassette_name("live", model, inputs[0], json.dumps([self.setup, inputs]))
        audio = {}
        if self.pcm:
            wav = f"audio/{name}.wav"
            audio[wav] = _wav_bytes(self.rate or 24000, bytes(self.pcm))
            for message in (m for t in self.turns for m in t.messages if m.audio is not None):
                message.audio.file = wav  # type: ignore[union-attr]
        built = LiveCassette.model_construct(
            format=FORMAT,
            name=name,
            description=f"Live API session recorded from {self.recorder.upstream}.",
            model=model,
            setup=self.setup,
            turns=self.turns,
        )
        self.recorder.commit(self.emulator, built, secrets, received, audio)

    async def _upstream(self, upstream: aiohttp.ClientWebSocketResponse) -> None:
        """Client to upstream: forward every message; note where each turn starts."""
        async for msg in self.ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                data = json.loads(msg.data)
            except (ValueError, RecursionError):
                data = None
            if (text := self._turn_text(data) if isinstance(data, dict) else None) is not None:
                self.turns.append(LiveTurn.model_construct(input=text, messages=[]))
                self.complete = False
                self.last = time.monotonic()
            await _send(upstream, msg)
        if not self.complete:
            self.client_closed_midway = True

    def _turn_text(self, data: dict[str, Any]) -> str | None:
        content = data.get("clientContent", data.get("client_content"))
        if isinstance(content, dict):
            self.pending_turns.extend(content.get("turns") or [])
            if not content.get("turnComplete", content.get("turn_complete")):
                return None
            turns, self.pending_turns = self.pending_turns, []
            user = [c for c in normalize_contents(turns) if c["role"] == "user"]
            return " ".join(p["text"] for c in user for p in c["parts"] if "text" in p)
        realtime = data.get("realtimeInput", data.get("realtime_input"))
        if isinstance(realtime, dict) and isinstance(realtime.get("text"), str):
            return realtime["text"]
        return None

    async def _downstream(self, upstream: aiohttp.ClientWebSocketResponse) -> None:
        """Upstream to client: forward every message as it comes and record it."""
        while True:
            msg = await upstream.receive()
            if msg.type == WSMsgType.CLOSE:
                await self._closed(upstream, msg.data, str(msg.extra or ""))
                return
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                await _send(self.ws, msg)
            except ConnectionResetError:
                self.client_closed_midway = True
                return
            with contextlib.suppress(ValueError):
                data = json.loads(msg.data)
                if isinstance(data, dict) and "setupComplete" not in data and self.turns:
                    self._record(data)
        code = upstream.close_code
        if code is not None and code != 1000 and not self.ws.closed:
            reason = str(upstream.exception() or "")[:120] or "upstream closed"
            await self.ws.close(code=code, message=reason.encode("utf-8")[:123])

    async def _closed(
        self, upstream: aiohttp.ClientWebSocketResponse, code: int, reason: str
    ) -> None:
        """The upstream closed the session: record a close mid-turn, pass it on."""
        if code != 1000 and self.turns and not self.complete:
            close = LiveClose.model_construct(code=code, reason=close_reason(reason).decode())
            message = LiveMessage.model_construct(delay_ms=ms(self.last), close=close)
            self.turns[-1].messages.append(message)
            self.complete = True  # the session ends here, as recorded
        if not self.ws.closed:
            await self.ws.close(code=code, message=close_reason(reason))
        if not upstream.closed:
            await upstream.close()

    def _record(self, data: dict[str, Any]) -> None:
        """Record one server message; a last audio part goes to the WAV file."""
        entry = LiveMessage.model_construct(delay_ms=ms(self.last))
        self.last = time.monotonic()
        content = data.get("serverContent")
        parts = ((content or {}).get("modelTurn") or {}).get("parts") or []
        audio = [p for p in parts if isinstance(p.get("inlineData"), dict)]
        if len(audio) == 1 and parts[-1] is audio[0]:
            inline = audio[0]["inlineData"]
            match = re.fullmatch(r"audio/pcm;rate=(\d+)", str(inline.get("mimeType", "")))
            rate = int(match.group(1)) if match else None
            pcm = base64.b64decode(inline.get("data", "")) if rate else b""
            if rate is not None and self.rate in (None, rate) and pcm and len(pcm) % 2 == 0:
                self.rate = rate
                data = json.loads(json.dumps(data))
                server = data["serverContent"]
                server["modelTurn"]["parts"].pop()  # the audio, now in the WAV file
                if not server["modelTurn"]["parts"]:
                    del server["modelTurn"]["parts"]
                if not server["modelTurn"]:
                    del server["modelTurn"]
                if not server:
                    del data["serverContent"]
                start = len(self.pcm) // 2  # the file is named with the cassette
                entry.audio = LiveAudio.model_construct(file="", start=start, frames=len(pcm) // 2)
                self.pcm.extend(pcm)
        entry.message = data
        self.turns[-1].messages.append(entry)
        if isinstance(content, dict) and content.get("turnComplete"):
            self.complete = True

"""Record mode: the emulator as a recording proxy in front of the live API.

What no cassette answers is forwarded to an upstream (the live API by default; any
server with the same routes, e.g. a second emulator in tests) with the key the client
sent. The answer streams back to the client as it arrives and is captured:

- ``streamGenerateContent``: every SSE event's JSON (``alt=sse``) or every object of
  the streamed JSON array (without it), with the delay before it (from the request for
  the first, then from the previous one); an ``{"error": ...}`` event inside the
  stream as an error chunk; a dropped upstream connection as ``{"break": true}``. One
  cassette replays both forms;
- ``generateContent``: the one response, with the time it took;
- ``countTokens``: a ``count_tokens`` cassette (request and answer);
- ``GET /{version}/models`` and ``GET /{version}/models/{model}``: a ``models``
  cassette with the Model JSON, which joins the emulator's catalog;
- an error answer (status 400-599): its status and error JSON (``"error"``);
- Live API sessions: the setup, each client turn's text and every server message with
  its delay (from the client turn for the first, then from the previous message);
  audio goes to a WAV file beside the cassette (``audio/<cassette>.wav``), referenced
  as ``{"audio": {"file", "start", "frames"}}``; an upstream that closes the session
  mid-turn with a code other than 1000 (1007, 1011 ...) as a final
  ``{"close": {"code", "reason"}}`` message, replayed as that close.

A cassette is written atomically (a temporary file, then a rename) when its request or
session ends; a client that disconnects midway records nothing. Keys, tokens and
cookies are scrubbed (:mod:`._secrets`); a file that would still hold one is refused.

Record modes (:data:`quickstart_helpers.settings.RECORD_MODES`): ``none`` replays
only; ``once`` records only while the cassette folder held no cassette when recording
started (then it replays, and an unmatched request is an error); ``new_episodes``
records what no cassette answers and replays the rest; ``all`` records every request
again, replacing the cassettes it re-records.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import ssl
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web

from .. import settings
from ..errors import CassetteError, RecordingError
from ._cassette import (
    FORMAT,
    AnyCassette,
    Chunk,
    CountTokensCassette,
    GenerateCassette,
    LiveAudio,
    LiveCassette,
    LiveClose,
    LiveMessage,
    LiveTurn,
    ModelsCassette,
    RecordedError,
    cassette_json,
    dump_cassette,
    parse_cassette,
)
from ._live import close_reason
from ._matching import cassette_key, count_request, normalize_contents, prompt_text
from ._protocol import RECORD_COMMAND, ReceivedRequest, api_error, bare_model
from ._secrets import assert_clean, request_secrets, scrub_value
from ._store import CassetteStore

if TYPE_CHECKING:
    from ..settings import Pacing, RecordMode
    from ._server import Emulator

__all__ = ["RECORD_COMMAND", "Recorder", "recording_emulator", "upstream_ssl_context"]

logger = logging.getLogger("quickstart_helpers.emulator")

#: Request headers forwarded upstream (lower case); everything else stays here.
_FORWARDED = (
    "content-type",
    "accept",
    "user-agent",
    "x-goog-api-client",
    "x-goog-api-key",
    "authorization",
    "api-revision",
)

_SLUG = re.compile(r"[^A-Za-z0-9]+")


def upstream_ssl_context(cafile: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """Return the SSL context for the upstream: the system's CAs, or ``cafile``'s."""
    return ssl.create_default_context(cafile=str(cafile) if cafile else None)


def _slug(text: str, limit: int = 40) -> str:
    return _SLUG.sub("-", text).strip("-").lower()[:limit].strip("-")


def _cassette_name(prefix: str, model: str, text: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:10]
    parts = [prefix, _slug(bare_model(model), 40), _slug(text) or "request", digest]
    return "_".join(p for p in parts if p)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _wav_bytes(rate: int, pcm: bytes) -> bytes:
    import io

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def _ms(since: float) -> int:
    return max(0, round((time.monotonic() - since) * 1000))


@dataclass
class Recorder:
    """Forwards unanswered requests upstream and writes what comes back as cassettes.

    Args:
        folder: Where cassettes (and their WAV files) are written.
        mode: ``none``, ``once``, ``new_episodes`` or ``all``.
        upstream: Base URL of the server to record, e.g.
            ``https://generativelanguage.googleapis.com``.
        ssl_context: Trust for the upstream's certificate; None uses the system's.
        timeout: Seconds an upstream request may take in all.

    Attributes:
        written: Every cassette file written, in order.
        failures: Why an exchange was not recorded (one line each).
    """

    folder: Path
    mode: RecordMode = "once"
    upstream: str = settings.DEFAULT_UPSTREAM
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 600
    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    fresh: bool = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in settings.RECORD_MODES:
            raise ValueError(
                f"record mode must be one of {', '.join(settings.RECORD_MODES)}, not {self.mode!r}"
            )
        self.folder = Path(self.folder)
        self.upstream = self.upstream.rstrip("/")
        # ``once`` records only into a folder that held no cassette when it started.
        self.fresh = not (self.folder.is_dir() and any(self.folder.rglob("*.json")))

    # -- decisions ---------------------------------------------------------------------
    @property
    def may_record(self) -> bool:
        """Whether this mode records anything at all."""
        return self.mode in ("new_episodes", "all") or (self.mode == "once" and self.fresh)

    def forwards(self, recorded: bool) -> bool:
        """Whether a request (answered by a cassette or not) goes upstream."""
        if self.mode == "all":
            return True
        return self.may_record and not recorded

    def refusal(self) -> str:
        """The sentence an unmatched request gets when this mode records nothing."""
        if self.mode == "once":
            return (
                f"Record mode 'once' records only into an empty folder and {self.folder} "
                "already holds cassettes; record new requests with record mode "
                "'new_episodes' (or 'all' to re-record everything)."
            )
        return f"Record mode 'none' only replays; record with {RECORD_COMMAND}."

    # -- writing -------------------------------------------------------------------------
    def _commit(
        self,
        emulator: Emulator,
        built: AnyCassette,
        secrets: set[str],
        audio: dict[str, bytes] | None = None,
    ) -> AnyCassette | None:
        """Scrub, validate, check and write one cassette; return it, or None if refused."""
        path = self.folder / f"{built.name}.json"
        try:
            cassette = parse_cassette(scrub_value(cassette_json(built), secrets), str(path))
            files = {str(path): dump_cassette(cassette).encode("utf-8")}
            files.update({str(self.folder / name): pcm for name, pcm in (audio or {}).items()})
            assert_clean(files, secrets)
        except (CassetteError, RecordingError) as exc:
            self.failures.append(str(exc))
            logger.warning("Record mode did not write a cassette: %s", exc)
            return None
        with self._lock:
            for name, payload in files.items():
                if name != str(path):
                    _write_atomic(Path(name), payload)
            _write_atomic(path, files[str(path)])  # the cassette last: it commits
            cassette._path = path
            key = cassette_key(cassette)
            if key is not None:
                old = emulator.store.find_key(key)
                if old is not None and old.path is not None and old.path != path:
                    if old.path.resolve().is_relative_to(self.folder.resolve()):
                        old.path.unlink(missing_ok=True)  # re-recorded under a new name
            emulator.store.put(cassette)
            self.written.append(path)
        logger.info("Record mode wrote %s", path)
        return cassette

    # -- REST ------------------------------------------------------------------------------
    async def generate(
        self, emulator: Emulator, request: web.Request, model: str, method: str
    ) -> web.StreamResponse | None:
        """Forward a ``generateContent``/``streamGenerateContent`` request if the mode says so.

        Returns:
            The response (already streamed to the client), or None when the request is
            replayed (or refused) by the emulator's usual route.
        """
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(body, dict):
            return None
        if method == "countTokens":
            from ._models import count_answer

            answered = count_answer(emulator, model, body) is not None
        else:
            answered = emulator.store.find(model, body) is not None
        if not self.forwards(answered):
            return None
        received = ReceivedRequest(
            method, bare_model(model), request.match_info["version"], body, size=len(raw)
        )
        emulator.requests.append(received)
        secrets = request_secrets(request.headers, request.query)
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED}
        url = self.upstream + str(request.rel_url)
        started = time.monotonic()
        counting = method == "countTokens"
        base: dict[str, Any] = {
            "format": FORMAT,
            "name": _cassette_name(
                "count" if counting else "",
                model,
                prompt_text((count_request(body) if counting else body).get("contents")),
                json.dumps([model, method if counting else "", body]),
            ),
            "description": f"Recorded from {self.upstream} ({method}).",
            "model": bare_model(model),
            "request": body,
        }
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout, auto_decompress=True) as session,
                session.post(url, data=raw, headers=headers, ssl=self._ssl()) as upstream,
            ):
                if upstream.status >= 400 or method != "streamGenerateContent":
                    payload = await upstream.read()
                    delay = _ms(started)
                    answer = web.Response(
                        body=payload,
                        status=upstream.status,
                        content_type=upstream.content_type or "application/json",
                    )
                    recorded = self._single(base, upstream.status, payload, delay)
                    if recorded is not None:
                        cassette = self._commit(emulator, recorded, secrets)
                        received.cassette = cassette.name if cassette else None
                    return answer
                sse = request.query.get("alt") == "sse"
                return await self._stream(
                    emulator, request, upstream, base, secrets, started, sse=sse
                )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return self._unreachable(url, exc)

    def _unreachable(self, url: str, exc: BaseException) -> web.Response:
        """Note a failed upstream call in ``failures``; return the 502 the client gets."""
        reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        self.failures.append(f"{url.split('?')[0]}: {reason}")
        return api_error(
            502,
            "UNAVAILABLE",
            f"Record mode could not reach the upstream {self.upstream} ({reason}). "
            "Nothing was recorded.",
        )

    def _ssl(self) -> ssl.SSLContext | bool:
        return self.ssl_context if self.ssl_context is not None else True

    def _single(
        self, base: dict[str, Any], status: int, payload: bytes, delay: int
    ) -> AnyCassette | None:
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.failures.append(f"{base['name']}: the upstream answered {status} without JSON")
            return None
        kind = CountTokensCassette if base["name"].startswith("count_") else GenerateCassette
        if status >= 400:
            error = RecordedError.model_construct(status=status, delay_ms=delay, body=data)
            return kind.model_construct(**{**base, "name": f"error_{base['name']}"}, error=error)
        if status != 200 or not isinstance(data, dict):
            self.failures.append(f"{base['name']}: the upstream answered {status}")
            return None
        if kind is CountTokensCassette:
            return kind.model_construct(**base, response=data)
        return kind.model_construct(
            **base, chunks=[Chunk.model_construct(delay_ms=delay, response=data)]
        )

    async def _stream(
        self,
        emulator: Emulator,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        base: dict[str, Any],
        secrets: set[str],
        started: float,
        *,
        sse: bool = True,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=upstream.status,
            headers={
                "Content-Type": upstream.headers.get("Content-Type", "text/event-stream"),
                "Cache-Control": "no-cache",
            },
        )
        await response.prepare(request)
        chunks: list[Chunk] = []
        last = started
        pending = b""
        data_lines: list[str] = []
        array = _JsonArrayReader()
        broken = False
        try:
            try:
                async for piece in upstream.content.iter_any():
                    await response.write(piece)
                    if not sse:
                        for item in array.feed(piece):
                            chunks.append(self._chunk(item, _ms(last)))
                            last = time.monotonic()
                        continue
                    pending += piece
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        text = line.decode("utf-8").rstrip("\r")
                        if text == "" and data_lines:
                            chunks.append(self._event(data_lines, _ms(last)))
                            last = time.monotonic()
                            data_lines = []
                        elif text.startswith("data:"):
                            data_lines.append(text[5:].removeprefix(" "))
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
                broken = True
            if data_lines and not broken:
                chunks.append(self._event(data_lines, _ms(last)))
            if broken:
                # The upstream dropped the connection: record (and pass on) the break.
                chunks.append(Chunk.model_construct(delay_ms=_ms(last), break_=True))
                if request.transport is not None:
                    request.transport.abort()
            else:
                await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            if chunks and chunks[-1].error is not None:
                # An error event ends the stream: the client had the whole answer (the
                # SDK raises at the error event and hangs up before the response ends).
                self._commit(
                    emulator, GenerateCassette.model_construct(**base, chunks=chunks), secrets
                )
                return response
            # The client went away midway: nothing partial is recorded.
            self.failures.append(f"{base['name']}: the client disconnected; nothing recorded")
            return response
        if chunks:
            self._commit(emulator, GenerateCassette.model_construct(**base, chunks=chunks), secrets)
        return response

    @classmethod
    def _event(cls, data_lines: list[str], delay: int) -> Chunk:
        return cls._chunk(json.loads("\n".join(data_lines)), delay)

    @staticmethod
    def _chunk(data: Any, delay: int) -> Chunk:
        """One recorded chunk: a response, or an ``{"error": ...}`` event in the stream."""
        if isinstance(data, dict) and set(data) == {"error"} and isinstance(data["error"], dict):
            return Chunk.model_construct(delay_ms=delay, error=data["error"])
        return Chunk.model_construct(delay_ms=delay, response=data)

    # -- model look-ups ----------------------------------------------------------------------
    async def models(
        self, emulator: Emulator, request: web.Request, known: bool
    ) -> web.Response | None:
        """Forward ``GET /{version}/models[/{model}]`` if the mode says so; record the answer.

        Args:
            emulator: The recording emulator.
            request: The client's request.
            known: Whether the emulator's catalog answers it already.

        Returns:
            The upstream's answer, or None when the emulator's catalog answers (or
            refuses) it. A 200 answer is recorded as a ``models`` cassette; an error
            is passed on and not recorded.
        """
        if not self.forwards(known):
            return None
        name = request.match_info.get("model")
        received = ReceivedRequest(
            "models.get" if name else "models.list",
            bare_model(name or ""),
            request.match_info["version"],
            dict(request.query),
        )
        emulator.requests.append(received)
        secrets = request_secrets(request.headers, request.query)
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED}
        url = self.upstream + str(request.rel_url)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers=headers, ssl=self._ssl()) as upstream,
            ):
                payload = await upstream.read()
                status = upstream.status
                content_type = upstream.content_type or "application/json"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return self._unreachable(url, exc)
        answer = web.Response(body=payload, status=status, content_type=content_type)
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        found = None
        if isinstance(data, dict):
            found = [data] if name else data.get("models")
        if status != 200 or not found:
            where = url.split("?")[0]
            self.failures.append(f"{where}: the upstream answered {status}; not recorded")
            return answer
        what = bare_model(name) if name else "list"
        name = _cassette_name("models", what, "", json.dumps([what, dict(request.query)]))
        description = f"Recorded from {self.upstream} (GET {request.path})."
        cassette = self._commit(
            emulator,
            ModelsCassette.model_construct(
                format=FORMAT, name=name, description=description, models=found
            ),
            secrets,
        )
        received.cassette = cassette.name if cassette else None
        return answer

    # -- Live API --------------------------------------------------------------------------
    async def live(self, emulator: Emulator, request: web.Request) -> web.StreamResponse:
        """Serve a Live API WebSocket: forward the session upstream or replay it."""
        from ._live import _LiveSession

        ws = web.WebSocketResponse(
            max_msg_size=64 * 1024 * 1024, compress=emulator.live_compression
        )
        await ws.prepare(request)
        timeout = emulator.live_setup_timeout
        try:
            first_msg = await asyncio.wait_for(ws.receive(), timeout)
        except asyncio.TimeoutError:
            reason = f"Deadline expired: no setup message within {timeout:g} s."
            await ws.close(code=1011, message=reason.encode())
            return ws
        if first_msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return ws
        try:
            first = json.loads(first_msg.data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            first = None
        if not isinstance(first, dict):
            await ws.close(code=1007, message=b"Invalid JSON payload received.")
            return ws
        setup = first.get("setup") if isinstance(first.get("setup"), dict) else {}
        if not self.forwards(self._live_recorded(emulator, setup)):
            return await _LiveSession(emulator, request, first_message=first).run(ws)
        return await _LiveProxy(self, emulator, request, ws, first_msg, setup).run()

    @staticmethod
    def _live_recorded(emulator: Emulator, setup: dict[str, Any]) -> bool:
        from ._live import _instruction, _modalities, _recorded_setup

        try:
            wanted = _recorded_setup(LiveCassette.model_construct(setup=setup))
        except Exception:  # noqa: BLE001 - an invalid setup is the upstream's to refuse
            return False
        for cassette in emulator.store.live(str(setup.get("model") or "")):
            recorded = _recorded_setup(cassette)
            if _modalities(recorded) == _modalities(wanted) and _instruction(
                recorded
            ) == _instruction(wanted):
                return True
        return False


@dataclass
class _LiveProxy:
    recorder: Recorder
    emulator: Emulator
    request: web.Request
    ws: web.WebSocketResponse
    first: Any
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
        secrets = request_secrets(self.request.headers, self.request.query)
        headers = {k: v for k, v in self.request.headers.items() if k.lower() in _FORWARDED}
        base = self.recorder.upstream.replace("https://", "wss://", 1).replace(
            "http://", "ws://", 1
        )
        url = base + str(self.request.rel_url)
        received = ReceivedRequest(
            "BidiGenerateContent",
            bare_model(str(self.setup.get("model") or "")),
            self.request.match_info["version"],
            [json.loads(self.first.data)],
        )
        self.emulator.requests.append(received)
        try:
            return await self._proxy(url, headers, secrets, received)
        except asyncio.CancelledError:
            # The client left and the server cancelled this handler (handler
            # cancellation): a session whose turns completed is still recorded.
            self._finish(secrets, received)
            raise

    async def _proxy(
        self,
        url: str,
        headers: dict[str, str],
        secrets: set[str],
        received: ReceivedRequest,
    ) -> web.WebSocketResponse:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(
                    url,
                    headers=headers,
                    ssl=self.recorder._ssl(),
                    max_msg_size=64 * 1024 * 1024,
                ) as upstream,
            ):
                await self._send(upstream, self.first)
                down = asyncio.ensure_future(self._downstream(upstream))
                up = asyncio.ensure_future(self._upstream(upstream))
                done, _ = await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
                if up in done and not down.done():
                    # The client closed: give the upstream a moment to finish, then stop.
                    await upstream.close()
                await asyncio.gather(down, up, return_exceptions=True)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self.recorder.failures.append(f"Live API upstream: {type(exc).__name__}: {exc}")
            if not self.ws.closed:
                await self.ws.close(code=1011, message=b"Record mode could not reach the upstream.")
            return self.ws
        if not self.ws.closed:
            await self.ws.close()
        self._finish(secrets, received)
        return self.ws

    def _finish(self, secrets: set[str], received: ReceivedRequest) -> None:
        """Write the session's cassette if every turn completed, once."""
        if self.finished:
            return
        self.finished = True
        if self.turns and self.complete and not self.client_closed_midway:
            self._write(secrets, received)
        else:
            self.recorder.failures.append("A Live API session ended midway; nothing recorded.")

    @staticmethod
    async def _send(target: Any, msg: Any) -> None:
        if msg.type == WSMsgType.BINARY:
            await target.send_bytes(msg.data)
        else:
            await target.send_str(msg.data)

    async def _upstream(self, upstream: aiohttp.ClientWebSocketResponse) -> None:
        """Client to upstream: forward every message; note where each turn starts."""
        async for msg in self.ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                data = json.loads(msg.data)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                data = None
            text = self._turn_text(data) if isinstance(data, dict) else None
            if text is not None:
                self.turns.append(LiveTurn.model_construct(input=text, messages=[]))
                self.complete = False
                self.last = time.monotonic()
            await self._send(upstream, msg)
        if not self.complete:
            self.client_closed_midway = True

    def _turn_text(self, data: dict[str, Any]) -> str | None:
        content = data.get("clientContent", data.get("client_content"))
        if isinstance(content, dict):
            self.pending_turns.extend(content.get("turns") or [])
            if not content.get("turnComplete", content.get("turn_complete")):
                return None
            turns, self.pending_turns = self.pending_turns, []
            return " ".join(
                p["text"]
                for c in normalize_contents(turns)
                if c["role"] == "user"
                for p in c["parts"]
                if "text" in p
            )
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
                await self._send(self.ws, msg)
            except ConnectionResetError:
                self.client_closed_midway = True
                return
            try:
                data = json.loads(msg.data)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
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
            self.turns[-1].messages.append(
                LiveMessage.model_construct(delay_ms=_ms(self.last), close=close)
            )
            self.complete = True  # the session ends here, as recorded
        if not self.ws.closed:
            await self.ws.close(code=code, message=close_reason(reason))
        if not upstream.closed:
            await upstream.close()

    def _record(self, data: dict[str, Any]) -> None:
        entry = LiveMessage.model_construct(delay_ms=_ms(self.last))
        self.last = time.monotonic()
        content = data.get("serverContent")
        parts = ((content or {}).get("modelTurn") or {}).get("parts") or []
        audio = [p for p in parts if isinstance(p.get("inlineData"), dict)]
        if len(audio) == 1 and parts[-1] is audio[0]:
            inline = audio[0]["inlineData"]
            mime = str(inline.get("mimeType", ""))
            match = re.fullmatch(r"audio/pcm;rate=(\d+)", mime)
            rate = int(match.group(1)) if match else None
            if rate is not None and self.rate in (None, rate):
                self.rate = rate
                pcm = base64.b64decode(inline.get("data", ""))
                if pcm and len(pcm) % 2 == 0:
                    data = json.loads(json.dumps(data))
                    model_turn = data["serverContent"]["modelTurn"]
                    model_turn["parts"] = model_turn["parts"][:-1]
                    if not model_turn["parts"]:
                        del model_turn["parts"]
                    if not model_turn:
                        del data["serverContent"]["modelTurn"]
                    if not data["serverContent"]:
                        del data["serverContent"]
                    entry.audio = LiveAudio.model_construct(  # file: named with the cassette
                        file="", start=len(self.pcm) // 2, frames=len(pcm) // 2
                    )
                    self.pcm.extend(pcm)
        entry.message = data
        self.turns[-1].messages.append(entry)
        if isinstance(content, dict) and content.get("turnComplete"):
            self.complete = True

    def _write(self, secrets: set[str], received: ReceivedRequest) -> None:
        model = bare_model(str(self.setup.get("model") or ""))
        inputs = [t.input for t in self.turns]
        name = _cassette_name("live", model, inputs[0], json.dumps([self.setup, inputs]))
        audio: dict[str, bytes] = {}
        if self.pcm:
            wav = f"audio/{name}.wav"
            audio[wav] = _wav_bytes(self.rate or 24000, bytes(self.pcm))
            for turn in self.turns:
                for message in turn.messages:
                    if message.audio is not None:
                        message.audio.file = wav
        built = LiveCassette.model_construct(
            format=FORMAT,
            name=name,
            description=f"Live API session recorded from {self.recorder.upstream}.",
            model=model,
            setup=self.setup,
            turns=self.turns,
        )
        cassette = self.recorder._commit(self.emulator, built, secrets, audio)
        received.cassette = cassette.name if cassette else None


class _JsonArrayReader:
    """Split a streamed JSON array (``[{...}``, ``\\n,\\r\\n{...}``, ``\\n]``) into objects."""

    def __init__(self) -> None:
        self._text = ""
        self._decoder = json.JSONDecoder()
        self._bytes = b""

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
            if not rest:
                self._text = ""
                return items
            try:
                item, end = self._decoder.raw_decode(rest)
            except json.JSONDecodeError:
                self._text = rest  # incomplete: wait for more
                return items
            items.append(item)
            self._text = rest[end:]


_emulators: dict[tuple[str, str, str], Emulator] = {}
_emulators_lock = threading.Lock()


def recording_emulator(
    folder: str | os.PathLike[str],
    *,
    mode: RecordMode = "once",
    upstream: str | None = None,
    upstream_ca: str | os.PathLike[str] | None = None,
    pacing: Pacing | None = None,
    shared: bool = True,
) -> Emulator:
    """Return a started emulator in record mode that replays and records in ``folder``.

    Args:
        folder: The cassette folder: replayed from, and written to.
        mode: ``none``, ``once``, ``new_episodes`` or ``all``.
        upstream: Server to record. Defaults to ``$QUICKSTART_UPSTREAM``, else the live API.
        upstream_ca: PEM file to trust for the upstream. Defaults to
            ``$QUICKSTART_UPSTREAM_CA``, else the system's certificates.
        pacing: Replay pacing of what is already recorded.
        shared: Reuse (and keep until exit) one emulator per folder, mode and upstream.

    Raises:
        ValueError: A mode, pacing or URL that is not allowed.
        CassetteError: A cassette already in ``folder`` is not valid.
    """
    import atexit

    from ._server import Emulator

    upstream = (upstream or settings.upstream()).rstrip("/")
    if not upstream.startswith(("https://", "http://")):
        raise ValueError(f"The upstream must be an http(s):// URL, not {upstream!r}.")
    ca = upstream_ca if upstream_ca is not None else settings.upstream_ca()
    key = (str(Path(folder).resolve()), mode, upstream)
    with _emulators_lock:
        if shared and key in _emulators:
            return _emulators[key]
        emulator = Emulator(
            store=CassetteStore([folder]),
            pacing=pacing or settings.pacing(),
        )
        emulator.recorder = Recorder(
            Path(folder), mode, upstream, upstream_ssl_context(ca) if ca else None
        )
        emulator.start()
        if shared:
            _emulators[key] = emulator
            atexit.register(emulator.stop)
        return emulator

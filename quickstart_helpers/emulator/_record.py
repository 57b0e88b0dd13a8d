"""Record mode (docs/recording.md says what it records and its modes): the emulator as a
recording proxy in front of the live API. What no cassette answers goes, with the client's key,
to an upstream (the live API, or a second emulator in tests), passes on as it comes, and is
recorded, each item with its delay, in the cassette models replay reads: REST answers here,
Live API sessions in :mod:`._record_stream`. A cassette is written when its exchange ends,
never when the client left midway, never with a key or token in it (:mod:`._secrets`)."""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import functools
import json
import logging
import os
import re
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from .. import settings
from ..errors import CassetteError, RecordingError
from . import _cassette
from ._cassette import Chunk, CountTokensCassette, GenerateCassette, ModelsCassette, RecordedError
from ._cassette_io import cassette_json, dump_cassette, parse_cassette
from ._faults import abort
from ._matching import cassette_key, count_request, key_of, last_message, prompt_text
from ._models import count_answer
from ._protocol import RECORD_COMMAND, ReceivedRequest, api_error, bare_model, parse_json
from ._record_stream import UPSTREAM_ERRORS, cassette_name, ms
from ._secrets import assert_clean, request_secrets, scrub_value
from ._server import Emulator
from ._store import CassetteStore

if TYPE_CHECKING:
    from ..settings import Pacing, RecordMode
    from ._cassette import AnyCassette

__all__ = ["Recorder", "recording_emulator", "upstream_ssl_context"]

logger = logging.getLogger("quickstart_helpers.emulator")

#: Request headers forwarded upstream (lower case); everything else stays here.
FORWARDED = {"content-type", "accept", "user-agent", "authorization", "api-revision"}
FORWARDED |= {"x-goog-api-client", "x-goog-api-key"}
_DECODER = json.JSONDecoder()
#: What comes between an answer's JSON objects: white space, SSE ``data:``, ``[``, ``,``, ``]``.
_BETWEEN = re.compile(r"(?:\s|data:|[\[,\]])*")


def upstream_ssl_context(cafile: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """Return the SSL context for the upstream: the system's CAs, or ``cafile``'s."""
    return ssl.create_default_context(cafile=str(cafile) if cafile else None)


class _Reader:
    """Split an answer read in pieces of any size (SSE events of one ``data:`` line, a streamed
    JSON array, one object) into chunks: a response or an ``{"error": ...}`` event, timed."""

    def __init__(self) -> None:
        self.text, self.last = "", time.monotonic()
        self.decode = codecs.getincrementaldecoder("utf-8")().decode

    def feed(self, piece: bytes) -> list[Chunk]:
        """Add bytes; return a chunk for every object they complete, in order."""
        self.text, chunks = self.text + self.decode(piece), []
        while True:
            self.text = self.text[_BETWEEN.match(self.text).end() :]
            try:
                item, end = _DECODER.raw_decode(self.text)
            except json.JSONDecodeError:  # empty or incomplete: wait for more
                return chunks
            kind = {"error": item["error"]} if set(item) == {"error"} else {"response": item}
            chunks.append(Chunk.model_construct(delay_ms=ms(self.last), **kind))
            self.text, self.last = self.text[end:], time.monotonic()


def _answer(cassette: AnyCassette, status: int, chunks: list[Chunk]) -> bool:
    """Put an upstream answer in its cassette: the chunks, a count, Model JSON or (not for a
    model look-up) an error answer. False: nothing to record."""
    first = chunks[0].payload() if chunks else None
    if status >= 400 and first and not isinstance(cassette, ModelsCassette):
        delay, cassette.name = chunks[0].delay_ms, "error_" + cassette.name
        cassette.error = RecordedError.model_construct(status=status, delay_ms=delay, body=first)
    elif status != 200 or not chunks:
        return False
    elif isinstance(cassette, GenerateCassette):
        cassette.chunks = chunks
    elif isinstance(cassette, CountTokensCassette) and first:
        cassette.response = first
    elif isinstance(cassette, ModelsCassette) and first:
        cassette.models = first.get("models", [first])
    else:
        return False
    return True


@dataclass
class Recorder:
    """Forwards unanswered requests upstream and writes what comes back as cassettes."""

    folder: Path  # where cassettes (and their WAV files) are written
    mode: RecordMode = "once"  # none, once, new_episodes or all
    upstream: str = settings.DEFAULT_UPSTREAM  # base URL of the server recorded
    ssl_context: ssl.SSLContext | None = None  # trust for its certificate (None: the system's)
    timeout: float = 600  # seconds an upstream request may take in all
    written: list[Path] = field(default_factory=list)  # every cassette file written, in order
    failures: list[str] = field(default_factory=list)  # why an exchange was not recorded
    records: bool = field(init=False)  # whether this mode records anything

    def __post_init__(self) -> None:
        if self.mode not in settings.RECORD_MODES:
            modes = ", ".join(settings.RECORD_MODES)
            raise ValueError(f"record mode must be one of {modes}, not {self.mode!r}")
        self.folder, self.upstream = Path(self.folder), self.upstream.rstrip("/")
        fresh = not any(self.folder.rglob("*.json"))  # ``once``: no cassette there yet
        self.records = {"none": False, "once": fresh, "new_episodes": True, "all": True}[self.mode]

    def forwards(self, answered: bool) -> bool:
        """Whether a request goes upstream (``answered``: a cassette answers it)."""
        return self.mode == "all" or (self.records and not answered)

    def refusal(self) -> str:
        """The sentence an unmatched request gets when this mode records nothing."""
        if self.mode == "none":
            return f"Record mode 'none' only replays; record with {RECORD_COMMAND}."
        return (
            f"Record mode 'once' records only into an empty folder and {self.folder} already "
            "holds cassettes; record new requests with record mode 'new_episodes' (or 'all' "
            "to re-record everything)."
        )

    def target(self, request: web.Request) -> dict[str, Any]:
        """Return the upstream ``url``, the ``headers`` forwarded and ``ssl`` for a request."""
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        url = self.upstream + str(request.rel_url)
        return {"url": url, "headers": headers, "ssl": self.ssl_context or True}

    def commit(
        self,
        emulator: Emulator,
        built: AnyCassette,
        request: web.Request,
        logged: ReceivedRequest,
        audio: dict[str, bytes] | None = None,
    ) -> None:
        """Scrub ``request``'s secrets out of a cassette, validate it and, unless a secret is
        left in it or its WAV files (``audio``), write them and put it in the store."""
        built.format = _cassette.FORMAT
        built.description = f"Recorded from {self.upstream} ({logged.method})."
        path = self.folder / f"{built.name}.json"
        secrets = request_secrets(request.headers, request.query)
        try:
            cassette = parse_cassette(scrub_value(cassette_json(built), secrets), str(path))
            files = {self.folder / name: pcm for name, pcm in (audio or {}).items()}
            files[path] = dump_cassette(cassette).encode("utf-8")  # the last: it commits
            assert_clean(files, secrets)
        except (CassetteError, RecordingError) as exc:
            self.failures.append(str(exc))
            logger.warning("Record mode did not write a cassette: %s", exc)
            return
        for name, data in files.items():  # each file whole or not at all
            name.parent.mkdir(parents=True, exist_ok=True)
            part = name.with_name(f".{name.name}.part")  # no cassette's name
            part.write_bytes(data)
            part.replace(name)
        cassette._path, root = path, self.folder.resolve()
        old = emulator.store.find_key(key) if (key := cassette_key(cassette)) else None
        if old and old.path and old.path != path and old.path.resolve().is_relative_to(root):
            old.path.unlink(missing_ok=True)  # re-recorded under another name
        emulator.store.add(cassette, put=True)
        self.written.append(path)
        logged.cassette = cassette.name
        logger.info("Record mode wrote %s", path)

    async def _relay(
        self, emulator: Emulator, request: web.Request, logged: ReceivedRequest, built: AnyCassette
    ) -> web.StreamResponse:
        """Send the request upstream, pass the answer on as it comes, record it in ``built``."""
        emulator.requests.append(logged)
        raw = await request.read() or None  # a model look-up is a GET: no body
        chunks: list[Chunk] = []
        reader = _Reader()  # it times the first chunk from the request
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(self.timeout)) as http:
            try:
                upstream = await http.request(request.method, data=raw, **self.target(request))
            except UPSTREAM_ERRORS as exc:
                reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
                self.failures.append(f"{request.path}: {reason}")
                message = f"Record mode could not reach the upstream {self.upstream} ({reason})."
                return api_error(502, "UNAVAILABLE", message + " Nothing was recorded.")
            headers = {"Content-Type": upstream.headers.get("Content-Type", "application/json")}
            response = web.StreamResponse(status=upstream.status, headers=headers)
            await response.prepare(request)
            try:
                async for piece in upstream.content.iter_any():
                    await response.write(piece)
                    chunks += reader.feed(piece)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                # The upstream dropped the connection: record (and pass on) the break.
                chunks.append(Chunk.model_construct(delay_ms=ms(reader.last), break_=True))
            except (ConnectionResetError, asyncio.CancelledError):
                # The client went away. After an error event it had the whole answer (the
                # SDK raises at the error event and hangs up); otherwise nothing is recorded.
                if not chunks or chunks[-1].error is None:
                    self.failures.append(f"{built.name}: the client disconnected")
                    return response
            if _answer(built, upstream.status, chunks):  # at once: the server may stop
                self.commit(emulator, built, request, logged)  # before the client has it all
            else:
                status = upstream.status
                self.failures.append(f"{built.name}: the upstream answered {status}; not kept")
        if chunks and chunks[-1].break_:
            abort(request)
        with contextlib.suppress(ConnectionResetError):  # the client may be gone
            await response.write_eof()
        return response

    async def generate(
        self, emulator: Emulator, request: web.Request, model: str, method: str
    ) -> web.StreamResponse | None:
        """Forward a ``generateContent``/``streamGenerateContent``/``countTokens`` request
        if the mode says so, and record the answer; None: the usual route answers it."""
        raw = await request.read()
        body, counting, model = parse_json(raw)[0], method == "countTokens", bare_model(model)
        find = functools.partial(count_answer, emulator) if counting else emulator.store.find
        if not isinstance(body, dict) or not self.forwards(find(model, body) is not None):
            return None
        prompt = prompt_text((count_request(body) if counting else body).get("contents"))
        name = cassette_name("count" if counting else "", model, prompt, [model, counting, body])
        kind = CountTokensCassette if counting else GenerateCassette
        cassette = kind.model_construct(name=name, model=model, request=body)
        received = ReceivedRequest(method, model, request.match_info["version"], raw, size=len(raw))
        return await self._relay(emulator, request, received, cassette)

    async def openai(self, emulator: Emulator, request: web.Request, model: str, body: Any) -> Any:
        """Forward a chat completion if the mode says so and record it; None: replay answers."""
        if not self.forwards(emulator.store.find_key(key_of("openai", model, body)) is not None):
            return None
        sent, kind = {k: v for k, v in body.items() if k != "model"}, "openai"
        name = cassette_name(kind, model, last_message(body), [model, sent])
        built = GenerateCassette.model_construct(kind=kind, name=name, model=model, request=sent)
        logged = ReceivedRequest("chat.completions", model, request.match_info["version"], body)
        return await self._relay(emulator, request, logged, built)

    async def models(
        self, emulator: Emulator, request: web.Request, known: bool
    ) -> web.StreamResponse | None:
        """Forward ``GET /{version}/models[/{model}]`` if the mode says so (``known``: the
        catalog answers it), and record a 200 answer; None: the catalog answers."""
        if not self.forwards(known):
            return None
        name = bare_model(request.match_info.get("model", ""))
        query = {k: v for k, v in request.query.items() if k not in ("key", "access_token")}
        title = cassette_name("models", name or "list", "", [name, query])
        method = "models.get" if name else "models.list"
        cassette = ModelsCassette.model_construct(name=title)
        received = ReceivedRequest(method, name, request.match_info["version"], query)
        return await self._relay(emulator, request, received, cassette)


def recording_emulator(
    folder: str | os.PathLike[str],
    *,
    mode: RecordMode = "once",
    upstream: str | None = None,
    upstream_ca: str | os.PathLike[str] | None = None,
    pacing: Pacing | None = None,
    shared: bool = True,
) -> Emulator:
    """Return a started emulator in record mode that replays from and records into ``folder``:
    ``mode`` ``none``, ``once``, ``new_episodes`` or ``all``; ``upstream``, the server recorded
    (``$QUICKSTART_UPSTREAM``, else the live API), and ``upstream_ca``, a PEM file to trust for it
    (``$QUICKSTART_UPSTREAM_CA``, else the system's); ``pacing`` of the replays; ``shared``: reuse
    (and keep until exit) one emulator per folder, mode and upstream. Raises ``ValueError`` (a mode,
    pacing or URL not allowed) or ``CassetteError`` (an invalid cassette in ``folder``)."""
    upstream = (upstream or settings.upstream()).rstrip("/")
    if not upstream.startswith(("https://", "http://")):
        raise ValueError(f"The upstream must be an http(s):// URL, not {upstream!r}.")
    ca = upstream_ca if upstream_ca is not None else settings.upstream_ca()
    args = (Path(folder).resolve(), mode, upstream, ca, pacing)
    return _shared(*args) if shared else _start(*args)


def _start(folder: Path, mode: RecordMode, upstream: str, ca: Any, pacing: Any) -> Emulator:
    recorder = Recorder(folder, mode, upstream, upstream_ssl_context(ca) if ca else None)
    return Emulator(CassetteStore([folder]), pacing or settings.pacing(), recorder=recorder).start()


@functools.cache
def _shared(*args: Any) -> Emulator:
    atexit.register((emulator := _start(*args)).stop)
    return emulator

"""Record mode: the emulator as a recording proxy in front of the live API.

What no cassette answers is forwarded to an upstream (the live API by default; any
server with the same routes, e.g. a second emulator in tests) with the key the client
sent. The answer streams back to the client as it arrives and is recorded in the
cassette models replay reads (:mod:`._cassette`), each item with the delay before it:
``generateContent``, ``streamGenerateContent`` (SSE or a streamed JSON array; an error
event, a dropped connection), ``countTokens``, ``GET /{version}/models[/{model}]``, an
error answer (400-599: status and error JSON), and Live API sessions
(:mod:`._record_stream`). A cassette is written atomically when its request or session
ends; a client that disconnects midway records nothing. Keys, tokens and cookies are
scrubbed (:mod:`._secrets`); a file that would still hold one is refused.

Record modes (:data:`quickstart_helpers.settings.RECORD_MODES`): ``none`` replays
only; ``once`` records only while the cassette folder held no cassette when recording
started (then it replays, and an unmatched request is an error); ``new_episodes``
records what no cassette answers and replays the rest; ``all`` records every request
again, replacing the cassettes it re-records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web

from .. import settings
from ..errors import CassetteError, RecordingError
from . import _record_stream as stream
from ._cassette import (
    FORMAT,
    AnyCassette,
    CountTokensCassette,
    GenerateCassette,
    LiveCassette,
    ModelsCassette,
    RecordedError,
)
from ._cassette_io import cassette_json, dump_cassette, parse_cassette
from ._live import _LiveSession
from ._live_wire import _instruction, _modalities, _recorded_setup
from ._matching import cassette_key, count_request, prompt_text
from ._protocol import RECORD_COMMAND, ReceivedRequest, api_error, bare_model
from ._secrets import assert_clean, request_secrets, scrub_value
from ._store import CassetteStore

if TYPE_CHECKING:
    from ..settings import Pacing, RecordMode
    from ._server import Emulator

__all__ = ["Recorder", "recording_emulator", "upstream_ssl_context"]

logger = logging.getLogger("quickstart_helpers.emulator")

#: Request headers forwarded upstream (lower case); everything else stays here.
FORWARDED = {"content-type", "accept", "user-agent", "authorization", "api-revision"}
FORWARDED |= {"x-goog-api-client", "x-goog-api-key"}


def upstream_ssl_context(cafile: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """Return the SSL context for the upstream: the system's CAs, or ``cafile``'s."""
    return ssl.create_default_context(cafile=str(cafile) if cafile else None)


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


@dataclass
class Recorder:
    """Forwards unanswered requests upstream and writes what comes back as cassettes.

    Args:
        folder: Where cassettes (and their WAV files) are written.
        mode: ``none``, ``once``, ``new_episodes`` or ``all``.
        upstream: Base URL of the server to record (the live API by default).
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
            modes = ", ".join(settings.RECORD_MODES)
            raise ValueError(f"record mode must be one of {modes}, not {self.mode!r}")
        self.folder = Path(self.folder)
        self.upstream = self.upstream.rstrip("/")
        # ``once`` records only into a folder that held no cassette when it started.
        self.fresh = not (self.folder.is_dir() and any(self.folder.rglob("*.json")))

    @property
    def may_record(self) -> bool:
        """Whether this mode records anything at all."""
        return self.mode in ("new_episodes", "all") or (self.mode == "once" and self.fresh)

    def forwards(self, recorded: bool) -> bool:
        """Whether a request (answered by a cassette or not) goes upstream."""
        return self.mode == "all" or (self.may_record and not recorded)

    def refusal(self) -> str:
        """The sentence an unmatched request gets when this mode records nothing."""
        if self.mode == "once":
            return (
                f"Record mode 'once' records only into an empty folder and {self.folder} "
                "already holds cassettes; record new requests with record mode "
                "'new_episodes' (or 'all' to re-record everything)."
            )
        return f"Record mode 'none' only replays; record with {RECORD_COMMAND}."

    def target(self, request: web.Request) -> tuple[str, dict[str, str], set[str]]:
        """Return the upstream URL, the headers forwarded and the secrets to scrub."""
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        secrets = request_secrets(request.headers, request.query)
        return self.upstream + str(request.rel_url), headers, secrets

    def commit(
        self,
        emulator: Emulator,
        built: AnyCassette,
        secrets: set[str],
        received: ReceivedRequest | None = None,
        audio: dict[str, bytes] | None = None,
    ) -> AnyCassette | None:
        """Scrub, validate, check and write one cassette (and its WAV files); add it to
        the emulator's store and name it in ``received``. Return it, or None if refused."""
        path = self.folder / f"{built.name}.json"
        try:
            cassette = parse_cassette(scrub_value(cassette_json(built), secrets), str(path))
            files = {str(self.folder / name): pcm for name, pcm in (audio or {}).items()}
            files[str(path)] = dump_cassette(cassette).encode("utf-8")  # the last: it commits
            assert_clean(files, secrets)
        except (CassetteError, RecordingError) as exc:
            self.failures.append(str(exc))
            logger.warning("Record mode did not write a cassette: %s", exc)
            return None
        with self._lock:
            for name, payload in files.items():
                _write_atomic(Path(name), payload)
            cassette._path = path
            key = cassette_key(cassette)
            old = emulator.store.find_key(key) if key is not None else None
            if old is not None and old.path is not None and old.path != path:
                if old.path.resolve().is_relative_to(self.folder.resolve()):
                    old.path.unlink(missing_ok=True)  # re-recorded under a new name
            emulator.store.put(cassette)
            self.written.append(path)
        if received is not None:
            received.cassette = cassette.name
        logger.info("Record mode wrote %s", path)
        return cassette

    @contextlib.asynccontextmanager
    async def _upstream(
        self, request: web.Request, raw: bytes | None = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send the client's request upstream: its method, path, query, forwarded headers."""
        url, headers, _ = self.target(request)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        ssl = self.ssl_context or True
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.request(request.method, url, data=raw, headers=headers, ssl=ssl) as upstream,
        ):
            yield upstream

    def unreachable(self, request: web.Request, exc: BaseException) -> web.Response:
        """Note a failed upstream call in ``failures``; return the 502 the client gets."""
        reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        self.failures.append(f"{request.path}: {reason}")
        message = f"Record mode could not reach the upstream {self.upstream} ({reason})."
        return api_error(502, "UNAVAILABLE", message + " Nothing was recorded.")

    async def generate(
        self, emulator: Emulator, request: web.Request, model: str, method: str
    ) -> web.StreamResponse | None:
        """Forward a ``generateContent``/``streamGenerateContent``/``countTokens`` request
        if the mode says so; return the response (already streamed to the client), or
        None when the emulator's usual route replays (or refuses) it."""
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if not isinstance(body, dict):
            return None
        counting = method == "countTokens"
        if counting:
            from ._models import count_answer

            answered = count_answer(emulator, model, body) is not None
        else:
            answered = emulator.store.find(model, body) is not None
        if not self.forwards(answered):
            return None
        version = request.match_info["version"]
        received = ReceivedRequest(method, bare_model(model), version, body, size=len(raw))
        emulator.requests.append(received)
        secrets = self.target(request)[2]
        prompt = prompt_text((count_request(body) if counting else body).get("contents"))
        identity = json.dumps([model, method if counting else "", body])
        name = stream.cassette_name("count" if counting else "", model, prompt, identity)
        kind = CountTokensCassette if counting else GenerateCassette

        def build(prefix: str = "", **answer: Any) -> AnyCassette:
            return kind.model_construct(
                format=FORMAT,
                name=prefix + name,
                description=f"Recorded from {self.upstream} ({method}).",
                model=bare_model(model),
                request=body,
                **answer,
            )

        started = time.monotonic()
        try:
            async with self._upstream(request, raw) as upstream:
                if upstream.status < 400 and method == "streamGenerateContent":
                    return await stream.record_stream(
                        self, emulator, request, upstream, build, secrets, received, started
                    )
                payload, delay = await upstream.read(), stream.ms(started)
                status, content_type = upstream.status, upstream.content_type
        except stream.UPSTREAM_ERRORS as exc:
            return self.unreachable(request, exc)
        try:
            data = json.loads(payload)
        except ValueError:
            self.failures.append(f"{name}: the upstream answered {status} without JSON")
            data = None
        if data is not None and status >= 400:
            error = RecordedError.model_construct(status=status, delay_ms=delay, body=data)
            self.commit(emulator, build("error_", error=error), secrets, received)
        elif status == 200 and isinstance(data, dict):
            answer = {"response": data} if counting else {"chunks": [stream.chunk(data, delay)]}
            self.commit(emulator, build(**answer), secrets, received)
        elif data is not None:
            self.failures.append(f"{name}: the upstream answered {status}")
        return web.Response(
            body=payload, status=status, content_type=content_type or "application/json"
        )

    async def models(
        self, emulator: Emulator, request: web.Request, known: bool
    ) -> web.Response | None:
        """Forward ``GET /{version}/models[/{model}]`` if the mode says so (``known``: the
        catalog answers it); a 200 answer is recorded as a ``models`` cassette, an error
        passed on unrecorded. None: the catalog answers."""
        if not self.forwards(known):
            return None
        name = request.match_info.get("model")
        method = "models.get" if name else "models.list"
        version = request.match_info["version"]
        received = ReceivedRequest(method, bare_model(name or ""), version, dict(request.query))
        emulator.requests.append(received)
        try:
            async with self._upstream(request) as upstream:
                payload, status = await upstream.read(), upstream.status
                content_type = upstream.content_type or "application/json"
        except stream.UPSTREAM_ERRORS as exc:
            return self.unreachable(request, exc)
        answer, data = web.Response(body=payload, status=status, content_type=content_type), None
        with contextlib.suppress(ValueError):
            data = json.loads(payload)
        found = ([data] if name else data.get("models")) if isinstance(data, dict) else None
        if status != 200 or not found:
            self.failures.append(f"{request.path}: the upstream answered {status}; not recorded")
            return answer
        what = bare_model(name) if name else "list"
        built = ModelsCassette.model_construct(
            format=FORMAT,
            name=stream.cassette_name("models", what, "", json.dumps([what, dict(request.query)])),
            description=f"Recorded from {self.upstream} (GET {request.path}).",
            models=found,
        )
        self.commit(emulator, built, self.target(request)[2], received)
        return answer

    async def live(self, emulator: Emulator, request: web.Request) -> web.StreamResponse:
        """Serve a Live API WebSocket in record mode: forward the session upstream and record
        it, or replay it when the mode says so."""
        ws = web.WebSocketResponse(
            max_msg_size=stream.MAX_MESSAGE, compress=emulator.live_compression
        )
        await ws.prepare(request)
        timeout = emulator.live_setup_timeout
        try:
            first = await asyncio.wait_for(ws.receive(), timeout)
        except asyncio.TimeoutError:
            reason = f"Deadline expired: no setup message within {timeout:g} s."
            await ws.close(code=1011, message=reason.encode())
            return ws
        if first.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return ws
        try:
            data = json.loads(first.data)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            await ws.close(code=1007, message=b"Invalid JSON payload received.")
            return ws
        setup = data["setup"] if isinstance(data.get("setup"), dict) else {}
        if not self.forwards(_recorded(emulator, setup)):
            return await _LiveSession(emulator, request, first_message=data).run(ws)
        return await stream.LiveProxy(self, emulator, request, ws, first, setup).run()


def _recorded(emulator: Emulator, setup: dict[str, Any]) -> bool:
    """Whether a cassette records a session with this setup's modalities and instruction."""
    try:
        wanted = _recorded_setup(LiveCassette.model_construct(setup=setup))
    except Exception:  # noqa: BLE001 - an invalid setup is the upstream's to refuse
        return False
    return any(
        _modalities(recorded) == _modalities(wanted)
        and _instruction(recorded) == _instruction(wanted)
        for recorded in map(_recorded_setup, emulator.store.live(str(setup.get("model") or "")))
    )


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
        emulator = Emulator(store=CassetteStore([folder]), pacing=pacing or settings.pacing())
        context = upstream_ssl_context(ca) if ca else None
        emulator.recorder = Recorder(Path(folder), mode, upstream, context)
        emulator.start()
        if shared:
            _emulators[key] = emulator
            atexit.register(emulator.stop)
        return emulator

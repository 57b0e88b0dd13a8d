"""Resume broken streams: our patterns for the faults the SDK does not retry by itself.

The SDK's ``HttpRetryOptions`` retry only a request's *first* response. :func:`resume_stream`
goes on after a stream breaks midway with a continue request (a new, billed request, whose
seam the model may word a little differently); :class:`ResumableLiveSession` carries a Live
API conversation over a ``goAway`` with its session resumption handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from google import genai
from google.genai import _transformers, errors, types

from .display import chunk_text

#: The user turn that asks the model to go on from a partial answer.
CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it from exactly where it stopped, "
    "without repeating anything."
)

#: API error codes worth another try: timeout, rate limit, server errors.
RESUMABLE_CODES = frozenset({408, 429, 500, 502, 503, 504})


def is_resumable(exc: BaseException) -> bool:
    """Whether ``exc`` is worth another try: an ``APIError`` with a code in
    :data:`RESUMABLE_CODES` or a broken connection (not a 400, which would fail again)."""
    if isinstance(exc, errors.APIError):
        return exc.code in RESUMABLE_CODES
    # The SDK's sync client uses httpx (or its fork httpx2), its async client aiohttp.
    broken = [ConnectionError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError]
    broken += [sys.modules[m].TransportError for m in ("httpx", "httpx2") if m in sys.modules]
    return isinstance(exc, tuple(broken))


@dataclass
class ResumedStream:
    """One answer streamed across breaks, from :func:`resume_stream`: iterate over it for
    the SDK's chunks; then ``text``, the ``errors`` it resumed from and the ``requests``
    made (1 when nothing broke)."""

    chunks: Iterator[types.GenerateContentResponse] = field(repr=False)
    pieces: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    requests: int = 0

    def __iter__(self) -> Iterator[types.GenerateContentResponse]:
        return self.chunks

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def resume_stream(
    client: genai.Client,
    *,
    model: str,
    contents: Any,
    config: Any = None,
    max_resumes: int = 2,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ResumedStream:
    """Stream an answer, resuming with a continue request when the stream breaks.

    The returned :class:`ResumedStream` yields the first stream's chunks, then, after a wait
    of ``backoff_s`` seconds (doubled each time), a continue request's: ``contents``, the
    partial answer as a model turn and :data:`CONTINUE_PROMPT` (``contents`` alone if no text
    came), so the caller sees one answer. Iterating raises an error that is not resumable
    (:func:`is_resumable`), or the last one after ``max_resumes`` resumes.
    """
    if max_resumes < 0:
        raise ValueError(f"max_resumes must be >= 0, not {max_resumes}")
    turns = list(_transformers.t_contents(contents))

    def chunks() -> Iterator[types.GenerateContentResponse]:
        while True:
            seen.requests += 1
            request = list(turns)
            if seen.text:  # go on from the partial answer
                request += [types.ModelContent(seen.text), types.UserContent(CONTINUE_PROMPT)]
            try:
                for chunk in client.models.generate_content_stream(
                    model=model, contents=request, config=config
                ):
                    seen.pieces.append(chunk_text(chunk))
                    yield chunk
                return
            except Exception as exc:
                if not is_resumable(exc) or len(seen.errors) >= max_resumes:
                    raise
                seen.errors.append(exc)
                sleep(backoff_s * 2 ** (len(seen.errors) - 1))

    seen = ResumedStream(chunks())  # the generator starts when the caller iterates
    return seen


class ResumableLiveSession:
    """A Live API conversation that reconnects with its resumption handle after ``goAway``.

    The server sends ``session_resumption_update`` just *after* a turn's ``turn_complete``
    (where ``receive()`` stops), so before each turn it reads on to that update (at most
    ``update_timeout_s`` s), keeps the newest resumable ``handle`` and, if a ``go_away``
    came, reconnects with it (``reconnects`` says why; at most ``max_reconnects``). Turns go
    as realtime input; ``history`` seeds the first connection as client content with
    ``history_config`` (on gemini-3.1-flash-live-preview, client content's only use)::

        async with ResumableLiveSession(client, model=MODEL, config=CONFIG) as live:
            async for message in live.send_turn("Hello"):
                ...
    """

    def __init__(
        self,
        client: genai.Client,
        *,
        model: str,
        config: Any = None,
        history: list[Any] | None = None,
        max_reconnects: int = 3,
        update_timeout_s: float = 5.0,
    ) -> None:
        if max_reconnects < 0:
            raise ValueError(f"max_reconnects must be >= 0, not {max_reconnects}")
        if not update_timeout_s > 0:
            raise ValueError(f"update_timeout_s must be > 0, not {update_timeout_s}")
        self.client, self.model, self.history = client, model, list(history or [])
        self.config = types.LiveConnectConfig.model_validate(config or {})
        self.max_reconnects, self.update_timeout_s = max_reconnects, update_timeout_s
        self.handle: str | None = None
        self.reconnects: list[str] = []
        self.go_away: str | None = None
        self._update_due = False  # a turn completed; its resumption update is not read yet
        self._context: Any = None
        self._session: Any = None

    async def _open(self) -> None:
        # handle=None goes on the wire as {} (a new session), never as a null handle.
        update: dict[str, Any] = {
            "session_resumption": types.SessionResumptionConfig(handle=self.handle)
        }
        seed = bool(self.history) and self.handle is None  # a resumed session has its history
        if seed:
            update["history_config"] = types.HistoryConfig(initial_history_in_client_content=True)
        config = self.config.model_copy(update=update)
        self._context = self.client.aio.live.connect(model=self.model, config=config)
        self._session = await self._context.__aenter__()
        self._update_due = False
        if seed:
            await self._session.send_client_content(turns=self.history, turn_complete=True)

    async def _close(self) -> None:
        context, self._context, self._session = self._context, None, None
        if context is not None:
            with contextlib.suppress(Exception):  # the old connection may be gone already
                await context.__aexit__(None, None, None)

    async def __aenter__(self) -> ResumableLiveSession:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    def _note(self, message: types.LiveServerMessage) -> None:
        if message.server_content is not None and message.server_content.turn_complete:
            self._update_due = True
        update = message.session_resumption_update
        if update is not None:
            self._update_due = False
            if update.resumable and update.new_handle:
                self.handle = update.new_handle
        if message.go_away is not None:
            self.go_away = message.go_away.time_left or "?"

    async def read_update(self) -> str | None:
        """Read on, after a completed turn, until its ``session_resumption_update`` (at
        most ``update_timeout_s`` s); return the newest handle."""
        if self._session is None or not self._update_due:
            return self.handle

        async def until_update() -> None:
            async for message in self._session.receive():
                self._note(message)
                if message.session_resumption_update is not None:
                    return

        try:
            await asyncio.wait_for(until_update(), timeout=self.update_timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            self._update_due = False  # go on with the handle we have
        return self.handle

    async def send_turn(self, text: str) -> AsyncIterator[types.LiveServerMessage]:
        """Send one user turn as realtime input (after reconnecting if a ``goAway`` is
        pending); yield the server's messages up to ``turn_complete``."""
        if self._session is None:
            raise RuntimeError("Use ResumableLiveSession in an 'async with' block.")
        await self.read_update()
        if self.go_away is not None:
            why = f"goAway (time left {self.go_away})"
            if len(self.reconnects) >= self.max_reconnects:
                raise RuntimeError(f"Gave up after {len(self.reconnects)} reconnections: {why}.")
            if self.handle is None:
                raise RuntimeError(f"Cannot resume the session ({why}): no resumption handle yet.")
            self.reconnects.append(why)
            self.go_away = None
            await self._close()
            await self._open()
        await self._session.send_realtime_input(text=text)
        async for message in self._session.receive():
            self._note(message)
            yield message

"""Resume broken streams: our patterns for faults the SDK does not retry by itself.

The SDK's ``HttpRetryOptions`` retry only the *first* response of a request (408, 429,
5xx and connection errors before any chunk). Two faults are left to you, and this
module packages what notebook 07 writes out by hand:

- :func:`resume_stream` / :func:`aresume_stream`: a ``generate_content_stream`` that
  breaks midway (an ``{"error": ...}`` event, a dropped connection) is resumed by
  asking the model to **continue** from the partial answer: the original contents,
  the partial answer as a model turn, and :data:`CONTINUE_PROMPT`. This is our
  pattern, not an SDK feature: the continuation is a new request (billed as one) and
  the model may word the seam a little differently than it would have.
- :class:`ResumableLiveSession`: a Live API session that follows ``goAway`` and
  ``sessionResumptionUpdate``: it keeps the latest resumption handle and, when the
  server has said it will close, reconnects with that handle before the next turn,
  so one conversation spans several WebSocket connections.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .display import chunk_text

if TYPE_CHECKING:
    from google import genai
    from google.genai import types

__all__ = [
    "CONTINUE_PROMPT",
    "RESUMABLE_CODES",
    "ResumableLiveSession",
    "ResumedStream",
    "aresume_stream",
    "continue_contents",
    "is_resumable",
    "resume_stream",
]

#: The user turn that asks the model to go on from a partial answer.
CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it from exactly where it stopped, "
    "without repeating anything."
)

#: API error codes worth another try: timeout, rate limit, server errors.
RESUMABLE_CODES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})


def is_resumable(exc: BaseException) -> bool:
    """Return whether a stream that failed with ``exc`` is worth resuming.

    True for an ``APIError`` whose code is in :data:`RESUMABLE_CODES` and for broken
    connections (httpx, httpx2 and aiohttp transport errors, ``ConnectionError``); False for
    anything else, such as a 400 or 403, which would fail again.
    """
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        return exc.code in RESUMABLE_CODES
    if isinstance(exc, ConnectionError):
        return True
    # The SDK's sync client uses httpx (or its fork httpx2), the async one aiohttp.
    for name in ("httpx", "httpx2"):
        module = sys.modules.get(name)
        if module is not None and isinstance(exc, module.TransportError):
            return True
    aiohttp = sys.modules.get("aiohttp")
    return aiohttp is not None and isinstance(
        exc, (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)
    )


def continue_contents(contents: Any, partial: str) -> list[types.Content]:
    """Return the contents of a continue request.

    Args:
        contents: The original request's contents (a string, a ``Content``, a list of
            them, or their dict form).
        partial: The text that arrived before the stream broke.

    Returns:
        The original contents, then ``partial`` as a ``model`` turn and
        :data:`CONTINUE_PROMPT` as a ``user`` turn. With no partial text, the original
        contents alone (start over).
    """
    from google.genai import _transformers, types

    turns = list(_transformers.t_contents(contents))
    if not partial:
        return turns
    return [
        *turns,
        types.Content(role="model", parts=[types.Part(text=partial)]),
        types.Content(role="user", parts=[types.Part(text=CONTINUE_PROMPT)]),
    ]


@dataclass
class ResumedStream:
    """What :func:`resume_stream` saw: the answer and the faults it resumed from.

    Attributes:
        pieces: The text of every chunk yielded, in order.
        errors: The exceptions that broke a stream and were resumed from.
        requests: Streaming requests made (1 when nothing broke).
    """

    pieces: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    requests: int = 0

    @property
    def text(self) -> str:
        """The whole answer so far: every piece joined."""
        return "".join(self.pieces)


def _check(max_resumes: int) -> None:
    if max_resumes < 0:
        raise ValueError(f"max_resumes must be >= 0, not {max_resumes}")


def _wait_before_resuming(
    seen: ResumedStream, exc: Exception, max_resumes: int, backoff_s: float
) -> float:
    """Record ``exc`` as resumed from and return the wait before the next request, in
    seconds; re-raise it when it is not resumable or ``max_resumes`` are used up."""
    if not is_resumable(exc) or len(seen.errors) >= max_resumes:
        raise exc
    seen.errors.append(exc)
    return backoff_s * 2 ** (len(seen.errors) - 1)


def resume_stream(
    client: genai.Client,
    *,
    model: str,
    contents: Any,
    config: Any = None,
    max_resumes: int = 2,
    backoff_s: float = 1.0,
    result: ResumedStream | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[types.GenerateContentResponse]:
    """Stream an answer, resuming with a continue request when the stream breaks.

    Yields the chunks of the first stream, then (after a break) those of each
    continue request, so the caller sees one answer. A break before any text retries
    the original request; a break after some text asks to continue
    (:func:`continue_contents`).

    Args:
        client: A ``genai.Client``.
        model: The model name.
        contents: The request's contents, as for ``generate_content_stream``.
        config: A ``GenerateContentConfig`` (or dict) for every request, or None.
        max_resumes: How many breaks to resume from before re-raising; >= 0.
        backoff_s: Wait before the first resume, in seconds; doubled for each next.
        result: A :class:`ResumedStream` to fill in (text, errors, request count).
        sleep: The wait function (tests pass a fake).

    Yields:
        ``GenerateContentResponse`` chunks, as ``generate_content_stream`` does.

    Raises:
        google.genai.errors.APIError: A fault that is not resumable
            (:func:`is_resumable`), or one more than ``max_resumes``.
        ValueError: ``max_resumes`` is negative.
    """
    _check(max_resumes)
    seen = result if result is not None else ResumedStream()
    while True:
        seen.requests += 1
        request = continue_contents(contents, seen.text)
        try:
            for chunk in client.models.generate_content_stream(
                model=model, contents=request, config=config
            ):
                seen.pieces.append(chunk_text(chunk))
                yield chunk
            return
        except Exception as exc:
            sleep(_wait_before_resuming(seen, exc, max_resumes, backoff_s))


async def aresume_stream(
    client: genai.Client,
    *,
    model: str,
    contents: Any,
    config: Any = None,
    max_resumes: int = 2,
    backoff_s: float = 1.0,
    result: ResumedStream | None = None,
) -> AsyncIterator[types.GenerateContentResponse]:
    """The async :func:`resume_stream`, with ``client.aio`` (same arguments and errors)."""
    _check(max_resumes)
    seen = result if result is not None else ResumedStream()
    while True:
        seen.requests += 1
        request = continue_contents(contents, seen.text)
        try:
            stream = await client.aio.models.generate_content_stream(
                model=model, contents=request, config=config
            )
            async for chunk in stream:
                seen.pieces.append(chunk_text(chunk))
                yield chunk
            return
        except Exception as exc:
            await asyncio.sleep(_wait_before_resuming(seen, exc, max_resumes, backoff_s))


class ResumableLiveSession:
    """A Live API conversation that reconnects with its resumption handle after ``goAway``.

    It asks for session resumption, keeps the newest handle from
    ``session_resumption_update`` (when ``resumable``), and notes ``go_away``. The
    server sends each turn's update right *after* its ``turn_complete`` (where
    ``session.receive()`` has already stopped), so before the next turn this class
    reads on until that update arrives. Then, if the server said it will close, it
    opens a new connection whose config carries the handle: the server continues the
    same conversation.

    Use it as an async context manager::

        async with ResumableLiveSession(client, model=MODEL, config=CONFIG) as live:
            async for message in live.send_turn("Hello"):
                ...

    Args:
        client: A ``genai.Client``.
        model: The Live API model.
        config: A ``LiveConnectConfig`` (or dict); its ``session_resumption`` is set.
        max_reconnects: Reconnections allowed in all; >= 0.
        update_timeout_s: How long to wait, after a turn, for its
            ``session_resumption_update`` before going on with the handle already
            known, in seconds; > 0.

    Attributes:
        handle: The newest resumable handle, or None before the first.
        reconnects: Why each reconnection happened (``"goAway (time left 10s)"`` ...).
        go_away: The pending ``goAway``'s ``time_left``, or None.

    Raises:
        ValueError: ``max_reconnects`` is negative or ``update_timeout_s`` is not positive.
    """

    def __init__(
        self,
        client: genai.Client,
        *,
        model: str,
        config: Any = None,
        max_reconnects: int = 3,
        update_timeout_s: float = 5.0,
    ) -> None:
        if max_reconnects < 0:
            raise ValueError(f"max_reconnects must be >= 0, not {max_reconnects}")
        if not update_timeout_s > 0:
            raise ValueError(f"update_timeout_s must be > 0, not {update_timeout_s}")
        from google.genai import types

        self.client = client
        self.model = model
        if config is None:
            config = types.LiveConnectConfig()
        elif isinstance(config, dict):
            config = types.LiveConnectConfig.model_validate(config)
        self.config: types.LiveConnectConfig = config
        self.max_reconnects = max_reconnects
        self.update_timeout_s = update_timeout_s
        self.handle: str | None = None
        self.reconnects: list[str] = []
        self.go_away: str | None = None
        self._update_due = False  # a turn completed; its update is not read yet
        self._context: Any = None
        self._session: Any = None

    async def _open(self) -> None:
        from google.genai import types

        # handle=None goes on the wire as {} (a new session), never as a null handle.
        config = self.config.model_copy(
            update={"session_resumption": types.SessionResumptionConfig(handle=self.handle)}
        )
        self._context = self.client.aio.live.connect(model=self.model, config=config)
        self._session = await self._context.__aenter__()
        self._update_due = False

    async def _close(self) -> None:
        context, self._context, self._session = self._context, None, None
        if context is not None:
            try:
                await context.__aexit__(None, None, None)
            except Exception:  # noqa: BLE001 - the old connection may be gone already
                pass

    async def __aenter__(self) -> ResumableLiveSession:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    def _note(self, message: types.LiveServerMessage) -> None:
        update = message.session_resumption_update
        if update is not None:
            self._update_due = False
            if update.resumable and update.new_handle:
                self.handle = update.new_handle
        if message.go_away is not None:
            self.go_away = message.go_away.time_left or "?"

    async def read_update(self) -> str | None:
        """Read on after a completed turn until its ``session_resumption_update`` arrives.

        Notes a ``go_away`` on the way. Waits at most ``update_timeout_s`` seconds; does
        nothing when the update was read already.

        Returns:
            The newest resumable handle (None before the first).

        Raises:
            google.genai.errors.APIError: The connection closed before the update came.
        """
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

    async def _reconnect(self, why: str) -> None:
        if len(self.reconnects) >= self.max_reconnects:
            raise RuntimeError(
                f"Gave up after {len(self.reconnects)} reconnections; the last reason: {why}."
            )
        if self.handle is None:
            raise RuntimeError(f"Cannot resume the session ({why}): no resumption handle yet.")
        self.reconnects.append(why)
        self.go_away = None
        await self._close()
        await self._open()

    async def send_turn(self, text: str) -> AsyncIterator[types.LiveServerMessage]:
        """Send one user turn as ``realtime_input.text``; yield the replies to ``turn_complete``.

        First reads the previous turn's ``session_resumption_update``
        (:meth:`read_update`) and reconnects when a ``goAway`` is pending. Notes every
        resumption handle and ``goAway`` on the way.

        Raises:
            google.genai.errors.APIError: The connection closed during the turn.
            RuntimeError: A reconnection was needed without a handle, or
                ``max_reconnects`` is used up.
        """
        if self._session is None:
            raise RuntimeError("Use ResumableLiveSession in an 'async with' block.")
        await self.read_update()
        if self.go_away is not None:
            await self._reconnect(f"goAway (time left {self.go_away})")
        # Text during the conversation goes as realtime input: on gemini-3.1-flash-live-preview
        # client content only seeds the initial history (docs/emulator-rules.md).
        await self._session.send_realtime_input(text=text)
        async for message in self._session.receive():
            self._note(message)
            content = message.server_content
            if content is not None and content.turn_complete:
                self._update_due = True
            yield message

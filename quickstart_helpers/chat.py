"""Conversation state for streaming chats: messages, their states, persistence.

A :class:`Conversation` holds the messages of one chat, in order. Each
:class:`Message` has a role (``user`` or ``model``), its text and a status that moves
through a small state machine::

    created ──> streaming ──> completed
       │            │
       │            └──────> failed   (the partial text is kept)
       ├───────────────────> completed (text known whole, e.g. a user message)
       └───────────────────> failed    (the request was refused before any chunk)

``completed`` and ``failed`` are final. Any other move raises
:class:`IllegalTransitionError`, and text can only be appended while a message is
``streaming``.

:func:`stream_reply` (and its async twin :func:`astream_reply`) drives an SDK chat
session's ``send_message_stream`` and keeps a conversation in step with it, chunk by
chunk, calling an optional callback on every state change. A conversation is saved to
``<store_dir>/<key>.json`` and loaded back into a new chat session's history::

    conversation = Conversation(model="gemini-2.5-flash", system_instruction="...")
    chat = conversation.open_chat(client)
    for chunk in stream_reply(chat, conversation, "Hello!"):
        print(chunk.text, end="")
    conversation.save(store_dir, "my-chat")

    restored = Conversation.load(store_dir, "my-chat")
    chat = restored.open_chat(client)  # the history is already in the session
"""

from __future__ import annotations

import inspect
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timezone
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Literal

from google.genai import errors, types
from pydantic import BaseModel, Field, ValidationError

from ._scrub import scrub
from .display import (
    UpdateThrottle,
    chunk_text,  # re-exported: the text of one chunk
)
from .errors import ConversationNotFoundError, IllegalTransitionError
from .settings import DEFAULT_TEXT_MODEL

__all__ = [
    "FINAL_STATES",
    "TRANSITIONS",
    "ChangeCallback",
    "Conversation",
    "ConversationNotFoundError",
    "IllegalTransitionError",
    "Message",
    "Role",
    "StateLog",
    "Status",
    "Usage",
    "astream_reply",
    "chunk_text",
    "describe_error",
    "format_history",
    "stream_reply",
]

Role = Literal["user", "model"]
Status = Literal["created", "streaming", "completed", "failed"]

#: The legal moves of a message's status: ``TRANSITIONS[now]`` is the set of next states.
TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"streaming", "completed", "failed"}),
    "streaming": frozenset({"completed", "failed"}),
    "completed": frozenset(),
    "failed": frozenset(),
}

#: States a message never leaves.
FINAL_STATES: frozenset[str] = frozenset({"completed", "failed"})

#: Version of the JSON file format written by :meth:`Conversation.save`.
FILE_FORMAT = 1

_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # used with fullmatch

#: A temporary file of a save older than this (seconds) is an orphan left by a crash.
ORPHAN_TMP_AGE_S = 60.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Usage(BaseModel):
    """Token counts of one model answer, from the last chunk's ``usageMetadata``.

    Attributes:
        prompt_token_count: Tokens in the request (history included).
        candidates_token_count: Tokens in the answer.
        total_token_count: Tokens billed for the request, thinking included.
    """

    prompt_token_count: int | None = None
    candidates_token_count: int | None = None
    total_token_count: int | None = None

    @classmethod
    def from_sdk(cls, usage: types.GenerateContentResponseUsageMetadata) -> Usage:
        """Copy the counts from the SDK's ``usage_metadata``."""
        return cls(
            prompt_token_count=usage.prompt_token_count,
            candidates_token_count=usage.candidates_token_count,
            total_token_count=usage.total_token_count,
        )


class Message(BaseModel):
    """One message of a conversation and where it is in its life.

    Attributes:
        id: Identifier, unique within its conversation (``msg-1``, ``msg-2`` ... when
            made by a :class:`Conversation`; a random hex string otherwise).
        role: ``"user"`` or ``"model"``.
        text: The text so far; grows chunk by chunk while ``streaming``.
        status: ``"created"``, ``"streaming"``, ``"completed"`` or ``"failed"``.
        created_at: When the message was made (UTC).
        updated_at: When it last changed (UTC).
        started_at: When streaming began (UTC), or None.
        finished_at: When it reached ``completed`` or ``failed`` (UTC), or None.
        chunk_count: How many chunks were appended.
        error: Why the message failed, or None.
        finish_reason: The model's finish reason (``"STOP"``, ``"MAX_TOKENS"`` ...),
            or None.
        usage: Token counts of a model answer, or None.
    """

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    role: Role
    text: str = ""
    status: Status = "created"
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    chunk_count: int = 0
    error: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None

    # -- state machine ---------------------------------------------------------------
    @property
    def is_final(self) -> bool:
        """Whether the message is ``completed`` or ``failed`` (it will not change)."""
        return self.status in FINAL_STATES

    def can_move_to(self, status: Status) -> bool:
        """Return whether ``status`` is a legal next state from the current one."""
        return status in TRANSITIONS[self.status]

    def _move(self, status: Status) -> None:
        if not self.can_move_to(status):
            legal = ", ".join(sorted(TRANSITIONS[self.status])) or "none, it is final"
            raise IllegalTransitionError(
                f"Message {self.id} ({self.role}) is {self.status}; it cannot become "
                f"{status}. Legal next states: {legal}."
            )
        now = _now()
        self.status = status
        self.updated_at = now
        if status == "streaming":
            self.started_at = now
        elif status in FINAL_STATES:
            self.finished_at = now

    def start(self) -> Message:
        """Move ``created`` -> ``streaming`` (the first chunk is on its way).

        Returns:
            self, for chaining.

        Raises:
            IllegalTransitionError: The message is not ``created``.
        """
        self._move("streaming")
        return self

    def append(self, chunk_text: str) -> Message:
        """Add one chunk's text to a ``streaming`` message.

        Args:
            chunk_text: The chunk's text (may be empty; it still counts as a chunk).

        Returns:
            self, for chaining.

        Raises:
            IllegalTransitionError: The message is not ``streaming``.
            TypeError: ``chunk_text`` is not a string.
        """
        if self.status != "streaming":
            raise IllegalTransitionError(
                f"Message {self.id} ({self.role}) is {self.status}; text can only be "
                "appended while it is streaming. Call start() first."
            )
        if not isinstance(chunk_text, str):
            raise TypeError(f"chunk_text must be a str, not {type(chunk_text).__name__}")
        self.text += chunk_text
        self.chunk_count += 1
        self.updated_at = _now()
        return self

    def complete(self, *, finish_reason: str | None = None, usage: Usage | None = None) -> Message:
        """Move ``created`` or ``streaming`` -> ``completed``.

        Args:
            finish_reason: The model's finish reason, e.g. ``"STOP"``.
            usage: Token counts of the answer.

        Returns:
            self, for chaining.

        Raises:
            IllegalTransitionError: The message is already ``completed`` or ``failed``.
        """
        self._move("completed")
        if finish_reason is not None:
            self.finish_reason = finish_reason
        if usage is not None:
            self.usage = usage
        return self

    def fail(self, error: str | BaseException) -> Message:
        """Move ``created`` or ``streaming`` -> ``failed``, keeping the partial text.

        Args:
            error: What went wrong: a message, or the exception (its type and text are
                kept).

        Returns:
            self, for chaining.

        Raises:
            IllegalTransitionError: The message is already ``completed`` or ``failed``.
        """
        self._move("failed")
        self.error = (
            describe_error(error) if isinstance(error, BaseException) else scrub(str(error))
        )
        return self

    def to_content(self) -> types.Content:
        """Return the message as a ``types.Content`` with one text part."""
        return types.Content(role=self.role, parts=[types.Part(text=self.text)])

    def summary(self, width: int = 40) -> str:
        """Return a one-line description of the message, its state and the start of its text.

        E.g. ``msg-2 model streaming (3 chunks, 97 chars) 'Tide pools are…'``.

        Args:
            width: Characters of text shown. Defaults to 40.
        """
        # Collapse the whitespace of a bounded prefix first: a summary per chunk stays
        # cheap however long the text grows.
        head = self.text[: 4 * width + 64]
        text = " ".join(head.split())
        if len(text) <= width and len(head) < len(self.text):
            text = " ".join(self.text.split())
        if len(text) > width:
            text = text[: width - 1] + "…"
        line = f"{self.id} {self.role} {self.status}"
        if self.role == "model":
            chunks = f"{self.chunk_count} chunk{'s' if self.chunk_count != 1 else ''}"
            line += f" ({chunks}, {len(self.text)} chars)"
        line += f" {text!r}"
        if self.error:
            line += f" error={self.error!r}"
        return line


def describe_error(error: BaseException) -> str:
    """Return a one-line description of an exception, at most 300 characters.

    An API error reads ``"ClientError 400 INVALID_ARGUMENT: <the API's message>"``;
    anything else ``"<Type>: <message>"``. API keys in the text are replaced by
    ``[redacted]`` (see :func:`quickstart_helpers._scrub.scrub`).
    """
    if isinstance(error, errors.APIError):
        text = f"{type(error).__name__} {error.code} {error.status}: {error.message}"
    else:
        text = f"{type(error).__name__}: {str(error) or '(no message)'}"
    text = scrub(text)
    return text if len(text) <= 300 else text[:299] + "…"


class Conversation(BaseModel):
    """The messages of one chat, in order, with the chat's settings.

    Attributes:
        model: Model the chat talks to, e.g. ``"gemini-2.5-flash"``.
        system_instruction: The persona or rules given to the model, or None.
        messages: The messages, oldest first.
        created_at: When the conversation began (UTC).
        format: Version of the saved file format.
    """

    format: int = FILE_FORMAT
    model: str = DEFAULT_TEXT_MODEL
    system_instruction: str | None = None
    messages: list[Message] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=_now)

    # -- building ----------------------------------------------------------------------
    def _next_id(self) -> str:
        taken = {m.id for m in self.messages}
        n = len(self.messages) + 1
        while f"msg-{n}" in taken:
            n += 1
        return f"msg-{n}"

    @property
    def in_progress(self) -> Message | None:
        """The model message that is ``created`` or ``streaming``, or None."""
        return next(
            (m for m in reversed(self.messages) if m.role == "model" and not m.is_final),
            None,
        )

    def add_user_message(self, text: str) -> Message:
        """Append the user's message; it is ``completed`` at once (its text is whole).

        Args:
            text: What the user typed.

        Returns:
            The new message.

        Raises:
            ValueError: ``text`` is empty or blank, or a model message is still in
                progress (finish or fail it first).
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("A user message needs some text; got an empty message.")
        self._check_idle()
        message = Message(id=self._next_id(), role="user", text=text)
        message.complete()
        self.messages.append(message)
        return message

    def start_model_message(self) -> Message:
        """Append an empty model message in state ``created``, to be streamed into.

        Returns:
            The new message; call ``start()``, ``append()``, then ``complete()`` or
            ``fail()`` on it.

        Raises:
            ValueError: The last message is not a user message waiting for an answer,
                or a model message is still in progress.
        """
        self._check_idle()
        if not self.messages or self.messages[-1].role != "user":
            raise ValueError(
                "A model message answers a user message: add one with add_user_message() first."
            )
        message = Message(id=self._next_id(), role="model")
        self.messages.append(message)
        return message

    def _check_idle(self) -> None:
        busy = self.in_progress
        if busy is not None:
            raise ValueError(
                f"Message {busy.id} is still {busy.status}; complete() or fail() it before "
                "adding another message."
            )

    # -- history -----------------------------------------------------------------------
    def turns(self) -> list[tuple[Message, Message | None]]:
        """Return (user message, model answer or None) pairs, in order."""
        pairs: list[tuple[Message, Message | None]] = []
        for message in self.messages:
            if message.role == "user":
                pairs.append((message, None))
            elif pairs and pairs[-1][1] is None:
                pairs[-1] = (pairs[-1][0], message)
        return pairs

    def to_history(self) -> list[types.Content]:
        """Return the history to seed a new chat session with, as ``types.Content``.

        Only whole turns count: a user message followed by a ``completed`` model
        answer. Failed or unanswered turns are left out, as the SDK's chat session
        leaves them out of its curated history, so the model never sees half an answer.

        Returns:
            Alternating ``user`` and ``model`` contents, one text part each.
        """
        history: list[types.Content] = []
        for user, answer in self.turns():
            if answer is not None and answer.status == "completed":
                history.extend([user.to_content(), answer.to_content()])
        return history

    def chat_config(self, **config: Any) -> types.GenerateContentConfig:
        """Return the chat's ``GenerateContentConfig`` (system instruction included).

        Args:
            **config: More ``GenerateContentConfig`` fields, e.g. ``temperature=0.2``.
        """
        if self.system_instruction is not None:
            config.setdefault("system_instruction", self.system_instruction)
        return types.GenerateContentConfig(**config)

    def open_chat(self, client: Any, **config: Any) -> Any:
        """Create a chat session (``client.chats.create``) holding this history.

        Args:
            client: A ``genai.Client``.
            **config: More ``GenerateContentConfig`` fields.

        Returns:
            A ``google.genai.chats.Chat`` whose next ``send_message_stream`` sends the
            conversation's whole turns first.
        """
        return client.chats.create(
            model=self.model, config=self.chat_config(**config), history=self.to_history()
        )

    def open_async_chat(self, client: Any, **config: Any) -> Any:
        """Like :meth:`open_chat`, for the async client (``client.aio.chats.create``)."""
        return client.aio.chats.create(
            model=self.model, config=self.chat_config(**config), history=self.to_history()
        )

    def transcript(self) -> str:
        """Return the messages as lines of ``role [status]: text``, for printing."""
        lines = []
        for m in self.messages:
            status = "" if m.status == "completed" else f" [{m.status}]"
            lines.append(f"{m.role}{status}: {m.text}")
        return "\n".join(lines)

    # -- persistence -------------------------------------------------------------------
    @staticmethod
    def path_for(store_dir: str | os.PathLike[str], key: str) -> Path:
        """Return the file a conversation is stored in: ``<store_dir>/<key>.json``.

        Raises:
            ValueError: ``key`` is not 1-128 letters, digits, ``_``, ``-`` or ``.``
                starting with a letter or digit (so it cannot leave ``store_dir``).
        """
        if not isinstance(key, str) or not _KEY_PATTERN.fullmatch(key):
            raise ValueError(
                f"Storage key {key!r} is not valid: use 1-128 letters, digits, '_', '-' "
                "or '.', starting with a letter or digit (e.g. 'support-chat-1')."
            )
        return Path(store_dir) / f"{key}.json"

    def save(self, store_dir: str | os.PathLike[str], key: str) -> Path:
        """Write the conversation to ``<store_dir>/<key>.json`` (UTF-8 JSON).

        The folder is created if needed. The file is written to a temporary name,
        flushed to disk (``fsync``) and renamed, so a crash never leaves half a file.
        Temporary files of this key left by an earlier crash (older than
        :data:`ORPHAN_TMP_AGE_S` seconds) are removed.

        Args:
            store_dir: Folder holding saved conversations.
            key: Storage key, e.g. ``"tutor-chat"``.

        Returns:
            The path written.

        Raises:
            ValueError: ``key`` is not a valid storage key.
        """
        path = self.path_for(store_dir, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        data = (self.model_dump_json(indent=2) + "\n").encode("utf-8")
        try:
            with open(tmp, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return path

    @classmethod
    def load(cls, store_dir: str | os.PathLike[str], key: str) -> Conversation:
        """Read a conversation saved by :meth:`save`.

        A model message saved while still ``created`` or ``streaming`` cannot resume,
        so it is loaded as ``failed`` (its partial text kept).

        Args:
            store_dir: Folder holding saved conversations.
            key: Storage key used when saving.

        Returns:
            The conversation.

        Raises:
            ConversationNotFoundError: No file is stored under ``key``; the message
                lists the keys that exist.
            ValueError: The key is not valid, or the file is not a saved conversation.
        """
        path = cls.path_for(store_dir, key)
        if not path.is_file():
            known = ", ".join(repr(k) for k in cls.keys(store_dir)) or "none"
            raise ConversationNotFoundError(
                f"No conversation is saved under the key {key!r} in {store_dir}. "
                f"Saved keys: {known}."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            conversation = cls.model_validate(data)
        except (json.JSONDecodeError, ValidationError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a saved conversation: {exc}") from exc
        except RecursionError:
            raise ValueError(
                f"{path} is not a saved conversation: its JSON is nested too deeply."
            ) from None
        if conversation.format > FILE_FORMAT:
            raise ValueError(
                f"{path} uses conversation file format {conversation.format}; this version "
                f"of quickstart_helpers reads format {FILE_FORMAT} or older. Upgrade it."
            )
        for message in conversation.messages:
            if not message.is_final:
                message.fail("The conversation was saved while this message was streaming.")
        return conversation

    @staticmethod
    def keys(store_dir: str | os.PathLike[str]) -> list[str]:
        """Return the storage keys of the conversations saved in ``store_dir``, sorted."""
        folder = Path(store_dir)
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.json") if _KEY_PATTERN.fullmatch(p.stem))


def _remove_orphans(path: Path) -> None:
    """Delete temporary files of ``path``'s saves left by a crash (older than a minute)."""
    limit = datetime.now().timestamp() - ORPHAN_TMP_AGE_S
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        try:
            if tmp.stat().st_mtime < limit:
                tmp.unlink()
        except OSError:  # another process removed or renamed it meanwhile
            pass


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk where the OS allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- driving an SDK chat session ----------------------------------------------------------

#: Called with the message after each state change: created, streaming, each chunk,
#: completed or failed. May be a coroutine function with :func:`astream_reply`.
ChangeCallback = Callable[[Message], Any]


def _finish_reason(chunk: types.GenerateContentResponse) -> str | None:
    if chunk.candidates and chunk.candidates[0].finish_reason:
        reason = chunk.candidates[0].finish_reason
        return getattr(reason, "value", None) or str(reason)
    return None


class _Tracker:
    """Shared bookkeeping of :func:`stream_reply` and :func:`astream_reply`."""

    def __init__(self, conversation: Conversation, text: str) -> None:
        self.conversation = conversation
        self.text = text
        self.reply: Message | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def begin(self) -> list[Message]:
        user = self.conversation.add_user_message(self.text)
        self.reply = self.conversation.start_model_message()
        return [user, self.reply]

    def on_chunk(self, chunk: types.GenerateContentResponse) -> list[Message]:
        assert self.reply is not None
        changed: list[Message] = []
        if self.reply.status == "created":
            changed.append(self.reply.start())
        self.finish_reason = _finish_reason(chunk) or self.finish_reason
        if chunk.usage_metadata is not None:
            self.usage = Usage.from_sdk(chunk.usage_metadata)
        text = chunk_text(chunk)
        if text:
            self.reply.append(text)
            if not changed:
                changed.append(self.reply)
        return changed

    def on_end(self) -> Message:
        assert self.reply is not None
        if self.reply.status == "created":
            self.reply.start()
        self.reply.usage = self.usage
        if self.finish_reason is None:
            return self.reply.fail(
                "The stream ended without a finish reason, so the answer may be cut short."
            )
        return self.reply.complete(finish_reason=self.finish_reason, usage=self.usage)

    def on_error(self, error: BaseException) -> Message | None:
        if self.reply is None or self.reply.is_final:
            return None
        self.reply.usage = self.usage
        if isinstance(error, GeneratorExit):
            return self.reply.fail("The caller stopped reading the stream before it ended.")
        return self.reply.fail(error)


def stream_reply(
    chat: Any,
    conversation: Conversation,
    text: str,
    *,
    on_change: ChangeCallback | None = None,
    config: types.GenerateContentConfigOrDict | None = None,
) -> Iterator[types.GenerateContentResponse]:
    """Send ``text`` with ``chat.send_message_stream`` and track it in ``conversation``.

    Adds the user message (``completed``) and a model message (``created``), moves the
    model message to ``streaming`` on the first chunk, appends each chunk's text, and
    ends it ``completed`` with the finish reason and token usage. If the request fails,
    the stream breaks or ``on_change`` raises, the model message ends ``failed`` with
    the error and the partial text, and the exception is raised again: no path leaves
    it ``created`` or ``streaming``. If the stream ends without a finish reason the
    message ends ``failed`` without raising.

    Args:
        chat: A ``google.genai.chats.Chat`` (from ``client.chats.create`` or
            :meth:`Conversation.open_chat`) whose history matches ``conversation``.
        conversation: The state to update.
        text: The user's message.
        on_change: Called with the changed message after each change (the user
            message added, the model message created, started, each chunk, completed or
            failed).
        config: Per-request ``GenerateContentConfig``, replacing the chat's.

    Yields:
        Each ``GenerateContentResponse`` chunk as the SDK gives it, after the state is
        updated.

    Raises:
        ValueError: ``text`` is empty or a model message is still in progress.
        google.genai.errors.APIError: The API refused the request (the model message is
            ``failed`` first). Network errors from a broken stream pass through the same
            way.
    """
    tracker = _Tracker(conversation, text)
    try:
        for message in tracker.begin():
            _notify(on_change, message)
        for chunk in chat.send_message_stream(text, config=config):
            for message in tracker.on_chunk(chunk):
                _notify(on_change, message)
            yield chunk
        _notify(on_change, tracker.on_end())
    except BaseException as exc:
        # Whatever failed (the request, the stream, a callback), the model message
        # ends ``failed`` before the error goes on: it never stays created/streaming.
        failed = tracker.on_error(exc)
        if failed is not None:
            try:
                _notify(on_change, failed)
            except Exception:  # noqa: BLE001 - the original error is the one to raise
                pass
        raise


async def astream_reply(
    chat: Any,
    conversation: Conversation,
    text: str,
    *,
    on_change: ChangeCallback | None = None,
    config: types.GenerateContentConfigOrDict | None = None,
) -> AsyncIterator[types.GenerateContentResponse]:
    """Async twin of :func:`stream_reply` for ``client.aio.chats`` sessions.

    ``on_change`` may be a plain function or a coroutine function (awaited).

    Args:
        chat: A ``google.genai.chats.AsyncChat`` (from ``client.aio.chats.create`` or
            :meth:`Conversation.open_async_chat`).
        conversation: The state to update.
        text: The user's message.
        on_change: Called with the changed message after each change.
        config: Per-request ``GenerateContentConfig``, replacing the chat's.

    Yields:
        Each ``GenerateContentResponse`` chunk, after the state is updated.

    Raises:
        ValueError: ``text`` is empty or a model message is still in progress.
        google.genai.errors.APIError: The API refused the request (the model message is
            ``failed`` first).
    """
    tracker = _Tracker(conversation, text)
    try:
        for message in tracker.begin():
            await _anotify(on_change, message)
        async for chunk in await chat.send_message_stream(text, config=config):
            for message in tracker.on_chunk(chunk):
                await _anotify(on_change, message)
            yield chunk
        await _anotify(on_change, tracker.on_end())
    except BaseException as exc:
        # Whatever failed (the request, the stream, a callback), the model message
        # ends ``failed`` before the error goes on: it never stays created/streaming.
        failed = tracker.on_error(exc)
        if failed is not None:
            try:
                await _anotify(on_change, failed)
            except Exception:  # noqa: BLE001 - the original error is the one to raise
                pass
        raise


def _notify(callback: ChangeCallback | None, message: Message) -> None:
    if callback is not None:
        callback(message)


async def _anotify(callback: ChangeCallback | None, message: Message) -> None:
    if callback is not None:
        result = callback(message)
        if inspect.isawaitable(result):
            await result


def format_history(history: list[types.Content], width: int | None = None) -> str:
    """Return a chat history as ``role: text`` lines, for printing between turns.

    Consecutive contents of the same role are joined into one line: the SDK keeps a
    streamed answer as one ``Content`` per chunk.

    Args:
        history: ``chat.get_history()`` or :meth:`Conversation.to_history`.
        width: Shorten each line's text to this many characters. Defaults to no limit.
    """
    lines: list[list[str]] = []
    for content in history:
        role = content.role or "user"
        text = "".join(p.text for p in content.parts or [] if p.text and not p.thought)
        if lines and lines[-1][0] == role:
            lines[-1][1] += text
        else:
            lines.append([role, text])
    out = []
    for role, text in lines:
        text = " ".join(text.split())
        if width is not None and len(text) > width:
            text = text[: width - 1] + "…"
        out.append(f"{role}: {text}")
    return "\n".join(out)


class StateLog:
    """An ``on_change`` callback that records every state change as a line.

    Each line is :meth:`Message.summary`, e.g.
    ``msg-2 model streaming (3 chunks, 97 chars) 'Tide pools are…'``. With ``live=True`` in
    Jupyter, the latest line is also shown in one output that updates in place: every
    change to ``created``, ``completed`` or ``failed`` at once, ``streaming`` changes at
    most :data:`~quickstart_helpers.display.MAX_UPDATES_PER_SECOND` times a second.

    Args:
        live: Show the latest line while the stream runs (Jupyter only). Defaults to
            False.
        width: Characters of message text kept in each line. Defaults to 40.

    Attributes:
        lines: The recorded lines, oldest first.
    """

    def __init__(self, *, live: bool = False, width: int = 40) -> None:
        self.lines: list[str] = []
        self.width = width
        self.live = live
        self._handle: Any = None
        self._throttle = UpdateThrottle()

    def __call__(self, message: Message) -> None:
        line = message.summary(self.width)
        self.lines.append(line)
        if self.live and (message.status != "streaming" or self._throttle.ready()):
            self._show(line)

    def _show(self, line: str) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:  # pragma: no cover - IPython is a dependency
            return
        shell = get_ipython()
        if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
            return
        text = {"text/plain": f"[state] {line}"}
        if self._handle is None:
            self._handle = display(text, raw=True, display_id=True)
        else:
            self._handle.update(text, raw=True)

    def clear(self) -> None:
        """Forget the recorded lines (and start a new live output next time)."""
        self.lines.clear()
        self._handle = None

    def __str__(self) -> str:
        return "\n".join(self.lines)

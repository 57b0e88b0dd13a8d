"""Chat state for streaming chats: messages, their states, conversations saved by key.

A :class:`Message` goes ``created`` -> ``streaming`` -> ``completed`` or ``failed`` (partial
text kept), or from ``created`` straight to either (:data:`TRANSITIONS`). :func:`stream_reply`
keeps a :class:`Conversation` in step with an SDK chat's ``send_message_stream``;
:meth:`Conversation.save` and :meth:`Conversation.load` keep it on disk under a key, and
:meth:`Conversation.open_chat` opens a chat with its history again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timezone
from glob import escape
from pathlib import Path
from typing import Any, Literal

from google.genai import errors, types
from pydantic import BaseModel, Field, ValidationError

from ._scrub import scrub
from .display import UpdateThrottle, chunk_text, in_notebook
from .errors import ConversationNotFoundError, IllegalTransitionError
from .settings import DEFAULT_TEXT_MODEL

Status = Literal["created", "streaming", "completed", "failed"]

#: The state machine: ``TRANSITIONS[status]`` is where a message may go next.
TRANSITIONS: dict[str, set[str]] = {
    "created": {"streaming", "completed", "failed"},
    "streaming": {"completed", "failed"},
    "completed": set(),
    "failed": set(),
}
#: Token counts of an answer: the SDK's own type, from the chunks' ``usage_metadata``.
Usage = types.GenerateContentResponseUsageMetadata
FILE_FORMAT = 1  # the version of the JSON Conversation.save writes
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # a storage key (fullmatch)
_now = functools.partial(datetime.now, timezone.utc)


class Message(BaseModel):
    """One message and where it is in its life (times in UTC)."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    role: Literal["user", "model"]
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

    @property
    def is_final(self) -> bool:
        """Whether the message is ``completed`` or ``failed``: it will not change."""
        return not TRANSITIONS[self.status]

    def can_move_to(self, status: Status) -> bool:
        return status in TRANSITIONS[self.status]

    def _move(self, status: Status) -> Message:
        if not self.can_move_to(status):
            legal = ", ".join(sorted(TRANSITIONS[self.status])) or "none, it is final"
            raise IllegalTransitionError(
                f"Message {self.id} ({self.role}) is {self.status}; it cannot become "
                f"{status}. Legal next states: {legal}."
            )
        self.status, self.updated_at = status, _now()
        if status == "streaming":
            self.started_at = self.updated_at
        else:
            self.finished_at = self.updated_at
        return self

    def start(self) -> Message:
        return self._move("streaming")

    def append(self, text: str) -> Message:
        """Add one chunk's text (an empty one counts as a chunk too) while ``streaming``."""
        if self.status != "streaming":
            raise IllegalTransitionError(
                f"Message {self.id} ({self.role}) is {self.status}; text can only be "
                "appended while it is streaming. Call start() first."
            )
        self.text += text  # a str: Python refuses bytes with a TypeError
        self.chunk_count += 1
        self.updated_at = _now()
        return self

    def complete(self, *, finish_reason: str | None = None, usage: Usage | None = None) -> Message:
        """``created`` or ``streaming`` -> ``completed``, with the finish reason and usage."""
        self._move("completed")
        self.finish_reason = finish_reason or self.finish_reason
        self.usage = usage or self.usage
        return self

    def fail(self, error: str | BaseException) -> Message:
        """``created`` or ``streaming`` -> ``failed``, keeping the partial text; ``error``
        is kept as ``"<Type>: <message>"``, API keys redacted."""
        self._move("failed")
        if isinstance(error, errors.APIError):
            error = f"{type(error).__name__} {error.code} {error.status}: {error.message}"
        elif isinstance(error, BaseException):
            error = f"{type(error).__name__}: {str(error) or '(no message)'}"
        self.error = scrub(error)[:300]
        return self

    def summary(self, width: int = 40) -> str:
        """One line: ``msg-2 model streaming (3 chunks, 97 chars) 'Tide pools are…'``."""
        text = " ".join(self.text.split())
        line = f"{self.id} {self.role} {self.status}"
        if self.role == "model":
            s = "" if self.chunk_count == 1 else "s"
            line += f" ({self.chunk_count} chunk{s}, {len(self.text)} chars)"
        line += f" {text if len(text) <= width else text[: width - 1] + '…'!r}"
        return line + (f" error={self.error!r}" if self.error else "")


class Conversation(BaseModel):
    """The messages of one chat, oldest first, with its model and system instruction."""

    format: int = FILE_FORMAT
    model: str = DEFAULT_TEXT_MODEL
    system_instruction: str | None = None
    messages: list[Message] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=_now)

    @property
    def in_progress(self) -> Message | None:
        """The model message that is ``created`` or ``streaming``, or None."""
        return next((m for m in self.messages if not m.is_final), None)

    def _add(self, role: Literal["user", "model"], text: str = "") -> Message:
        if busy := self.in_progress:
            raise ValueError(f"Message {busy.id} is still {busy.status}: complete() or fail() it.")
        self.messages.append(Message(id=f"msg-{len(self.messages) + 1}", role=role, text=text))
        return self.messages[-1]

    def add_user_message(self, text: str) -> Message:
        """Append the user's message, ``completed`` at once (its text is whole)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("A user message needs some text; got an empty message.")
        return self._add("user", text).complete()

    def start_model_message(self) -> Message:
        """Append an empty model message (``created``) answering the last user message."""
        if self.in_progress is None and (not self.messages or self.messages[-1].role != "user"):
            raise ValueError("A model message answers a user message: add_user_message() first.")
        return self._add("model")

    def to_history(self) -> list[types.Content]:
        """The history for a new chat session: whole turns only (a user message and its
        ``completed`` answer), as the SDK's curated history leaves failed turns out."""
        history: list[types.Content] = []
        for user, answer in zip(self.messages, self.messages[1:], strict=False):
            if user.role == "user" and answer.role == "model" and answer.status == "completed":
                history += [types.UserContent(user.text), types.ModelContent(answer.text)]
        return history

    def open_chat(self, client: Any) -> Any:
        """``client.chats.create`` with this model, system instruction and history (for
        :func:`astream_reply`, pass ``client.aio``)."""
        config = types.GenerateContentConfig(system_instruction=self.system_instruction)
        return client.chats.create(model=self.model, config=config, history=self.to_history())

    @staticmethod
    def _path(store_dir: str | os.PathLike[str], key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(
                f"Storage key {key!r} is not valid: use 1-128 letters, digits, '_', '-' "
                "or '.', starting with a letter or digit (e.g. 'support-chat-1')."
            )
        return Path(store_dir) / f"{key}.json"

    def save(self, store_dir: str | os.PathLike[str], key: str) -> Path:
        """Write ``<store_dir>/<key>.json`` via a temporary file, flushed to disk and
        renamed: a crash never leaves half a file (nor, after a minute, its temporary)."""
        path = self._path(store_dir, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        for orphan in path.parent.glob(f".{escape(path.name)}.*.tmp"):
            with contextlib.suppress(OSError):  # another process may have removed it
                if orphan.stat().st_mtime < time.time() - 60:
                    orphan.unlink()
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as file:
                file.write(self.model_dump_json(indent=2, exclude_none=True).encode() + b"\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, store_dir: str | os.PathLike[str], key: str) -> Conversation:
        """Read a conversation :meth:`save` wrote (a message saved mid-stream is loaded
        ``failed``); ``ConversationNotFoundError`` lists the saved keys."""
        path = cls._path(store_dir, key)
        if not path.is_file():
            raise ConversationNotFoundError(
                f"No conversation is saved under the key {key!r} in {store_dir}. "
                f"Saved keys: {', '.join(map(repr, cls.keys(store_dir))) or 'none'}."
            )
        try:
            conversation = cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise ValueError(f"{path} is not a saved conversation: {exc}") from None
        if conversation.format > FILE_FORMAT:
            raise ValueError(
                f"{path} has conversation file format {conversation.format}; this version "
                f"reads format {FILE_FORMAT} or older: upgrade quickstart_helpers."
            )
        for message in conversation.messages:
            if not message.is_final:
                message.fail("The conversation was saved while this message was streaming.")
        return conversation

    @staticmethod
    def keys(store_dir: str | os.PathLike[str]) -> list[str]:
        """The storage keys of the conversations saved in ``store_dir``, sorted."""
        return sorted(p.stem for p in Path(store_dir).glob("*.json") if _KEY.fullmatch(p.stem))


def _take(reply: Message, chunk: types.GenerateContentResponse) -> bool:
    """Update ``reply`` with one chunk; return whether it changed."""
    text, created = chunk_text(chunk), reply.status == "created"
    if created:
        reply.start()
    if chunk.candidates and chunk.candidates[0].finish_reason:
        reply.finish_reason = chunk.candidates[0].finish_reason.value
    reply.usage = chunk.usage_metadata or reply.usage
    if text:
        reply.append(text)
    return created or bool(text)


def _end(reply: Message, error: BaseException | None = None) -> Message:
    """End ``reply``: ``completed``, or ``failed`` with ``error`` or when no finish reason
    came (the answer may be cut short)."""
    if isinstance(error, GeneratorExit):
        error = "The caller stopped reading the stream before it ended."
    elif error is None and reply.finish_reason is None:
        error = "The stream ended without a finish reason: it may be cut short."
    if reply.status == "created" and error is None:
        reply.start()
    return reply.complete() if error is None else reply.fail(error)


@contextlib.contextmanager
def _turn(
    conversation: Conversation, text: str, notify: Callable[[Message], Any]
) -> Iterator[Message]:
    """Add the user message and the model's reply, and end the reply: ``completed``, or
    ``failed`` with its partial text whatever breaks (the request, the stream, the caller
    stopping early, ``notify``); the error goes on."""
    user = conversation.add_user_message(text)
    reply = conversation.start_model_message()
    try:
        notify(user)
        notify(reply)
        yield reply
        notify(_end(reply))
    except BaseException as exc:
        if not reply.is_final:
            _end(reply, exc)
            with contextlib.suppress(Exception):  # the original error is the one to raise
                notify(reply)
        raise


def stream_reply(
    chat: Any,
    conversation: Conversation,
    text: str,
    *,
    on_change: Callable[[Message], Any] | None = None,
) -> Iterator[types.GenerateContentResponse]:
    """Send ``text`` with ``chat.send_message_stream`` (from :meth:`Conversation.open_chat`)
    and yield each chunk once ``conversation`` has it: the model message ``streaming`` with
    its text, then ``completed`` with the finish reason and usage, or ``failed``.
    ``on_change`` gets each changed message."""
    notify = on_change or (lambda message: None)
    with _turn(conversation, text, notify) as reply:
        for chunk in chat.send_message_stream(text):
            if _take(reply, chunk):
                notify(reply)
            yield chunk


async def astream_reply(
    chat: Any,
    conversation: Conversation,
    text: str,
    *,
    on_change: Callable[[Message], Any] | None = None,
) -> AsyncIterator[types.GenerateContentResponse]:
    """:func:`stream_reply` for ``client.aio.chats``."""
    notify = on_change or (lambda message: None)
    with _turn(conversation, text, notify) as reply:
        async for chunk in await chat.send_message_stream(text):
            if _take(reply, chunk):
                notify(reply)
            yield chunk


class StateLog:
    """An ``on_change`` callback that keeps each change as a :meth:`Message.summary` line;
    with ``live=True`` in Jupyter it also shows the latest in one output updated in place
    (``streaming`` changes at most ``MAX_UPDATES_PER_SECOND`` a second)."""

    def __init__(self, *, live: bool = False) -> None:
        self.lines: list[str] = []
        self.live = live
        self.handle: Any = None
        self.throttle = UpdateThrottle()

    def __call__(self, message: Message) -> None:
        self.lines.append(line := message.summary())
        if self.live and in_notebook() and (message.status != "streaming" or self.throttle.ready()):
            from IPython.display import display

            bundle = {"text/plain": f"[state] {line}"}
            if self.handle is None:
                self.handle = display(bundle, raw=True, display_id=True)
            else:
                self.handle.update(bundle, raw=True)

    def clear(self) -> None:
        """Forget the lines (and start a new live output next time)."""
        self.lines.clear()
        self.handle = None

    def __str__(self) -> str:
        return "\n".join(self.lines)

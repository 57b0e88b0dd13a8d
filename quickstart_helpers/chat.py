"""Chat state for streaming chats: messages, their states, conversations saved by key.

A :class:`Message` has a role (``user`` or ``model``), its text and a status that moves
through a small state machine::

    created ──> streaming ──> completed
       │            └──────> failed    (the partial text is kept)
       ├───────────────────> completed (text known whole, e.g. a user message)
       └───────────────────> failed    (the request was refused before any chunk)

Any other move raises :class:`IllegalTransitionError`, and text is appended only while
``streaming``. A :class:`Conversation` holds a chat's messages. :func:`stream_reply`
drives an SDK chat's ``send_message_stream`` and keeps the conversation in step, chunk
by chunk, calling ``on_change`` at each change. A conversation is saved as
``<store_dir>/<key>.json`` and loaded back into a new chat session's history::

    conversation = Conversation(model="gemini-3.8-flash", system_instruction="...")
    chat = conversation.open_chat(client)
    for chunk in stream_reply(chat, conversation, "Hello!"):
        print(chunk.text, end="")
    conversation.save(store_dir, "my-chat")
    chat = Conversation.load(store_dir, "my-chat").open_chat(client)  # history included
"""

from __future__ import annotations

import contextlib
import inspect
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
from .display import UpdateThrottle, chunk_text
from .errors import ConversationNotFoundError, IllegalTransitionError
from .paths import in_notebook_kernel
from .settings import DEFAULT_TEXT_MODEL

Status = Literal["created", "streaming", "completed", "failed"]

#: The state machine: ``TRANSITIONS[status]`` is where a message may go next.
TRANSITIONS: dict[str, set[str]] = {
    "created": {"streaming", "completed", "failed"},
    "streaming": {"completed", "failed"},
    "completed": set(),
    "failed": set(),
}

#: Token counts of an answer: the SDK's own type, from the last chunk's ``usage_metadata``.
Usage = types.GenerateContentResponseUsageMetadata

FILE_FORMAT = 1  # version of the JSON that Conversation.save writes
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # a storage key, with fullmatch


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _describe(error: BaseException) -> str:
    """``"ClientError 400 INVALID_ARGUMENT: <the API's message>"`` or ``"<Type>: <message>"``,
    at most 300 characters, API keys replaced by ``[redacted]``."""
    if isinstance(error, errors.APIError):
        text = f"{type(error).__name__} {error.code} {error.status}: {error.message}"
    else:
        text = f"{type(error).__name__}: {str(error) or '(no message)'}"
    text = scrub(text)
    return text if len(text) <= 300 else text[:299] + "…"


class Message(BaseModel):
    """One message of a conversation and where it is in its life.

    ``id`` is unique in its conversation (``msg-1``, ``msg-2``...), ``chunk_count``
    counts the chunks appended, ``error`` says why it failed, ``finish_reason`` and
    ``usage`` come from the model's stream. Times are UTC: ``updated_at`` is the last
    change, ``started_at`` when streaming began, ``finished_at`` when it became final.
    """

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
        """``created`` -> ``streaming``: the first chunk is on its way."""
        return self._move("streaming")

    def append(self, text: str) -> Message:
        """Add one chunk's text (it counts as a chunk even when empty) while ``streaming``."""
        if self.status != "streaming":
            raise IllegalTransitionError(
                f"Message {self.id} ({self.role}) is {self.status}; text can only be "
                "appended while it is streaming. Call start() first."
            )
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        self.text += text
        self.chunk_count += 1
        self.updated_at = _now()
        return self

    def complete(self, *, finish_reason: str | None = None, usage: Usage | None = None) -> Message:
        """``created`` or ``streaming`` -> ``completed``, with the model's finish reason
        (e.g. ``"STOP"``) and token usage when known."""
        self._move("completed")
        self.finish_reason = finish_reason or self.finish_reason
        self.usage = usage or self.usage
        return self

    def fail(self, error: str | BaseException) -> Message:
        """``created`` or ``streaming`` -> ``failed``, keeping the partial text; ``error``
        is a message or the exception (its type and text are kept, keys redacted)."""
        self._move("failed")
        self.error = _describe(error) if isinstance(error, BaseException) else scrub(error)
        return self

    def summary(self, width: int = 40) -> str:
        """One line: ``msg-2 model streaming (3 chunks, 97 chars) 'Tide pools are…'``."""
        head = self.text[: 4 * width + 64]  # a bounded prefix: cheap at any length
        text = " ".join(head.split())
        if len(text) <= width and len(head) < len(self.text):
            text = " ".join(self.text.split())
        if len(text) > width:
            text = text[: width - 1] + "…"
        line = f"{self.id} {self.role} {self.status}"
        if self.role == "model":
            s = "" if self.chunk_count == 1 else "s"
            line += f" ({self.chunk_count} chunk{s}, {len(self.text)} chars)"
        return line + f" {text!r}" + (f" error={self.error!r}" if self.error else "")


class Conversation(BaseModel):
    """The messages of one chat, oldest first, with the chat's model and system
    instruction; ``format`` is the saved file's version."""

    format: int = FILE_FORMAT
    model: str = DEFAULT_TEXT_MODEL
    system_instruction: str | None = None
    messages: list[Message] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=_now)

    @property
    def in_progress(self) -> Message | None:
        """The model message that is ``created`` or ``streaming``, or None."""
        return next((m for m in self.messages if m.role == "model" and not m.is_final), None)

    def _add(self, role: Literal["user", "model"], text: str = "") -> Message:
        busy = self.in_progress
        if busy is not None:
            raise ValueError(
                f"Message {busy.id} is still {busy.status}; complete() or fail() it before "
                "adding another message."
            )
        taken, n = {m.id for m in self.messages}, len(self.messages) + 1
        while f"msg-{n}" in taken:
            n += 1
        self.messages.append(Message(id=f"msg-{n}", role=role, text=text))
        return self.messages[-1]

    def add_user_message(self, text: str) -> Message:
        """Append the user's message, ``completed`` at once (its text is whole).

        Raises:
            ValueError: ``text`` is blank, or a model message is still in progress.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("A user message needs some text; got an empty message.")
        return self._add("user", text).complete()

    def start_model_message(self) -> Message:
        """Append an empty model message (``created``) answering the last user message.

        Raises:
            ValueError: A model message is in progress, or the last message is not a user's.
        """
        if self.in_progress is None and (not self.messages or self.messages[-1].role != "user"):
            raise ValueError(
                "A model message answers a user message: add one with add_user_message() first."
            )
        return self._add("model")

    def to_history(self) -> list[types.Content]:
        """The history for a new chat session: whole turns only (a user message and its
        ``completed`` answer), as the SDK's curated history leaves failed turns out."""
        history = []
        for user, answer in zip(self.messages, self.messages[1:], strict=False):
            if user.role == "user" and answer.role == "model" and answer.status == "completed":
                history += [
                    types.Content(role="user", parts=[types.Part(text=user.text)]),
                    types.Content(role="model", parts=[types.Part(text=answer.text)]),
                ]
        return history

    def chat_config(self, **config: Any) -> types.GenerateContentConfig:
        """The chat's ``GenerateContentConfig``: the system instruction and ``config``."""
        if self.system_instruction is not None:
            config.setdefault("system_instruction", self.system_instruction)
        return types.GenerateContentConfig(**config)

    def open_chat(self, client: Any, **config: Any) -> Any:
        """``client.chats.create`` with this model, config and history."""
        history = self.to_history()
        return client.chats.create(
            model=self.model, config=self.chat_config(**config), history=history
        )

    def open_async_chat(self, client: Any, **config: Any) -> Any:
        """``client.aio.chats.create`` with this model, config and history."""
        history = self.to_history()
        return client.aio.chats.create(
            model=self.model, config=self.chat_config(**config), history=history
        )

    @staticmethod
    def path_for(store_dir: str | os.PathLike[str], key: str) -> Path:
        """``<store_dir>/<key>.json``; a key is 1-128 letters, digits, ``_``, ``-`` or ``.``
        starting with a letter or digit, so it cannot leave ``store_dir`` (else ValueError)."""
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(
                f"Storage key {key!r} is not valid: use 1-128 letters, digits, '_', '-' "
                "or '.', starting with a letter or digit (e.g. 'support-chat-1')."
            )
        return Path(store_dir) / f"{key}.json"

    def save(self, store_dir: str | os.PathLike[str], key: str) -> Path:
        """Write the conversation to ``<store_dir>/<key>.json`` and return that path.

        It is written to a temporary file, flushed to disk and renamed, so a crash never
        leaves half a file; temporary files of this key a crash left (a minute old) go.
        """
        path = self.path_for(store_dir, key)
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
        """Read a conversation :meth:`save` wrote. A model message saved mid-stream cannot
        resume: it is loaded ``failed``, its partial text kept.

        Raises:
            ConversationNotFoundError: Nothing is saved under ``key`` (the message lists
                the saved keys).
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
            conversation = cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise ValueError(f"{path} is not a saved conversation: {exc}") from None
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
        """The storage keys of the conversations saved in ``store_dir``, sorted."""
        return sorted(p.stem for p in Path(store_dir).glob("*.json") if _KEY.fullmatch(p.stem))


#: Called with the message after each change: the user message added, the model message
#: created, started, each chunk, completed or failed (a coroutine function for astream_reply).
ChangeCallback = Callable[[Message], Any]


class _Turn:
    """A user message and the model's reply, kept in step with the reply's stream."""

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.reply: Message | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def begin(self, text: str) -> list[Message]:
        user = self.conversation.add_user_message(text)
        self.reply = self.conversation.start_model_message()
        return [user, self.reply]

    def add(self, chunk: types.GenerateContentResponse) -> Message | None:
        """Take one chunk; return the reply if it changed."""
        reply, text = self.reply, chunk_text(chunk)
        changed = reply.status == "created" or bool(text)
        if reply.status == "created":
            reply.start()
        if chunk.candidates and chunk.candidates[0].finish_reason:
            self.finish_reason = chunk.candidates[0].finish_reason.value
        self.usage = chunk.usage_metadata or self.usage
        if text:
            reply.append(text)
        return reply if changed else None

    def end(self) -> Message:
        if self.reply.status == "created":
            self.reply.start()
        self.reply.usage = self.usage
        if self.finish_reason is None:
            return self.reply.fail(
                "The stream ended without a finish reason, so the answer may be cut short."
            )
        return self.reply.complete(finish_reason=self.finish_reason)

    def fail(self, error: BaseException) -> Message | None:
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

    Adds the user message (``completed``) and a model message (``created``), which
    becomes ``streaming`` at the first chunk, gets each chunk's text, and ends
    ``completed`` with the finish reason and usage. Yields each chunk after the state is
    updated. If the request is refused, the stream breaks, the caller stops reading or
    ``on_change`` raises, the model message ends ``failed`` (partial text kept) and the
    error goes on: no path leaves it in progress. A stream that ends without a finish
    reason leaves it ``failed`` without raising.

    Args:
        chat: A ``google.genai.chats.Chat`` whose history matches ``conversation``
            (e.g. from :meth:`Conversation.open_chat`).
        on_change: Called with the changed message after each change.
        config: Per-request ``GenerateContentConfig``, replacing the chat's.

    Raises:
        ValueError: ``text`` is empty or a model message is still in progress.
        google.genai.errors.APIError: The API refused the request.
    """
    turn = _Turn(conversation)
    notify = on_change or (lambda message: None)
    try:
        for message in turn.begin(text):
            notify(message)
        for chunk in chat.send_message_stream(text, config=config):
            if changed := turn.add(chunk):
                notify(changed)
            yield chunk
        notify(turn.end())
    except BaseException as exc:
        failed = turn.fail(exc)
        if failed is not None:
            with contextlib.suppress(Exception):  # the original error is the one to raise
                notify(failed)
        raise


async def astream_reply(
    chat: Any,
    conversation: Conversation,
    text: str,
    *,
    on_change: ChangeCallback | None = None,
    config: types.GenerateContentConfigOrDict | None = None,
) -> AsyncIterator[types.GenerateContentResponse]:
    """Async twin of :func:`stream_reply` for ``client.aio.chats`` sessions;
    ``on_change`` may be a coroutine function."""

    async def notify(message: Message) -> None:
        result = on_change(message) if on_change else None
        if inspect.isawaitable(result):
            await result

    turn = _Turn(conversation)
    try:
        for message in turn.begin(text):
            await notify(message)
        async for chunk in await chat.send_message_stream(text, config=config):
            if changed := turn.add(chunk):
                await notify(changed)
            yield chunk
        await notify(turn.end())
    except BaseException as exc:
        failed = turn.fail(exc)
        if failed is not None:
            with contextlib.suppress(Exception):
                await notify(failed)
        raise


def format_history(history: list[types.Content], width: int | None = None) -> str:
    """A chat history as ``role: text`` lines, each cut to ``width`` characters if given.

    Contents of the same role in a row are one line: the SDK keeps a streamed answer as
    one ``Content`` per chunk. Thoughts are left out.
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
    """An ``on_change`` callback that records each change as a :meth:`Message.summary` line.

    With ``live=True`` in Jupyter the latest line is also shown in one output updated in
    place: changes to ``created``, ``completed`` or ``failed`` at once, ``streaming`` ones
    at most :data:`~quickstart_helpers.display.MAX_UPDATES_PER_SECOND` times a second.
    """

    def __init__(self, *, live: bool = False, width: int = 40) -> None:
        self.lines: list[str] = []
        self.live, self.width = live, width
        self.handle: Any = None
        self.throttle = UpdateThrottle()

    def __call__(self, message: Message) -> None:
        line = message.summary(self.width)
        self.lines.append(line)
        if not (self.live and in_notebook_kernel()):
            return
        if message.status != "streaming" or self.throttle.ready():
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

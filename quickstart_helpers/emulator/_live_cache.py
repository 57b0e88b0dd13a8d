"""Live API server messages rendered once per cassette turn and reused.

Rendering a cassette message (:func:`quickstart_helpers.emulator._live.render_message`)
copies its JSON, slices its WAV file, base64-encodes the PCM and dumps the JSON: for an
audio chunk that is most of the emulator's CPU per message. The result depends only on
the cassette, the turn, the message and whether the session asked for output
transcription, so the emulator renders each message the first time a session sends it
and keeps the exact wire bytes for every later session.

An entry is keyed by the cassette object, the turn object and the transcription flag,
and is checked before use: it is dropped and rendered again when the cassette object
is another one (a reloaded store), the turn's messages were replaced, the cassette's
folder changed or one of the turn's WAV files changed on disk (size or modification
time). Messages are treated as immutable once loaded, as the store does: replace a
message (or the cassette) rather than editing its dictionary in place, or call
:func:`clear`.

Memory is bounded: at most ``max_bytes`` of rendered messages (64 MiB by default; the
shipped Live cassettes take about 2.3 MB per transcription setting) in at most
``max_turns`` turns, least recently used turns evicted first. A turn larger than the
whole budget is rendered on every send and never stored.
"""

from __future__ import annotations

import operator
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._cassette import LiveCassette, LiveMessage, LiveTurn

__all__ = ["LiveRenderCache", "RenderedTurn", "clear", "rendered_turn"]

#: A function returning the wire bytes of one message, or None when it sends nothing.
Render = Callable[["LiveMessage"], "bytes | None"]

_MISSING = object()
_Key = tuple[int, int, bool]


def _folder(cassette: LiveCassette) -> Path:
    """The folder a cassette's audio file names are relative to (as render_message)."""
    return cassette.path.parent if cassette.path else Path.cwd()


def _audio_files(folder: Path, turn: LiveTurn) -> tuple[str, ...]:
    names = sorted({m.audio.file for m in turn.messages if m.audio is not None})
    return tuple(os.fspath(folder / name) for name in names)


def _file_stamp(files: tuple[str, ...]) -> tuple[tuple[int, int] | None, ...]:
    """Size and modification time of each file (None if it cannot be read)."""
    stamp = []
    for name in files:
        try:
            stat = os.stat(name)
            stamp.append((stat.st_size, stat.st_mtime_ns))
        except OSError:
            stamp.append(None)  # render_message reports the error
    return tuple(stamp)


class RenderedTurn:
    """The wire bytes of one cassette turn's messages, each rendered on first use.

    ``rendered[i]`` is the bytes message ``i`` of the turn sends (compact JSON, UTF-8),
    or None when it sends nothing. Errors of the renderer (``ValueError`` for a bad
    audio slice) are raised by the lookup of that message, as rendering it would.
    """

    def __init__(
        self,
        cache: LiveRenderCache | None,
        cassette: LiveCassette,
        turn: LiveTurn,
        folder: Path,
        render: Render,
    ) -> None:
        self._cache = cache
        self._cassette = weakref.ref(cassette)
        self._turn = turn
        self._messages = tuple(turn.messages)
        self._folder = folder
        self._files = _audio_files(folder, turn)
        self._stamp = _file_stamp(self._files)
        self._render = render
        self._items: list[object] = [_MISSING] * len(self._messages)
        self.size = 0  # bytes stored
        #: Whether every message just sends its bytes (no break, no close).
        self._plain = not any(m.break_ or m.close is not None for m in self._messages)
        self._sent: list[bytes] | None = None

    def sent(self) -> list[bytes] | None:
        """The bytes the turn sends, in order, once every message is rendered and stored.

        None while a message is not rendered yet (render them in order through
        ``rendered[i]``, so a message that cannot be rendered fails after the ones before
        it were sent) or when a message breaks or closes the connection.
        """
        sent = self._sent
        if sent is None and self._plain and _MISSING not in self._items:
            sent = self._sent = [item for item in self._items if item is not None]  # type: ignore[misc]
        return sent

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> bytes | None:
        item = self._items[index]
        if item is _MISSING:
            item = self._render(self._messages[index])
            if self._cache is not None:
                self._cache._store(self, index, item)
        return item  # type: ignore[return-value]

    def _matches(self, cassette: LiveCassette, turn: LiveTurn) -> bool:
        messages = turn.messages
        return (
            self._cassette() is cassette
            and self._turn is turn
            and len(messages) == len(self._messages)
            and all(map(operator.is_, messages, self._messages))
            and self._folder == _folder(cassette)
            and self._stamp == _file_stamp(self._files)
        )


class LiveRenderCache:
    """Rendered Live API messages, per cassette turn and transcription setting.

    Args:
        max_bytes: Most bytes of rendered messages kept, all turns together.
        max_turns: Most turns kept (one per cassette turn and transcription setting).

    Raises:
        ValueError: A limit is not positive.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_turns: int = 512) -> None:
        if max_bytes <= 0 or max_turns <= 0:
            raise ValueError("max_bytes and max_turns must be positive")
        self.max_bytes = max_bytes
        self.max_turns = max_turns
        self._entries: OrderedDict[_Key, RenderedTurn] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes of rendered messages held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def turn(
        self,
        cassette: LiveCassette,
        turn: LiveTurn,
        *,
        output_transcription: bool,
        render: Render,
    ) -> RenderedTurn:
        """Return the rendered messages of ``turn`` (rendered lazily, then kept).

        Args:
            cassette: The cassette the turn belongs to.
            turn: One of ``cassette.turns``.
            output_transcription: Whether the session asked for output transcription.
            render: Renders one message of this turn with this setting, to wire bytes
                or None. It must depend only on the cassette, the message and the
                setting (and the WAV files, whose changes the cache checks).
        """
        key = (id(cassette), id(turn), output_transcription)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry._matches(cassette, turn):
                self._entries.move_to_end(key)
                return entry
            if entry is not None:
                self._drop(key)
            entry = RenderedTurn(self, cassette, turn, _folder(cassette), render)
            self._entries[key] = entry
            while len(self._entries) > self.max_turns:
                self._drop(next(iter(self._entries)))
            return entry

    def clear(self) -> None:
        """Forget every rendered message."""
        with self._lock:
            for key in list(self._entries):
                self._drop(key)

    # -- bookkeeping (under the lock) ----------------------------------------------------
    def _drop(self, key: _Key) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size
        entry._cache = None  # a session still replaying it renders the rest unstored
        entry._items = [_MISSING] * len(entry._items)
        entry._sent = None
        entry.size = 0

    def _store(self, entry: RenderedTurn, index: int, item: bytes | None) -> None:
        size = len(item) if item else 0
        with self._lock:
            if entry._cache is not self or entry._items[index] is not _MISSING:
                return
            # Dead cassettes' entries first, then the least recently used others.
            for key in [k for k, e in self._entries.items() if e._cassette() is None]:
                self._drop(key)
            for key in list(self._entries):
                if self._bytes + size <= self.max_bytes:
                    break
                if self._entries[key] is not entry:
                    self._drop(key)
            if self._bytes + size > self.max_bytes:  # the turn alone exceeds the budget
                self._drop(next(k for k, e in self._entries.items() if e is entry))
                return
            entry._items[index] = item
            entry.size += size
            self._bytes += size


#: The emulator's shared cache (every emulator of the process uses it).
LIVE_RENDERS = LiveRenderCache()


def rendered_turn(
    cassette: LiveCassette, turn: LiveTurn, *, output_transcription: bool, render: Render
) -> RenderedTurn:
    """Return the rendered messages of a cassette turn from the shared cache.

    See :meth:`LiveRenderCache.turn`.
    """
    return LIVE_RENDERS.turn(
        cassette, turn, output_transcription=output_transcription, render=render
    )


def clear() -> None:
    """Empty the shared cache (e.g. after editing a loaded cassette in place)."""
    LIVE_RENDERS.clear()

"""Where cassettes are found, :class:`CassetteStore` (indexed by request), and the
``quickstart cassettes`` listing."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import CassetteError
from ._cassette import (
    AnyCassette,
    CountTokensCassette,
    GenerateCassette,
    InteractionsCassette,
    LiveCassette,
    LiveTurn,
    ModelsCassette,
)
from ._cassette_io import interactions_problems, load_cassette, raise_problems
from ._live_wire import LIVE_ROUTE, audio_slice
from ._matching import SELECTS, cassette_key, count_request, key_of, nearest, prompt_text
from ._protocol import bare_model, short


def shipped_cassette_dir() -> Path:
    """Return the shipped cassettes: ``assets/cassettes/`` (a checkout or the wheel's package)."""
    packaged = resources.files("quickstart_helpers") / "assets" / "cassettes"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "assets" / "cassettes"


def cassette_dirs() -> list[Path]:
    """Return the default cassette folders: the shipped ones, then ``$QUICKSTART_CASSETTES``."""
    return [shipped_cassette_dir(), *settings.extra_cassette_dirs()]


class CassetteStore:
    """The ``*.json`` cassettes under ``folders`` (default :func:`cassette_dirs`; searched
    recursively, in order; a file reached twice is read once), indexed by
    :func:`~._matching.cassette_key`. A later folder's cassette overrides an earlier one's
    with its name or request (:attr:`overridden`): your folder can re-record a shipped one.
    Raises :class:`CassetteError` for an invalid file, or two in one folder sharing a name
    or request (``interactions`` cassettes: at :meth:`check_interactions`)."""

    def __init__(self, folders: Iterable[str | os.PathLike[str]] | None = None) -> None:
        self.folders = [Path(f) for f in (cassette_dirs() if folders is None else folders)]
        self.cassettes: list[AnyCassette] = []
        #: ``(set aside, overriding)`` pairs, in load order.
        self.overridden: list[tuple[AnyCassette, AnyCassette]] = []
        self._by_key: dict[str, AnyCassette] = {}
        self._origin: dict[str, tuple[str | None, int | None]] = {}  # name: (key, folder)
        self._unchecked: list[InteractionsCassette] = []  # by the SDK's models
        self._checking = threading.Lock()
        seen: set[Path] = set()
        for index, folder in enumerate(self.folders):
            for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
                if path.resolve() not in seen:
                    seen.add(path.resolve())
                    cassette = load_cassette(path, interactions=False)
                    if isinstance(cassette, InteractionsCassette):
                        self._unchecked.append(cassette)
                    self.add(cassette, folder=index)

    def check_interactions(self) -> None:
        """Check ``interactions`` cassettes with the SDK's models once, at first use (the
        import takes a second). Thread-safe. Raises :class:`CassetteError` (again, later)."""
        with self._checking:
            while self._unchecked:
                first = self._unchecked[0]
                raise_problems(str(first.path), interactions_problems(first))
                self._unchecked.pop(0)

    def add(self, cassette: AnyCassette, *, folder: int | None = None, put: bool = False) -> None:
        """Add a cassette from folder number ``folder`` (overriding earlier folders) or
        memory (None). Raises :class:`CassetteError` if its name or request is taken,
        unless ``put`` (record mode: it replaces that cassette)."""
        key = cassette_key(cassette)
        same_request = self._by_key.get(key) if key else None
        for other in [c for c in self.cassettes if c.name == cassette.name or c is same_request]:
            earlier = self._origin[other.name][1]
            if not put and (folder is None or earlier is None or earlier >= folder):
                same = "share a name" if other.name == cassette.name else "answer the same request"
                raise CassetteError(
                    f"Cassettes {other.name!r} ({other.path}) and {cassette.name!r} "
                    f"({cassette.path}) {same}; remove or rename one of them (names must be "
                    "unique within a folder, and a request has one cassette there; a later "
                    "folder overrides an earlier one)."
                )
            self.cassettes.remove(other)
            self._by_key.pop(self._origin.pop(other.name)[0] or "", None)
            if not put:
                self.overridden.append((other, cassette))
        if key is not None:
            self._by_key[key] = cassette
        self._origin[cassette.name] = key, folder
        self.cassettes.append(cassette)

    def find_key(self, key: str) -> AnyCassette | None:
        """Return the cassette under a :func:`~._matching.cassette_key`, or None."""
        if key.startswith("interactions "):
            self.check_interactions()
        return self._by_key.get(key)

    def find(self, model: str, body: dict[str, Any]) -> GenerateCassette | None:
        return self._by_key.get(key_of("generate", model, body))

    def find_interaction(self, model: str, body: dict[str, Any], previous: str | None) -> Any:
        """Return the interactions cassette of a create request continuing ``previous``, or None."""
        return self.find_key(key_of("interactions", model, body, previous))

    def closest(self, model: str, body: dict, previous: Any = None, kind: str = "generate") -> Any:
        """Return the non-fault cassette of ``kind`` :func:`~._matching.nearest` a request."""
        fields, text = SELECTS[kind]
        candidates = [
            (c, fields(c.model, c.request, getattr(c, "previous", None)), text(c.request))
            for c in list(self.cassettes)
            if c.kind == kind and not c.faulty
        ]
        return nearest(fields(model, body, previous), text(body), candidates)

    def live(self, model: str) -> list[LiveCassette]:
        live = [c for c in self.cassettes if isinstance(c, LiveCassette)]
        return [c for c in live if bare_model(c.model) == bare_model(model)]

    def models(self) -> list[dict[str, Any]]:
        """Return the Model JSON of the ``models`` cassettes (a later one wins), by name."""
        models = [m for c in self.cassettes if isinstance(c, ModelsCassette) for m in c.models]
        found = {bare_model(model["name"]): model for model in models}
        return [found[name] for name in sorted(found)]


def listing(cassette: AnyCassette) -> dict[str, Any]:
    """Return a recording as ``quickstart cassettes --json`` prints it: the URL ``path`` and
    the ``request`` a client sends (``live``: setup, then a ``realtimeInput`` per turn)."""
    model = bare_model(getattr(cassette, "model", ""))
    entry: dict[str, Any] = {
        "name": cassette.name,
        "kind": cassette.kind,
        "model": getattr(cassette, "model", None),
        "file": str(cassette.path) if cassette.path else None,
        "fault": cassette.faulty,
        "path": f"/v1beta/models/{model}",
        "request": getattr(cassette, "request", None),
    }
    if cassette.kind == "openai":
        entry["path"] = "/v1beta/openai/chat/completions"
        entry["request"] = {"model": model, **cassette.request}  # type: ignore[union-attr]
    elif isinstance(cassette, GenerateCassette):
        entry["path"] += ":streamGenerateContent?alt=sse"
    elif isinstance(cassette, CountTokensCassette):
        entry["path"] += ":countTokens"
    elif isinstance(cassette, InteractionsCassette):
        entry["path"] = "/v1beta/interactions"
        entry["request"] = {"model": model, **cassette.request}
        entry["previous"] = cassette.previous
    elif isinstance(cassette, LiveCassette):
        entry["path"] = LIVE_ROUTE.format(version="v1beta")
        turns = [_realtime_input(cassette, turn) for turn in cassette.turns]
        entry["request"] = [{"setup": {"model": f"models/{model}", **cassette.setup}}, *turns]
    else:  # models: a GET, of one model or of the list
        one = cassette.models[0]["name"] if len(cassette.models) == 1 else "models"
        entry["path"] = "/v1beta/" + one
    return entry


def _realtime_input(cassette: LiveCassette, turn: LiveTurn) -> dict[str, Any]:
    """A turn as one ``realtimeInput`` message: its text, or its audio and ``audioStreamEnd``."""
    if turn.audio is None:
        return {"realtimeInput": {"text": turn.input}}
    rate, pcm = audio_slice(cassette, turn.audio)
    audio = {"data": base64.b64encode(pcm).decode(), "mimeType": f"audio/pcm;rate={rate}"}
    return {"realtimeInput": {"audio": audio, "audioStreamEnd": True}}


def _prompt(cassette: AnyCassette) -> str:
    if cassette.kind in SELECTS:  # generate, interactions, openai
        return SELECTS[cassette.kind][1](cassette.request)  # type: ignore[union-attr]
    if isinstance(cassette, CountTokensCassette):
        return prompt_text(count_request(cassette.request).get("contents"))
    if isinstance(cassette, LiveCassette):
        return " / ".join(turn.input or f"(spoken: {turn.audio.file})" for turn in cassette.turns)  # type: ignore[union-attr]
    return ", ".join(m["name"] for m in cassette.models)


def recordings_text(store: CassetteStore) -> str:
    """Return ``quickstart cassettes``'s listing: by model, kind, name, ``[fault]``, prompt."""
    by_model: dict[str, list[AnyCassette]] = {}
    for cassette in store.cassettes:
        by_model.setdefault(getattr(cassette, "model", "(model catalog)"), []).append(cassette)
    lines = []
    for model in sorted(by_model):
        lines.append(model)
        for c in by_model[model]:
            mark = " [fault]" if c.faulty else ""
            lines.append(f"  {c.kind:<12} {c.name}{mark}: {short(_prompt(c), 70)!r}")
    folders = ", ".join(str(f) for f in store.folders)
    lines.append(
        f"\n{len(store.cassettes)} recording(s) in {folders}. `quickstart cassettes --json` "
        "prints each request as a client sends it; a request answered offline must match one "
        "(see docs/recording.md to record more)."
    )
    return "\n".join(lines)

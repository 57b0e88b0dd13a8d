"""Drift check: each cassette's request, as ``quickstart cassettes --json`` lists it, is recorded
again through a recording proxy (mode ``all``, a temporary folder) and compared with the stored one
by structure only: field paths (``candidates[].content.parts[].text``), part kinds, finish reasons,
error statuses, Live API message types; not text, numbers or timing, which vary between answers."""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ._cassette import AnyCassette, LiveCassette
from ._cassette_io import load_cassette
from ._record import recording_emulator
from ._store import CassetteStore, listing

__all__ = ["Drift", "structure", "verify_cassettes"]

#: Keys whose values are user data, not structure.
_OPAQUE = frozenset({"args", "response", "data", "text"})
_DATA = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


def _paths(value: Any, prefix: str = "") -> set[str]:
    """Return the field paths in a JSON value, not looking into :data:`_OPAQUE` keys."""
    if isinstance(value, list):
        return set().union(*(_paths(item, prefix + "[]") for item in value))
    found = set()
    for key, item in value.items() if isinstance(value, dict) else ():
        path = f"{prefix}.{key}" if prefix else key
        found |= {path} | (set() if key in _OPAQUE else _paths(item, path))
    return found


def structure(cassette: AnyCassette) -> set[tuple[str, str]]:
    """Return a cassette's answer structure as ``(group, item)`` pairs: ``fields`` (field
    paths), ``parts`` (``text``, ``inlineData``, ``audio``...), ``finish`` (finish reasons),
    ``error`` (``400 INVALID_ARGUMENT``, ``stream 500 INTERNAL``) and ``messages`` (Live API
    message types such as ``serverContent.turnComplete``, ``close 1011``, ``break``)."""
    error = getattr(cassette, "error", None)
    errors = [(error.status, error.body["error"])] if error is not None else []
    answers = [getattr(cassette, "response", None) or {}, *getattr(cassette, "models", [])]
    found = set()
    for chunk in getattr(cassette, "chunks", []):
        answers.append(chunk.response or {})
        errors += [(f"stream {chunk.error['code']}", chunk.error)] if chunk.error else []
        found |= {("messages", "break")} if chunk.break_ else set()
    for message in (m for turn in getattr(cassette, "turns", []) for m in turn.messages):
        answers.append(message.message)
        found |= {("messages", f"close {message.close.code}")} if message.close else set()
        found |= {("parts", "audio")} if message.audio else set()
        for key, value in message.message.items():
            found |= {("messages", key)} | {("messages", f"{key}.{i}") for i in value}
    found |= {("error", f"{code} {e.get('status', '')}".strip()) for code, e in errors}
    for answer in answers:
        candidates = answer.get("candidates") or []
        parts = [p for c in candidates for p in (c.get("content") or {}).get("parts") or []]
        found |= {("fields", path) for path in _paths(answer)}
        found |= {("finish", c["finishReason"]) for c in candidates if "finishReason" in c}
        found |= {("parts", kind) for part in parts for kind in part}
    return found


@dataclass
class Drift:
    """How a cassette's new answer differs in structure from the stored one."""

    cassette: Path  # the stored cassette's file
    differences: list[str] = field(default_factory=list)  # one line each: fields: + responseId
    problem: str | None = None  # why the request could not be recorded again

    @property
    def drifted(self) -> bool:  # the structure differs, or the check could not be made
        return bool(self.differences) or self.problem is not None


async def _send(base: str, ssl: Any, key: str, cassette: AnyCassette) -> None:
    """Send a cassette's request as ``quickstart cassettes --json`` lists it; for the Live
    API, each message once the one before it was answered to its end."""
    entry = listing(cassette)
    async with aiohttp.ClientSession(base, headers={"x-goog-api-key": key}) as http:
        if not isinstance(cassette, LiveCassette):
            method = "GET" if entry["request"] is None else "POST"
            async with http.request(method, entry["path"], json=entry["request"], ssl=ssl) as got:
                await got.read()
            return
        async with http.ws_connect(entry["path"], ssl=ssl) as ws:
            for message in entry["request"]:  # the setup, then each turn
                await ws.send_json(message)
                while (msg := await ws.receive(timeout=120)).type in _DATA:
                    data = json.loads(msg.data)
                    if "setupComplete" in data or data.get("serverContent", {}).get("turnComplete"):
                        break
                else:
                    return  # the session was closed (a recorded close)


def verify_cassettes(
    folders: list[Path],
    *,
    api_key: str,
    upstream: str | None = None,
    upstream_ca: Path | None = None,
) -> list[Drift]:
    """Record every cassette's request again (the key is never written: record mode scrubs
    it) and return one :class:`Drift` per cassette, in file order. ``upstream`` defaults to
    ``$QUICKSTART_UPSTREAM``, else the live API; ``upstream_ca``: a PEM file to trust."""
    results: list[Drift] = []
    options: Any = dict(upstream=upstream, upstream_ca=upstream_ca, pacing="fast", shared=False)
    with tempfile.TemporaryDirectory(prefix="quickstart-verify-") as tmp:
        for index, cassette in enumerate(CassetteStore(folders).cassettes):
            proxy = recording_emulator(Path(tmp) / str(index), mode="all", **options)
            recorder, drift = proxy.recorder, Drift(cassette.path)
            try:
                ssl = proxy.certificate.client_context()
                asyncio.run(_send(proxy.base_url, ssl, api_key, cassette))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                drift.problem = f"{type(exc).__name__}: {exc}"
            finally:
                proxy.stop()  # its handlers end first: a Live session is written then
            if drift.problem is None and recorder.written:  # a line per group that differs
                old, new = structure(cassette), structure(load_cassette(recorder.written[-1]))
                for group in ("fields", "parts", "finish", "error", "messages"):
                    change = [f"+ {item}" for g, item in sorted(new - old) if g == group]
                    change += [f"- {item}" for g, item in sorted(old - new) if g == group]
                    drift.differences += [f"{group}: {', '.join(change)}"] if change else []
            elif drift.problem is None:
                drift.problem = "; ".join(recorder.failures) or "nothing was recorded"
            results.append(drift)
    return results

"""Drift check: re-record each cassette's request and compare the answers' structure.

Each cassette's request (a ``generate`` request, or a Live session's setup and turns)
is sent again through a recording proxy (record mode ``all``) into a temporary folder,
and the new recording is compared with the stored one by structure only: field names
(as paths, e.g. ``candidates[].content.parts[].text``), part kinds, finish reasons,
error statuses, and for the Live API the message types. Text, numbers and timing are
not compared: they differ from one answer to the next.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ._cassette import (
    AnyCassette,
    CountTokensCassette,
    GenerateCassette,
    LiveCassette,
    ModelsCassette,
)
from ._cassette_io import load_cassette
from ._record import recording_emulator
from ._store import CassetteStore

__all__ = ["Drift", "structure", "verify_cassettes"]

#: Keys whose values are user data, not structure.
_OPAQUE = frozenset({"args", "response", "data", "text"})


def _paths(value: Any, prefix: str, out: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.add(path)
            if key not in _OPAQUE:
                _paths(item, path, out)
    elif isinstance(value, list):
        for item in value:
            _paths(item, prefix + "[]", out)


def structure(cassette: AnyCassette) -> dict[str, set[str]]:
    """Return a cassette's answer structure: named sets of field paths and kinds.

    Keys: ``fields`` (field paths), ``parts`` (part kinds such as ``text`` or
    ``inlineData``), ``finish`` (finish reasons), ``error`` (status and error status),
    ``messages`` (Live API message types such as ``serverContent.turnComplete``).
    """
    fields: set[str] = set()
    parts: set[str] = set()
    finish: set[str] = set()
    error: set[str] = set()
    messages: set[str] = set()
    if isinstance(cassette, GenerateCassette):
        if cassette.error is not None:
            detail = cassette.error.body.get("error", {})
            error.add(f"{cassette.error.status} {detail.get('status', '')}".strip())
        for chunk in cassette.chunks:
            if chunk.break_:
                messages.add("break")
                continue
            if chunk.error is not None:  # an error event inside the stream
                error.add(
                    f"stream {chunk.error.get('code')} {chunk.error.get('status', '')}".strip()
                )
                continue
            _paths(chunk.response or {}, "", fields)
            for candidate in (chunk.response or {}).get("candidates") or []:
                if candidate.get("finishReason"):
                    finish.add(str(candidate["finishReason"]))
                for part in (candidate.get("content") or {}).get("parts") or []:
                    parts.update(part)
    elif isinstance(cassette, CountTokensCassette):
        if cassette.error is not None:
            detail = cassette.error.body.get("error", {})
            error.add(f"{cassette.error.status} {detail.get('status', '')}".strip())
        _paths(cassette.response or {}, "", fields)
    elif isinstance(cassette, ModelsCassette):
        for model in cassette.models:
            _paths(model, "", fields)
    else:
        for turn in cassette.turns:
            for message in turn.messages:
                if message.close is not None:
                    messages.add(f"close {message.close.code}")
                _paths(message.message, "", fields)
                for key, value in message.message.items():
                    messages.add(key)
                    if isinstance(value, dict):
                        messages.update(f"{key}.{inner}" for inner in value)
                if message.audio is not None:
                    parts.add("audio")
    return {
        "fields": fields,
        "parts": parts,
        "finish": finish,
        "error": error,
        "messages": messages,
    }


@dataclass
class Drift:
    """How a cassette's new answer differs in structure from the stored one.

    Attributes:
        cassette: The stored cassette's file.
        differences: One line per difference (``fields: + responseId``), empty when none.
        problem: Why the request could not be recorded again, or None.
    """

    cassette: Path
    differences: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def drifted(self) -> bool:
        """Whether the structure differs or the check could not be made."""
        return bool(self.differences) or self.problem is not None


def compare(old: dict[str, set[str]], new: dict[str, set[str]]) -> list[str]:
    """Return ``name: + added, - removed`` lines for each set that differs."""
    lines = []
    for name in old:
        added, removed = sorted(new[name] - old[name]), sorted(old[name] - new[name])
        if added or removed:
            change = [f"+ {a}" for a in added] + [f"- {r}" for r in removed]
            lines.append(f"{name}: {', '.join(change)}")
    return lines


async def _send_generate(base: str, ssl_ctx: Any, key: str, cassette: GenerateCassette) -> None:
    url = f"{base}/v1beta/models/{cassette.model}:streamGenerateContent?alt=sse"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=cassette.request, headers={"x-goog-api-key": key}, ssl=ssl_ctx) as r,
    ):
        await r.read()


async def _send_count(base: str, ssl_ctx: Any, key: str, cassette: CountTokensCassette) -> None:
    url = f"{base}/v1beta/models/{cassette.model}:countTokens"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=cassette.request, headers={"x-goog-api-key": key}, ssl=ssl_ctx) as r,
    ):
        await r.read()


async def _send_models(base: str, ssl_ctx: Any, key: str, cassette: ModelsCassette) -> None:
    # One model: look it up again; several: list them again (one page, as recorded).
    path = cassette.models[0]["name"] if len(cassette.models) == 1 else "models"
    url = f"{base}/v1beta/{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"x-goog-api-key": key}, ssl=ssl_ctx) as r,
    ):
        await r.read()


async def _send_live(base: str, ssl_ctx: Any, key: str, cassette: LiveCassette) -> None:
    url = (
        base.replace("https://", "wss://", 1)
        + "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )
    setup = dict(cassette.setup)
    setup.setdefault("model", f"models/{cassette.model}")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers={"x-goog-api-key": key}, ssl=ssl_ctx) as ws,
    ):
        await ws.send_str(json.dumps({"setup": setup}))
        await ws.receive(timeout=60)  # setupComplete
        for turn in cassette.turns:
            content = {"turns": [{"role": "user", "parts": [{"text": turn.input}]}]}
            await ws.send_str(json.dumps({"clientContent": {**content, "turnComplete": True}}))
            while True:
                msg = await ws.receive(timeout=120)
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    return
                data = json.loads(msg.data)
                if (data.get("serverContent") or {}).get("turnComplete"):
                    break


def verify_cassettes(
    folders: list[Path],
    *,
    api_key: str,
    upstream: str | None = None,
    upstream_ca: Path | None = None,
) -> list[Drift]:
    """Record every cassette's request again and compare the structure of the answers.

    Args:
        folders: Cassette folders to check.
        api_key: The key sent upstream (never written: record mode scrubs it).
        upstream: Server to ask. Defaults to ``$QUICKSTART_UPSTREAM``, else the live API.
        upstream_ca: PEM file to trust for the upstream.

    Returns:
        One :class:`Drift` per cassette, in file order.
    """
    results: list[Drift] = []
    stored = CassetteStore(folders)
    with tempfile.TemporaryDirectory(prefix="quickstart-verify-") as tmp:
        for index, cassette in enumerate(stored.cassettes):
            assert cassette.path is not None
            proxy = recording_emulator(
                Path(tmp) / str(index),
                mode="all",
                upstream=upstream,
                upstream_ca=upstream_ca,
                pacing="fast",
                shared=False,
            )
            recorder = proxy.recorder
            assert recorder is not None and proxy.certificate is not None
            ctx = proxy.certificate.client_context()
            drift = Drift(cassette.path)
            try:
                if isinstance(cassette, GenerateCassette):
                    coro = _send_generate(proxy.base_url, ctx, api_key, cassette)
                elif isinstance(cassette, CountTokensCassette):
                    coro = _send_count(proxy.base_url, ctx, api_key, cassette)
                elif isinstance(cassette, ModelsCassette):
                    coro = _send_models(proxy.base_url, ctx, api_key, cassette)
                else:
                    coro = _send_live(proxy.base_url, ctx, api_key, cassette)
                asyncio.run(coro)
                for _ in range(200):  # a Live session is written just after it closes
                    if recorder.written or recorder.failures:
                        break
                    asyncio.run(asyncio.sleep(0.05))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                drift.problem = f"{type(exc).__name__}: {exc}"
            finally:
                proxy.stop()
            if drift.problem is None:
                if recorder.written:
                    fresh = load_cassette(recorder.written[-1])
                    drift.differences = compare(structure(cassette), structure(fresh))
                else:
                    drift.problem = "; ".join(recorder.failures) or "nothing was recorded"
            results.append(drift)
    return results

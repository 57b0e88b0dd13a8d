"""Drift check: re-record each cassette's request and compare the answers' structure.

Each cassette's request, as ``quickstart cassettes --json`` lists it (a Live session:
its setup and turns), is sent again through a recording proxy (record mode ``all``)
into a temporary folder, and the new recording is compared with the stored one by
structure only: field names (as paths, e.g. ``candidates[].content.parts[].text``),
part kinds, finish reasons, error statuses, and for the Live API the message types.
Text, numbers and timing are not compared: they differ from one answer to the next.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ._cassette import AnyCassette, CountTokensCassette, GenerateCassette, ModelsCassette
from ._cassette_io import load_cassette
from ._record import recording_emulator
from ._store import CassetteStore, listing

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
    found: dict[str, set[str]] = {k: set() for k in ("fields", "parts", "finish", "error")}
    found["messages"] = set()
    error = getattr(cassette, "error", None)
    if error is not None:
        found["error"].add(
            f"{error.status} {error.body.get('error', {}).get('status', '')}".strip()
        )
    if isinstance(cassette, CountTokensCassette):
        _paths(cassette.response or {}, "", found["fields"])
    elif isinstance(cassette, ModelsCassette):
        for model in cassette.models:
            _paths(model, "", found["fields"])
    elif isinstance(cassette, GenerateCassette):
        for chunk in cassette.chunks:
            if chunk.break_:
                found["messages"].add("break")
            elif chunk.error is not None:  # an error event inside the stream
                detail = chunk.error
                found["error"].add(
                    f"stream {detail.get('code')} {detail.get('status', '')}".strip()
                )
            _paths(chunk.response or {}, "", found["fields"])
            for candidate in (chunk.response or {}).get("candidates") or []:
                if candidate.get("finishReason"):
                    found["finish"].add(str(candidate["finishReason"]))
                for part in (candidate.get("content") or {}).get("parts") or []:
                    found["parts"].update(part)
    else:
        for message in (m for turn in cassette.turns for m in turn.messages):
            if message.close is not None:
                found["messages"].add(f"close {message.close.code}")
            if message.audio is not None:
                found["parts"].add("audio")
            _paths(message.message, "", found["fields"])
            for key, value in message.message.items():
                found["messages"].add(key)
                found["messages"].update(
                    f"{key}.{inner}" for inner in value if isinstance(value, dict)
                )
    return found


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
        change = [f"+ {a}" for a in sorted(new[name] - old[name])]
        change += [f"- {r}" for r in sorted(old[name] - new[name])]
        if change:
            lines.append(f"{name}: {', '.join(change)}")
    return lines


async def _send(base: str, ssl: Any, key: str, cassette: AnyCassette) -> None:
    """Send a cassette's request as ``quickstart cassettes --json`` lists it."""
    entry = listing(cassette)
    async with aiohttp.ClientSession(headers={"x-goog-api-key": key}) as http:
        if cassette.kind != "live":
            method = "GET" if entry["request"] is None else "POST"
            async with http.request(
                method, base + entry["path"], json=entry["request"], ssl=ssl
            ) as r:
                await r.read()
            return
        url = base.replace("https://", "wss://", 1) + entry["path"]
        async with http.ws_connect(url, ssl=ssl) as ws:
            setup, *turns = entry["request"]
            await ws.send_json(setup)
            await ws.receive(timeout=60)  # setupComplete
            for turn in turns:
                await ws.send_json(turn)
                while True:
                    msg = await ws.receive(timeout=120)
                    if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        return
                    if (json.loads(msg.data).get("serverContent") or {}).get("turnComplete"):
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
    with tempfile.TemporaryDirectory(prefix="quickstart-verify-") as tmp:
        for index, cassette in enumerate(CassetteStore(folders).cassettes):
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
            drift = Drift(cassette.path)
            try:
                ssl = proxy.certificate.client_context()
                asyncio.run(_send(proxy.base_url, ssl, api_key, cassette))
                for _ in range(200):  # a Live session is written just after it closes
                    if recorder.written or recorder.failures:
                        break
                    asyncio.run(asyncio.sleep(0.05))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                drift.problem = f"{type(exc).__name__}: {exc}"
            finally:
                proxy.stop()
            if drift.problem is None and recorder.written:
                fresh = load_cassette(recorder.written[-1])
                drift.differences = compare(structure(cassette), structure(fresh))
            elif drift.problem is None:
                drift.problem = "; ".join(recorder.failures) or "nothing was recorded"
            results.append(drift)
    return results

"""Benchmark: the emulator's Live API replay against a bare WebSocket replay, as ratios.

Run: ``python3 -m uv run python benchmarks/bench_live.py``. Absolute times depend on the
machine; the ratios (emulator / bare, measured in the same run, interleaved) are what
to compare between versions. Target: <= 1.5x (issue 22: the emulator keeps no render cache
or parse memo unless a burst of sessions is slower than that).

Both servers replay the ``live_narration`` cassette (5 turns, about 1.2 MB of base64
PCM) with fast pacing over TLS on 127.0.0.1, from a background thread, with the same
certificate and the same WebSocket compression setting:

- the emulator (:class:`~quickstart_helpers.emulator.Emulator`): the SDK's wire
  protocol, setup and turn checks, each message rendered from the cassette as it is sent;
- a bare aiohttp WebSocket server that answers the setup and sends each turn's
  messages, rendered once before the benchmark starts, and nothing else.

The client is the ``websockets`` library the SDK uses, with its defaults (it offers
``permessage-deflate``, as the SDK's connection does); it sends each turn as
``realtimeInput.text`` and reads (``json.loads``) every message up to ``turnComplete``. A
session's time is from its first send to its last ``turnComplete`` (the connection and
setup are not counted). Rows: one session at a time, and 20 concurrent sessions (wall
time of the burst), each without compression (the emulator's default) and with
``permessage-deflate`` (``Emulator(live_compression=True)`` against a bare server that
accepts it too).
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import websockets
from aiohttp import WSMsgType, web

from benchmarks.registry import Options, Result, benchmark
from quickstart_helpers._background import BackgroundServer
from quickstart_helpers.emulator import CassetteStore, Emulator, LiveCassette
from quickstart_helpers.emulator._live_wire import LIVE_ROUTE, render_turn

CASSETTE = "live_narration"
CONCURRENT = 20
ROUNDS = 15
TARGET = 1.5


@dataclass(frozen=True)
class Row:
    """One benchmark row: emulator against bare replay, medians in milliseconds."""

    name: str
    emulator_ms: float
    bare_ms: float
    target: float | None = TARGET

    @property
    def ratio(self) -> float:
        """Emulator time / bare time."""
        return self.emulator_ms / self.bare_ms


def _cassette() -> LiveCassette:
    found = [c for c in CassetteStore().cassettes if c.name == CASSETTE]
    assert found and isinstance(found[0], LiveCassette), f"no {CASSETTE} cassette"
    return found[0]


def _setup(cassette: LiveCassette) -> dict:
    setup = {k: v for k, v in cassette.setup.items() if k != "model"}
    return {"setup": {"model": f"models/{cassette.model}", **setup}}


def serve_bare(cassette: LiveCassette, ssl_context: ssl.SSLContext, compress: bool):
    """Start a bare WebSocket server replaying ``cassette``'s pre-rendered turns."""
    turns = {
        " ".join(t.input.split()): [
            data for data in render_turn(cassette, i, transcription=False) if data is not None
        ]
        for i, t in enumerate(cassette.turns)
    }

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024, compress=compress)
        await ws.prepare(request)
        setup = await ws.receive()
        if setup.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return ws
        await ws.send_bytes(b'{"setupComplete":{}}')
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            text = json.loads(msg.data)["realtimeInput"]["text"]
            for data in turns[" ".join(text.split())]:
                await ws.send_bytes(data)
        return ws

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_get(LIVE_ROUTE, handle)
        return app

    return BackgroundServer(make_app, name="bare Live replay", ssl_context=ssl_context).start()


async def session(uri: str, ctx: ssl.SSLContext, cassette: LiveCassette) -> float:
    """Run one session through every turn; return seconds from first send to last reply."""
    async with websockets.connect(uri, ssl=ctx, max_size=None) as ws:
        await ws.send(json.dumps(_setup(cassette)))
        assert "setupComplete" in json.loads(await ws.recv(decode=False))
        started = time.perf_counter()
        for turn in cassette.turns:
            await ws.send(json.dumps({"realtimeInput": {"text": turn.input}}))
            while True:
                message = json.loads(await ws.recv(decode=False))
                if message.get("serverContent", {}).get("turnComplete"):
                    break
        return time.perf_counter() - started


async def burst(uri: str, ctx: ssl.SSLContext, cassette: LiveCassette) -> float:
    """Run ``CONCURRENT`` sessions at once; return the burst's wall time in seconds."""
    started = time.perf_counter()
    await asyncio.gather(*(session(uri, ctx, cassette) for _ in range(CONCURRENT)))
    return time.perf_counter() - started


def _uri(port: int) -> str:
    path = LIVE_ROUTE.format(version="v1beta")
    return f"wss://127.0.0.1:{port}{path}?key=bench"


def _compare(
    name: str,
    emulator: Callable[[], Awaitable[float]],
    bare: Callable[[], Awaitable[float]],
    rounds: int,
    target: float | None = TARGET,
) -> Row:
    """Interleave ``rounds`` runs of each side; return their medians as a row."""
    times: dict[str, list[float]] = {"emulator": [], "bare": []}
    for _ in range(rounds):
        for side, run in (("emulator", emulator), ("bare", bare)):
            times[side].append(asyncio.run(run()))
    return Row(
        name,
        statistics.median(times["emulator"]) * 1000,
        statistics.median(times["bare"]) * 1000,
        target,
    )


def _rows(cassette: LiveCassette, compress: bool, rounds: int) -> list[Row]:
    """Measure one compression setting's rows."""
    label = "permessage-deflate" if compress else "no compression"
    emulator = Emulator(pacing="fast", live_compression=compress).start()
    bare: BackgroundServer | None = None
    try:
        assert emulator.certificate is not None
        ctx = emulator.certificate.client_context()
        bare = serve_bare(cassette, emulator.certificate.server_context(), compress)
        emu_uri, bare_uri = _uri(emulator.port), _uri(bare.port)
        for _ in range(2):  # warm up: imports, TLS
            asyncio.run(session(emu_uri, ctx, cassette))
            asyncio.run(session(bare_uri, ctx, cassette))
        one_emu = functools.partial(session, emu_uri, ctx, cassette)
        one_bare = functools.partial(session, bare_uri, ctx, cassette)
        rows = [
            _compare(f"1 session, {label}", one_emu, one_bare, rounds),
            _compare(
                f"{CONCURRENT} concurrent sessions, {label}",
                functools.partial(burst, emu_uri, ctx, cassette),
                functools.partial(burst, bare_uri, ctx, cassette),
                # As many rounds as one session gets: with a third as many, the median of
                # a burst moved by up to 10% between runs of the same code.
                rounds,
            ),
        ]
        return rows
    finally:
        if bare is not None:
            bare.stop()
        emulator.stop()


def run(rounds: int = ROUNDS) -> list[Row]:
    """Measure every row (takes about a minute on 2 cores)."""
    cassette = _cassette()
    return [row for compress in (False, True) for row in _rows(cassette, compress, rounds)]


@benchmark("live", "Live API replay vs a bare WebSocket replay of the same cassette (TLS)")
def live(options: Options) -> list[Result]:
    """The registry's view of :func:`run`: send-to-turnComplete times in ms."""
    rounds = 5 if options.quick else max(options.repeats, ROUNDS)
    return [
        Result(
            "live",
            row.name,
            row.emulator_ms,
            row.bare_ms,
            "ms",
            target=row.target,
            baseline_name="bare WebSocket replay",
        )
        for row in run(rounds)
    ]


def main() -> None:
    """Print each row's medians and ratio."""
    print(f"Live replay of {CASSETTE!r} (send to turnComplete), emulator / bare WebSocket:")
    print(f"{'':58} {'emulator':>10} {'bare':>10} {'ratio':>7}")
    for row in run():
        verdict = "" if row.target is None else ("  ok" if row.ratio <= row.target else "  SLOW")
        print(
            f"{row.name:58} {row.emulator_ms:8.1f}ms {row.bare_ms:8.1f}ms "
            f"{row.ratio:6.2f}x{verdict}"
        )


if __name__ == "__main__":
    main()

"""Benchmark: the web chat relay against a Flask-threaded relay, as ratios in one run.

Run: ``python3 -m uv run python -m benchmarks relay`` (Flask is in the dev group), or
``python3 -m uv run python -m benchmarks.bench_relay`` for the absolute figures too.

Both relays serve ``GET /chat/stream?message=...`` as SSE, one event per model chunk,
and talk to the same emulator (realtime pacing, the ``web_sse_chat`` cassette: 10
chunks over about 3 s) through the real SDK over HTTPS:

- relay: :class:`quickstart_helpers.web.ChatServer` (aiohttp, the async client);
- baseline: Flask on werkzeug's threaded server, one thread per stream, the sync
  client's ``generate_content_stream``.

Each relay runs in its own process (the emulator in this one), so each RSS is the
relay's alone. For 1, 50 and 200 concurrent clients (1 and 10 with ``--quick``) it
measures streams per second, the median and 95th percentile time to the first event,
the peak RSS during the burst and the RSS a few seconds after it, each relay figure a
ratio of the baseline's (lower is better except streams/s). One burst per level: a
burst is already many streams, so ``--repeats`` does not apply.

``python -m benchmarks.bench_relay --trace`` also prints where the relay's memory goes
at 200 clients (tracemalloc's top allocation sites at the peak, in the relay process).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

from benchmarks.registry import Options, Result, benchmark
from quickstart_helpers.emulator import Emulator
from quickstart_helpers.web import SAMPLE_QUESTION

LEVELS = (1, 50, 200)
QUICK_LEVELS = (1, 10)
#: Seconds after a burst before "RSS after" is read. The SDK's pool keeps idle model
#: connections 15 s; closing them sooner frees no RSS (malloc keeps the pages).
SETTLE_S = 8.0
#: The repository root: relays run as ``python -m benchmarks.bench_relay --serve KIND`` there.
ROOT = Path(__file__).resolve().parent.parent

# -- the relays, each run as `python bench_relay.py --serve KIND` ---------------------------


def serve_aiohttp(trace: bool) -> None:
    from google import genai

    from quickstart_helpers.web import ChatServer

    if trace:
        import tracemalloc

        tracemalloc.start(10)
    server = ChatServer(genai.Client(), port=0).start()
    print(server.url, flush=True)
    _serve_until_stdin_closes(trace)


def serve_flask(trace: bool) -> None:
    from flask import Flask, Response, request
    from google import genai
    from werkzeug.serving import make_server

    client = genai.Client()
    app = Flask(__name__)

    @app.get("/chat/stream")
    def chat_stream() -> Response:
        message = request.args["message"]

        def events():
            for chunk in client.models.generate_content_stream(
                model="gemini-3.8-flash", contents=message
            ):
                text = chunk.text or ""
                yield "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"
            yield "event: done\ndata: [DONE]\n\n"

        return Response(events(), mimetype="text/event-stream")

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per stream
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"http://127.0.0.1:{server.server_port}/", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _serve_until_stdin_closes(False)


def _serve_until_stdin_closes(trace: bool) -> None:
    for line in sys.stdin:
        if line.strip() == "gc":
            gc.collect()
            print("ok", flush=True)
        elif line.strip() == "trace" and trace:
            import tracemalloc

            snapshot = tracemalloc.take_snapshot()
            for stat in snapshot.statistics("lineno")[:15]:
                print(f"  {stat.size / 2**20:7.2f} MiB {stat.count:7d} {stat.traceback}")
            print("end", flush=True)


# -- the clients ----------------------------------------------------------------------------


@dataclass
class Figures:
    """One relay's figures for one burst of concurrent clients."""

    streams_per_s: float
    first_p50_ms: float
    first_p95_ms: float
    peak_rss_mib: float
    after_rss_mib: float
    idle_rss_mib: float


async def _one(session: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    first = None
    async with session.get(url + "chat/stream", params={"message": SAMPLE_QUESTION}) as r:
        async for line in r.content:
            if first is None and line.startswith(b"data:"):
                first = time.perf_counter() - started
            if line.startswith(b"event: done"):
                break
        else:
            raise RuntimeError("a stream ended without its done event")
    assert first is not None
    return first


async def _burst(url: str, clients: int) -> tuple[float, list[float]]:
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=300)
    ) as session:
        started = time.perf_counter()
        firsts = await asyncio.gather(*(_one(session, url) for _ in range(clients)))
        return time.perf_counter() - started, firsts


class Relay:
    def __init__(self, kind: str, env: dict[str, str], trace: bool = False) -> None:
        args = [sys.executable, "-m", "benchmarks.bench_relay", "--serve", kind]
        args += ["--trace"] if trace else []
        self.process = subprocess.Popen(
            args, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        self.url = self.process.stdout.readline().strip()
        self.ps = psutil.Process(self.process.pid)

    def rss_mib(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def command(self, name: str, until: str) -> list[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        lines = []
        while (line := self.process.stdout.readline().rstrip("\n")) != until:
            lines.append(line)
        return lines

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.terminate()
        self.process.wait(30)

    def measure(self, clients: int, settle_s: float = SETTLE_S) -> Figures:
        asyncio.run(_burst(self.url, 1))  # warm up: imports, TLS session, pools
        self.command("gc", "ok")
        idle = self.rss_mib()
        peak = idle
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.05):
                peak = max(peak, self.rss_mib())

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            wall, firsts = asyncio.run(_burst(self.url, clients))
        finally:
            done.set()
            sampler.join()
        time.sleep(settle_s)
        self.command("gc", "ok")
        ordered = sorted(firsts)
        return Figures(
            streams_per_s=clients / wall,
            first_p50_ms=statistics.median(ordered) * 1000,
            first_p95_ms=ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000,
            peak_rss_mib=peak,
            after_rss_mib=self.rss_mib(),
            idle_rss_mib=idle,
        )


def measure(
    levels: tuple[int, ...] = LEVELS, settle_s: float = SETTLE_S, trace: bool = False
) -> dict[int, dict[str, Figures]]:
    """Run a burst per level against each relay; return figures by level, then relay kind.

    The kinds are ``"aiohttp"`` (the relay) and ``"flask"`` (the baseline).
    """
    results: dict[int, dict[str, Figures]] = {}
    with Emulator(pacing="realtime") as emulator:
        env = dict(os.environ)
        for line in emulator.shell_exports().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value
        env.pop("GOOGLE_API_KEY", None)
        for clients in levels:
            results[clients] = {}
            for kind in ("flask", "aiohttp"):
                relay = Relay(kind, env, trace=trace and kind == "aiohttp")
                try:
                    results[clients][kind] = relay.measure(clients, settle_s)
                    if trace and kind == "aiohttp" and clients == levels[-1]:
                        print("relay memory by allocation site after the burst:")
                        print("\n".join(relay.command("trace", "end")))
                finally:
                    relay.close()
    return results


@benchmark("relay", "Web chat relay vs a Flask-threaded relay (SSE, concurrent clients)")
def bench_relay(options: Options) -> list[Result]:
    levels = QUICK_LEVELS if options.quick else LEVELS
    return _rows(measure(levels, settle_s=1.0 if options.quick else SETTLE_S))


def _rows(results: dict[int, dict[str, Figures]]) -> list[Result]:
    """Each figure of each level as a ratio against the Flask baseline."""
    rows = []
    baseline = "Flask threaded"
    for clients, by_kind in results.items():
        ours, flask = by_kind["aiohttp"], by_kind["flask"]
        n = f"{clients} client{'s' if clients != 1 else ''}"
        rows += [
            Result(
                "relay",
                f"{n}, streams/s",
                ours.streams_per_s,
                flask.streams_per_s,
                "1/s",
                higher_is_better=True,
                baseline_name=baseline,
            ),
            Result(
                "relay",
                f"{n}, first event p50",
                ours.first_p50_ms,
                flask.first_p50_ms,
                "ms",
                baseline_name=baseline,
            ),
            Result(
                "relay",
                f"{n}, first event p95",
                ours.first_p95_ms,
                flask.first_p95_ms,
                "ms",
                baseline_name=baseline,
            ),
            # Memory was the relay's problem (it peaked 38% above Flask and stayed there).
            Result(
                "relay",
                f"{n}, peak RSS",
                ours.peak_rss_mib,
                flask.peak_rss_mib,
                "MiB",
                1.1,
                baseline_name=baseline,
            ),
            Result(
                "relay",
                f"{n}, RSS after",
                ours.after_rss_mib,
                flask.after_rss_mib,
                "MiB",
                1.1,
                baseline_name=baseline,
            ),
        ]
    return rows


def main() -> None:
    """Serve one relay (``--serve``), or run the benchmark and print absolute figures too."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["aiohttp", "flask"], help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help="show the relay's memory sites")
    parser.add_argument("--quick", action="store_true", help="1 and 10 clients, a smoke run")
    args = parser.parse_args()
    if args.serve == "aiohttp":
        return serve_aiohttp(args.trace)
    if args.serve == "flask":
        return serve_flask(args.trace)

    levels = QUICK_LEVELS if args.quick else LEVELS
    results = measure(levels, settle_s=1.0 if args.quick else SETTLE_S, trace=args.trace)
    print("clients | relay           | streams/s | first p50 ms | p95 ms | peak MiB | after MiB")
    for clients, by_kind in results.items():
        for kind, name in (("flask", "Flask threaded"), ("aiohttp", "relay (aiohttp)")):
            r = by_kind[kind]
            print(
                f"{clients:7d} | {name:15s} | {r.streams_per_s:9.1f} | {r.first_p50_ms:12.0f} |"
                f" {r.first_p95_ms:6.0f} | {r.peak_rss_mib:8.1f} | {r.after_rss_mib:9.1f}"
            )
    from benchmarks.__main__ import format_table

    print()
    print(format_table(_rows(results)))


if __name__ == "__main__":
    main()

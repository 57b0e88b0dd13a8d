"""The emulator's SSE path against a bare aiohttp server; the WAV writer against stdlib.

1. ``sse``: time to first chunk and to the end of a 1,000-chunk stream, from the
   emulator (fast pacing, request validation, cassette matching and all) and from a
   bare aiohttp server that writes the same event bytes (``data: <JSON>`` per event,
   rendered once before the benchmark, while the emulator encodes every event of every
   replay; checked equal), one write per event, both served the same
   way (a loop in a background thread) over TLS on 127.0.0.1 and read with httpx (the
   SDK's transport) on one kept-alive connection. Runs alternate (ABBA), at least 60
   each. Client and servers are threads of one process, as the emulator and the SDK
   are in a notebook's kernel, so the time to the first chunk is mostly the wait for
   the interpreter lock while the server writes on: 1.5 to 18 ms for either server, in
   two clusters (the client got the lock at once, or after the 5 ms switch interval).
   A median jumps between the clusters from run to run (0.7x to 1.3x on a busy
   machine), so both figures are interquartile means (the middle half's mean).
2. ``wav``: 60 s of 24 kHz mono audio written in 80 ms chunks with
   ``quickstart_helpers.wav.wave_file`` against stdlib ``wave`` ``writeframes`` per chunk,
   each run to a new file, runs alternating (ABBA), medians of at least 20 each. Both hand
   every chunk and the patched header to the OS before the next chunk: ``writeframes``
   patches the header with seeks, and each seek flushes its buffer; ``wave_file`` is the
   same ``wave`` on an unbuffered file. Neither calls ``fsync``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from benchmarks.registry import Options, Result, benchmark, interquartile_mean
from quickstart_helpers._background import BackgroundServer
from quickstart_helpers.emulator import CassetteStore, Emulator
from quickstart_helpers.emulator._http import sse_event
from quickstart_helpers.emulator._tls import make_local_certificate
from quickstart_helpers.wav import wave_file

MODEL = "gemini-3.8-flash"
PROMPT = "Benchmark: stream a long answer."


def _cassette(chunks: int) -> dict[str, Any]:
    responses = []
    for i in range(chunks):
        response: dict[str, Any] = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": f"Chunk {i} of the answer. "}]},
                    "index": 0,
                }
            ],
            "modelVersion": MODEL,
            "responseId": "bench",
        }
        if i == chunks - 1:
            response["candidates"][0]["finishReason"] = "STOP"
            response["usageMetadata"] = {
                "promptTokenCount": 8,
                "candidatesTokenCount": 6 * chunks,
                "totalTokenCount": 8 + 6 * chunks,
            }
        responses.append({"delay_ms": 0, "response": response})
    return {
        "format": 1,
        "name": "bench_long_stream",
        "kind": "generate",
        "description": "A long stream for benchmarks.",
        "model": MODEL,
        "request": {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
        "chunks": responses,
    }


@contextmanager
def _bare_sse_server(events: list[bytes], ssl_context: Any) -> Iterator[int]:
    """Serve the events (SSE bytes) at any POST path from a bare aiohttp app; yield its port.

    It reads the JSON body, then writes each event as it is (one write per event, as the
    emulator does), nothing else. It runs the way the emulator runs (a loop in a thread,
    :class:`~quickstart_helpers._background.BackgroundServer`), so both servers
    share the runner's settings.
    """

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.json()
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for event in events:
            await response.write(event)
        await response.write_eof()
        return response

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", handler)
        return app

    server = BackgroundServer(make_app, name="bare SSE server", ssl_context=ssl_context).start()
    try:
        yield server.port
    finally:
        server.stop()


def _timed_stream(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[float, float]:
    """Return (seconds to the first event, seconds to the end of the stream)."""
    started = time.perf_counter()
    first = None
    events = 0
    with client.stream("POST", url, json=body, headers={"x-goog-api-key": "bench"}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: "):
                events += 1
                if first is None:
                    first = time.perf_counter() - started
    if first is None or events == 0:
        raise RuntimeError(f"{url} sent no events")
    return first, time.perf_counter() - started


@benchmark("sse", "Emulator SSE stream vs a bare aiohttp SSE server (TLS, httpx)")
def bench_sse(options: Options) -> list[Result]:
    chunks = 100 if options.quick else 1000
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    path = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cassette = _cassette(chunks)
        (folder / "bench.json").write_text(json.dumps(cassette), "utf-8")
        emulator = Emulator(store=CassetteStore([folder]), pacing="fast").start()
        try:
            # The same bytes the emulator sends (the live API's framing), rendered once here.
            events = [sse_event(c["response"]) for c in cassette["chunks"]]
            certificate = make_local_certificate(folder / "bare")
            with (
                _bare_sse_server(events, certificate.server_context()) as port,
                httpx.Client(verify=emulator.certificate.client_context(), timeout=60) as ours,
                httpx.Client(verify=certificate.client_context(), timeout=60) as bare,
            ):
                ours_url = emulator.base_url + path
                bare_url = f"https://127.0.0.1:{port}{path}"
                sent = [
                    client.post(url, json=body, headers={"x-goog-api-key": "bench"}).content
                    for client, url in ((ours, ours_url), (bare, bare_url))
                ]
                if sent[0] != sent[1]:
                    raise RuntimeError("The emulator and the bare server sent different bytes.")
                for _ in range(3):  # warm up connections and caches
                    _timed_stream(ours, ours_url, body), _timed_stream(bare, bare_url, body)
                runs_ours, runs_bare = [], []
                for i in range(max(60, options.repeats * 12)):
                    # Alternate which goes first (ABBA), so drift hits both alike.
                    pair = [(runs_ours, ours, ours_url), (runs_bare, bare, bare_url)]
                    for runs, client, url in pair if i % 2 == 0 else pair[::-1]:
                        runs.append(_timed_stream(client, url, body))
        finally:
            emulator.stop()
    first_ours = interquartile_mean(r[0] for r in runs_ours) * 1000
    first_bare = interquartile_mean(r[0] for r in runs_bare) * 1000
    full_ours = interquartile_mean(r[1] for r in runs_ours) * 1000
    full_bare = interquartile_mean(r[1] for r in runs_bare) * 1000
    baseline = "bare aiohttp"
    # Issue 22's bound: the emulator validates and keys every request (no memo) within 1.5x.
    return [
        Result("sse", "time to first chunk", first_ours, first_bare, "ms", 1.5, False, baseline),
        Result(
            "sse", f"full {chunks:,}-chunk stream", full_ours, full_bare, "ms", 1.5, False, baseline
        ),
    ]


@benchmark("wav", "Streamed WAV writing vs stdlib wave.writeframes per chunk")
def bench_wav(options: Options) -> list[Result]:
    rate, chunk_ms = 24_000, 80
    seconds = 10 if options.quick else 60
    chunk = bytes(2 * rate * chunk_ms // 1000)
    count = seconds * 1000 // chunk_ms
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours_path, stdlib_path = folder / "ours.wav", folder / "stdlib.wav"

        def ours() -> None:
            with wave_file(ours_path, rate=rate) as wav:
                for _ in range(count):
                    wav.writeframes(chunk)

        def stdlib() -> None:
            with wave.open(str(stdlib_path), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(rate)
                for _ in range(count):
                    wav.writeframes(chunk)

        def timed(action: Callable[[], None], path: Path) -> float:
            path.unlink(missing_ok=True)  # a new file each run, as a recording makes
            started = time.perf_counter()
            action()
            return time.perf_counter() - started

        for _ in range(3):  # warm up
            ours(), stdlib()
        times_ours, times_stdlib = [], []
        for i in range(max(20, options.repeats * 6)):
            # Alternate which goes first (ABBA), so load from other processes hits both.
            pair = [(times_ours, ours, ours_path), (times_stdlib, stdlib, stdlib_path)]
            for times, action, path in pair if i % 2 == 0 else pair[::-1]:
                times.append(timed(action, path))
        if ours_path.stat().st_size != stdlib_path.stat().st_size:
            raise RuntimeError("wave_file and wave.writeframes wrote different lengths")
    return [
        Result(
            "wav",
            f"{seconds} s of audio in {chunk_ms} ms chunks",
            statistics.median(times_ours) * 1000,
            statistics.median(times_stdlib) * 1000,
            "ms",
            1.1,
            False,
            "wave.writeframes",
        )
    ]

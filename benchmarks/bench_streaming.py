"""The emulator's SSE path against a bare aiohttp server; the WAV writer against stdlib.

1. ``sse``: time to first chunk and to the end of a 1,000-chunk stream, from the
   emulator (fast pacing, cassette matching and all) and from a bare aiohttp server
   that encodes and writes the same payloads (``data: <JSON>`` per event), both over
   TLS on 127.0.0.1, read with httpx (the SDK's transport) on one kept-alive
   connection. Runs alternate.
2. ``wav``: 60 s of 24 kHz mono audio written in 80 ms chunks with
   ``quickstart_helpers.wav.wave_file`` against stdlib ``wave`` ``writeframes`` per chunk.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from benchmarks.registry import Options, Result, benchmark, median_time
from quickstart_helpers.emulator import CassetteStore, Emulator
from quickstart_helpers.emulator._tls import make_local_certificate
from quickstart_helpers.wav import wave_file

MODEL = "gemini-2.5-flash"
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
def _bare_sse_server(payloads: list[dict[str, Any]], ssl_context: Any) -> Iterator[int]:
    """Stream the payloads as SSE at any POST path from a bare aiohttp app; yield its port."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.json()
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for payload in payloads:
            data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            await response.write(f"data: {data}\n\n".encode())
        await response.write_eof()
        return response

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


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
            payloads = [c["response"] for c in cassette["chunks"]]
            certificate = make_local_certificate(folder / "bare")
            with (
                _bare_sse_server(payloads, certificate.server_context()) as port,
                httpx.Client(verify=emulator.certificate.client_context(), timeout=60) as ours,
                httpx.Client(verify=certificate.client_context(), timeout=60) as bare,
            ):
                ours_url = emulator.base_url + path
                bare_url = f"https://127.0.0.1:{port}{path}"
                for _ in range(3):  # warm up connections and caches
                    _timed_stream(ours, ours_url, body), _timed_stream(bare, bare_url, body)
                runs_ours, runs_bare = [], []
                for _ in range(max(5, options.repeats * 4)):
                    runs_ours.append(_timed_stream(ours, ours_url, body))
                    runs_bare.append(_timed_stream(bare, bare_url, body))
        finally:
            emulator.stop()
    first_ours = statistics.median(r[0] for r in runs_ours) * 1000
    first_bare = statistics.median(r[0] for r in runs_bare) * 1000
    full_ours = statistics.median(r[1] for r in runs_ours) * 1000
    full_bare = statistics.median(r[1] for r in runs_bare) * 1000
    baseline = "bare aiohttp"
    return [
        Result("sse", "time to first chunk", first_ours, first_bare, "ms", 1.1, False, baseline),
        Result(
            "sse", f"full {chunks:,}-chunk stream", full_ours, full_bare, "ms", 1.1, False, baseline
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

        def ours() -> None:
            with wave_file(folder / "ours.wav", rate=rate) as wav:
                for _ in range(count):
                    wav.write(chunk)

        def stdlib() -> None:
            with wave.open(str(folder / "stdlib.wav"), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(rate)
                for _ in range(count):
                    wav.writeframes(chunk)

        ours(), stdlib()
        times_ours, times_stdlib = [], []
        for _ in range(max(5, options.repeats * 2)):  # alternate, then take medians
            times_ours.append(median_time(1, ours))
            times_stdlib.append(median_time(1, stdlib))
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

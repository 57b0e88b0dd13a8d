"""Benchmarks: costs of streaming, each as a ratio against a baseline in the same run.

Run: ``uv run python benchmarks/bench_streaming.py``. Absolute times depend on the
machine; the ratios are what to compare between versions.

1. WAV writing: ``wave_file`` (chunk by chunk, header kept valid after every chunk)
   against ``write_wav`` of the same PCM in one buffer.
2. Emulator: a streamed request (``generate_content_stream``, SSE) against the same
   cassette as one non-streaming response (``generate_content``), through the real
   SDK over HTTPS with fast pacing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from google import genai

from quickstart_helpers.emulator import Emulator
from quickstart_helpers.wav import wave_file, write_wav

RATE = 24_000
CHUNK_MS = 80
SECONDS = 60
PROMPT = (
    "Write a short Markdown cheat sheet for baking a first loaf of bread at home: a "
    "heading, three bullet points and one bold tip."
)


def best_of(repeats: int, action: Callable[[], object]) -> float:
    """Return the median wall time of ``repeats`` runs of ``action``, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_wav(folder: Path) -> tuple[float, float]:
    """Time streaming ``SECONDS`` of 24 kHz audio in 80 ms chunks vs one buffer."""
    frames_per_chunk = RATE * CHUNK_MS // 1000
    chunk = bytes(2 * frames_per_chunk)
    chunks = SECONDS * 1000 // CHUNK_MS
    pcm = chunk * chunks

    def streamed() -> None:
        with wave_file(folder / "streamed.wav", rate=RATE) as wav:
            for _ in range(chunks):
                wav.write(chunk)

    def whole() -> None:
        write_wav(folder / "whole.wav", pcm, rate=RATE)

    return best_of(5, streamed), best_of(5, whole)


def bench_emulator() -> tuple[float, float]:
    """Time one streamed and one non-streamed request for the same cassette."""
    with Emulator(pacing="fast") as emulator:
        client = genai.Client(api_key="bench", http_options=emulator.http_options())
        model = "gemini-3.8-flash"

        def streamed() -> None:
            for _ in client.models.generate_content_stream(model=model, contents=PROMPT):
                pass

        def whole() -> None:
            client.models.generate_content(model=model, contents=PROMPT)

        streamed(), whole()  # warm up the connection pool
        return best_of(30, streamed), best_of(30, whole)


def main() -> None:
    """Print each benchmark's times and ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        streamed, whole = bench_wav(Path(tmp))
    print(
        f"WAV, {SECONDS} s of audio in {CHUNK_MS} ms chunks: streamed {streamed * 1000:.1f} ms, "
        f"one buffer {whole * 1000:.1f} ms, ratio {streamed / whole:.1f}x"
    )
    streamed, whole = bench_emulator()
    print(
        f"Emulator, 10-chunk cassette: stream {streamed * 1000:.1f} ms, "
        f"non-streaming {whole * 1000:.1f} ms, ratio {streamed / whole:.2f}x"
    )


if __name__ == "__main__":
    main()

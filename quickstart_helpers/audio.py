"""Audio for the Live API: sound files and microphones in, players for the replies.

The Live API takes 16-bit little-endian mono PCM at 16 kHz (``audio/pcm;rate=16000``).
:func:`file_chunks` reads any file libsndfile reads (WAV of any rate, width or channel
count, FLAC, Ogg, MP3...) with ``soundfile``, mixes it down to mono and resamples it with
``soxr``; :func:`microphone_chunks` records a microphone with ``sounddevice`` (the
``mic`` extra). Both yield chunks of the same shape, so one send loop serves both::

    async for chunk in file_chunks(SPOKEN_QUESTION):  # or: microphone_chunks()
        await session.send_realtime_input(audio=types.Blob(data=chunk, mime_type=MIME_TYPE))

:class:`Player` shows a WAV file in a notebook: its name and duration above an ``<audio>``
player holding the WHOLE file as Ogg Opus (about 3 KB a second), embedded as a data URI,
so it plays in JupyterLab, Jupyter Notebook and Colab whatever folder the server serves.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import os
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import soxr

__all__ = ["MIME_TYPE", "RATE", "SPOKEN_QUESTION", "Player", "file_chunks", "microphone_chunks"]

#: The Live API's input audio: 16-bit mono PCM at 16 kHz.
RATE = 16_000
MIME_TYPE = f"audio/pcm;rate={RATE}"
#: A few seconds of a spoken question (16 kHz 16-bit mono WAV; ``scripts/_live.py`` made it).
SPOKEN_QUESTION = Path(str(resources.files("quickstart_helpers") / "data" / "question.wav"))


def read_pcm(path: str | os.PathLike[str]) -> bytes:
    """Return a sound file's audio as 16 kHz mono 16-bit PCM (a 16 kHz mono 16-bit WAV's
    samples unchanged). ValueError, naming the file's format, when it cannot."""
    try:
        samples, rate = soundfile.read(path, dtype="float64", always_2d=True)
    except soundfile.LibsndfileError as exc:  # not a format libsndfile reads
        kind = Path(path).suffix.lstrip(".").upper() or "extension-less"
        raise ValueError(
            f"{Path(path).name} is a {kind} file that soundfile (libsndfile) cannot read as "
            f"audio ({exc.error_string}). Convert it to WAV, FLAC, Ogg or MP3 first, e.g. "
            f"ffmpeg -i {Path(path).name} -ar {RATE} -ac 1 question.wav"
        ) from None
    mono = samples.mean(axis=1)
    if rate != RATE:
        mono = soxr.resample(mono, rate, RATE)
    return np.clip(np.round(mono * 32768), -32768, 32767).astype("<i2").tobytes()


async def file_chunks(
    path: str | os.PathLike[str], chunk_ms: int = 100, *, realtime: bool = True
) -> AsyncIterator[bytes]:
    """Yield a sound file's audio (see :func:`read_pcm`) in ``chunk_ms`` chunks of 16 kHz
    mono 16-bit PCM, at the pace of speech unless ``realtime`` is False."""
    pcm, size = read_pcm(path), RATE * 2 * chunk_ms // 1000
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]
        if realtime:
            await asyncio.sleep(chunk_ms / 1000)


async def microphone_chunks(
    chunk_ms: int = 100, *, device: Any = None, stream_class: Callable[..., Any] | None = None
) -> AsyncIterator[bytes]:
    """Yield a microphone's audio in ``chunk_ms`` chunks of 16 kHz mono 16-bit PCM, until
    the stream finishes or the loop stops. Needs ``pip install sounddevice`` (PortAudio).

    ``stream_class`` stands in for ``sounddevice.RawInputStream`` (same arguments: a test
    plays a WAV file through it); ``device`` picks the input (``sounddevice.query_devices()``).
    """
    if stream_class is None:
        import sounddevice  # the optional ``mic`` extra

        stream_class = sounddevice.RawInputStream
    loop, queue = asyncio.get_running_loop(), asyncio.Queue[bytes | None]()

    def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, bytes(indata))  # from the audio thread

    with stream_class(
        samplerate=RATE,
        channels=1,
        dtype="int16",
        blocksize=RATE * chunk_ms // 1000,
        device=device,
        callback=callback,
        finished_callback=lambda: loop.call_soon_threadsafe(queue.put_nowait, None),
    ):
        while (chunk := await queue.get()) is not None:
            yield chunk


class Player:
    """A WAV file in a notebook: ``name: 3.02 s`` above a player of the whole file
    (Ogg Opus from libsndfile's encoder, 24 kbit/s mono)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        samples, rate = soundfile.read(self.path, dtype="float32", always_2d=True)
        self.duration = len(samples) / rate
        if rate not in (8_000, 12_000, 16_000, 24_000, 48_000):  # Opus's rates
            samples, rate = soxr.resample(samples, rate, 48_000), 48_000
        buffer = io.BytesIO()
        soundfile.write(
            buffer, samples.mean(axis=1), rate, format="OGG", subtype="OPUS", compression_level=0.9
        )
        self.ogg = buffer.getvalue()

    def __repr__(self) -> str:
        return f"{self.path.name}: {self.duration:.2f} s"

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.ogg).decode("ascii")
        return (
            f"<div><code>{html.escape(self.path.name)}</code>: {self.duration:.2f} s<br>"
            f'<audio controls preload="auto" src="data:audio/ogg;base64,{data}"></audio></div>'
        )

"""``wave_file``: the Gemini cookbook's WAV writer, over the standard library's :mod:`wave`.

Write the Live API's reply audio with ``wave``'s own API::

    with wave_file("reply.wav") as wf:
        async for message in session.receive():
            if message.data:
                wf.writeframes(message.data)

The file is opened unbuffered, and ``wave`` patches the header's two sizes after every
``writeframes`` while the length is unknown, so the file on disk is a valid WAV holding
every chunk written so far at every moment: a killed process (even ``SIGKILL``) or a
block that ends with an error (a broken connection) keeps what arrived.
"""

from __future__ import annotations

import contextlib
import os
import wave
from collections.abc import Iterator

__all__ = ["wave_file"]


@contextlib.contextmanager
def wave_file(
    filename: str | os.PathLike[str], channels: int = 1, rate: int = 24_000, sample_width: int = 2
) -> Iterator[wave.Wave_write]:
    """Open ``filename`` for PCM audio (defaults: the Live API's output, 24 kHz 16-bit mono)
    and yield the standard library's ``wave.Wave_write`` (``writeframes(pcm)`` per chunk,
    ``getnframes()`` for the frames written), its header already on disk (an empty WAV)."""
    with open(filename, "wb", buffering=0) as file, wave.open(file, "wb") as wf:
        wf.setnchannels(channels)
        wf.setsampwidth(sample_width)
        wf.setframerate(rate)
        wf.writeframes(b"")  # writes the header now: a valid, empty WAV
        yield wf

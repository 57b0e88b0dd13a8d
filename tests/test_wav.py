"""quickstart_helpers.wav: ``wave_file`` over stdlib ``wave``, read back independently."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from quickstart_helpers.wav import wave_file


def sine_pcm(seconds: float, rate: int = 24_000, freq: float = 440.0) -> bytes:
    """16-bit little-endian mono PCM of a sine wave."""
    t = np.arange(int(seconds * rate)) / rate
    return (12_000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def read_with_wave(path: Path) -> tuple[int, int, int, bytes]:
    with wave.open(str(path), "rb") as wav:
        return (
            wav.getframerate(),
            wav.getsampwidth(),
            wav.getnchannels(),
            wav.readframes(wav.getnframes()),
        )


def frames_on_disk(path: Path) -> int:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes()


def test_wave_file_streams_chunks_and_the_header_is_valid_after_each_chunk(tmp_path: Path) -> None:
    pcm = sine_pcm(1.0)
    chunk = 4_800  # 100 ms
    path = tmp_path / "stream.wav"
    with wave_file(path) as wf:
        assert frames_on_disk(path) == 0  # a valid, empty WAV from the start
        for n, start in enumerate(range(0, len(pcm), chunk), 1):
            wf.writeframes(pcm[start : start + chunk])
            assert frames_on_disk(path) == n * chunk // 2  # already on disk, header patched
        assert wf.getnframes() == 24_000
    assert read_with_wave(path) == (24_000, 2, 1, pcm)
    data, rate = soundfile.read(path, dtype="int16")
    assert rate == 24_000 and soundfile.info(path).subtype == "PCM_16"
    assert np.array_equal(data, np.frombuffer(pcm, dtype="<i2"))


def test_wave_file_keeps_every_chunk_when_the_block_raises(tmp_path: Path) -> None:
    pcm = sine_pcm(0.3)
    path = tmp_path / "broken.wav"
    with pytest.raises(ConnectionError), wave_file(path) as wf:
        wf.writeframes(pcm[:4_800])
        wf.writeframes(pcm[4_800:9_600])
        raise ConnectionError("the stream broke")
    assert read_with_wave(path) == (24_000, 2, 1, pcm[:9_600])


def test_an_empty_stream_gives_a_valid_empty_wav(tmp_path: Path) -> None:
    with wave_file(tmp_path / "empty.wav"):
        pass
    assert read_with_wave(tmp_path / "empty.wav") == (24_000, 2, 1, b"")
    assert soundfile.info(tmp_path / "empty.wav").frames == 0


@pytest.mark.parametrize(
    ("channels", "sample_width", "subtype"),
    [(2, 2, "PCM_16"), (1, 3, "PCM_24"), (1, 4, "PCM_32"), (1, 1, "PCM_U8")],
)
def test_other_layouts(tmp_path: Path, channels: int, sample_width: int, subtype: str) -> None:
    frame = channels * sample_width
    pcm = bytes(range(256)) * frame * 10  # 2560 frames
    path = tmp_path / "layout.wav"
    with wave_file(path, channels=channels, rate=16_000, sample_width=sample_width) as wf:
        wf.writeframes(bytearray(pcm[: 100 * frame]))
        wf.writeframes(memoryview(pcm)[100 * frame :])
    assert read_with_wave(path) == (16_000, sample_width, channels, pcm)
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        16_000,
        channels,
        subtype,
        2560,
    )


def test_a_bad_format_is_refused_by_wave(tmp_path: Path) -> None:
    with (
        pytest.raises(wave.Error, match="sample width"),
        wave_file(tmp_path / "a.wav", 1, 24_000, 5),
    ):
        pass
    with pytest.raises(FileNotFoundError), wave_file(tmp_path / "no" / "a.wav"):
        pass


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from quickstart_helpers.wav import wave_file

    path, chunks = sys.argv[1], int(sys.argv[2])
    with wave_file(path) as wf:
        for i in range(chunks):
            wf.writeframes(bytes([i + 1, 0]) * 100)  # 100 frames, under any write buffer
        print("ready", flush=True)
        sys.stdin.read()  # wait here until the test kills us
    """
)


@pytest.mark.parametrize("chunks", [0, 1, 3])
def test_a_sigkilled_writer_leaves_a_valid_wav_of_every_chunk_written(
    tmp_path: Path, chunks: int
) -> None:
    path = tmp_path / "killed.wav"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path), str(chunks)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    expected = b"".join(bytes([i + 1, 0]) * 100 for i in range(chunks))
    assert read_with_wave(path) == (24_000, 2, 1, expected)
    assert soundfile.info(path).frames == 100 * chunks


def test_writer_memory_stays_flat(tmp_path: Path) -> None:
    chunk = sine_pcm(1.0)  # 48 000 bytes
    tracemalloc.start()
    try:
        with wave_file(tmp_path / "long.wav") as wf:
            baseline = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            for _ in range(300):  # 5 minutes of audio, 14.4 MB
                wf.writeframes(chunk)
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frames_on_disk(tmp_path / "long.wav") == 300 * 24_000
    assert peak - baseline < 1_000_000

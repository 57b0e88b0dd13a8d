"""quickstart_helpers.wav: streamed and whole-buffer WAV writing, read back independently."""

from __future__ import annotations

import array
import io
import math
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

from quickstart_helpers.wav import (
    PcmFormat,
    WavPlayer,
    parse_pcm_mime_type,
    pcm_duration,
    preview_wav,
    wav_info,
    wav_player,
    wave_file,
    write_wav,
)


def sine_pcm(seconds: float, rate: int = 24_000, freq: float = 440.0) -> bytes:
    """16-bit little-endian mono PCM of a sine wave."""
    samples = array.array(
        "h",
        (int(12_000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(seconds * rate))),
    )
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def read_with_wave(path: Path) -> tuple[int, int, int, bytes]:
    with wave.open(str(path), "rb") as wav:
        return (
            wav.getframerate(),
            wav.getsampwidth(),
            wav.getnchannels(),
            wav.readframes(wav.getnframes()),
        )


def test_write_wav_reads_back_with_wave_and_soundfile(tmp_path: Path) -> None:
    pcm = sine_pcm(0.5)
    info = write_wav(tmp_path / "tone.wav", pcm)

    assert (info.rate, info.channels, info.sample_width, info.frames) == (24_000, 1, 2, 12_000)
    assert info.duration == pytest.approx(0.5)
    assert read_with_wave(tmp_path / "tone.wav") == (24_000, 2, 1, pcm)

    data, rate = soundfile.read(tmp_path / "tone.wav", dtype="int16")
    sf_info = soundfile.info(tmp_path / "tone.wav")
    assert rate == 24_000
    assert sf_info.channels == 1
    assert sf_info.subtype == "PCM_16"
    assert sf_info.frames == 12_000
    assert np.array_equal(data, np.frombuffer(pcm, dtype="<i2"))


def test_wave_file_streams_chunks_and_header_is_valid_after_each_chunk(tmp_path: Path) -> None:
    pcm = sine_pcm(1.0)
    chunk = 4_800  # 100 ms
    path = tmp_path / "stream.wav"
    with wave_file(path) as wav:
        for n, start in enumerate(range(0, len(pcm), chunk), 1):
            assert wav.write(pcm[start : start + chunk]) == chunk
            # The file on disk is already a valid WAV holding every chunk so far.
            assert wav_info(path).frames == n * chunk // 2
        assert wav.chunks == 10
        assert wav.pcm_bytes == len(pcm)
        assert wav.duration == pytest.approx(1.0)
    assert wav.closed
    assert read_with_wave(path)[3] == pcm
    assert soundfile.info(path).duration == pytest.approx(1.0)


def test_wave_file_finalizes_header_when_the_block_raises(tmp_path: Path) -> None:
    pcm = sine_pcm(0.3)
    path = tmp_path / "broken.wav"
    with pytest.raises(ConnectionError), wave_file(path) as wav:
        wav.write(pcm[:4_800])
        wav.write(pcm[4_800:9_600])
        raise ConnectionError("the stream broke")
    assert read_with_wave(path) == (24_000, 2, 1, pcm[:9_600])
    data, rate = soundfile.read(path, dtype="int16")
    assert rate == 24_000 and len(data) == 4_800


def test_empty_stream_gives_a_valid_empty_wav(tmp_path: Path) -> None:
    with wave_file(tmp_path / "empty.wav") as wav:
        wav.write(b"")
    assert wav.chunks == 0
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
    with wave_file(path, rate=16_000, channels=channels, sample_width=sample_width) as wav:
        wav.write(bytearray(pcm[: 100 * frame]))
        wav.write(memoryview(pcm)[100 * frame :])
    assert read_with_wave(path) == (16_000, sample_width, channels, pcm)
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        16_000,
        channels,
        subtype,
        2560,
    )


def test_a_chunk_that_is_not_whole_frames_is_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "odd.wav"
    with wave_file(path) as wav:
        wav.write(b"\x01\x00\x02\x00")
        with pytest.raises(ValueError, match="not a whole number of frames"):
            wav.write(b"\x03\x00\x04")
        assert wav.pcm_bytes == 4
        wav.write(b"\x05\x00")
    assert read_with_wave(path)[3] == b"\x01\x00\x02\x00\x05\x00"


@pytest.mark.parametrize(
    ("pcm", "error", "match"),
    [
        ("AAEC", TypeError, "base64"),
        ([1, 2], TypeError, "not list"),
        (None, TypeError, "not NoneType"),
        (b"\x00\x01\x02", ValueError, "3 bytes is not a whole number of frames"),
    ],
)
def test_write_wav_bad_pcm_leaves_no_file(tmp_path: Path, pcm, error, match) -> None:
    path = tmp_path / "bad.wav"
    with pytest.raises(error, match=match):
        write_wav(path, pcm)
    assert not path.exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 0}, "rate must be a positive whole number"),
        ({"rate": -24_000}, "rate must be a positive whole number"),
        ({"rate": 24_000.5}, "rate must be a positive whole number"),
        ({"rate": True}, "rate must be a positive whole number"),
        ({"sample_width": 5}, r"sample_width must be one of \(1, 2, 3, 4\)"),
        ({"sample_width": 0}, "sample_width must be one of"),
        ({"rate": 2**32}, "rate must be a positive whole number .* up to 4294967295"),
        ({"rate": 2**40}, "rate must be a positive whole number"),
        ({"channels": 0}, "channels must be a whole number from 1 to 65535"),
        ({"channels": 70_000}, "channels must be a whole number from 1 to 65535"),
        ({"channels": -1}, "channels must be a whole number from 1 to 65535"),
        # Each fits alone, but the byte rate or the frame size overflows its header field.
        ({"rate": 2**31, "channels": 2}, "bytes per second"),
        ({"rate": 8_000, "channels": 65_535}, "frames of at most 65535 bytes"),
    ],
)
def test_bad_format_is_refused_before_the_file_is_created(tmp_path: Path, kwargs, match) -> None:
    path = tmp_path / "bad.wav"
    with pytest.raises(ValueError, match=match), wave_file(path, **kwargs):
        pass
    with pytest.raises(ValueError, match=match):
        write_wav(path, b"\x00\x00" * 4, **kwargs)
    assert not path.exists()


def test_largest_header_values_are_written(tmp_path: Path) -> None:
    path = tmp_path / "edge.wav"
    with wave_file(path, rate=2**32 - 1, sample_width=1) as wav:
        wav.write(b"\x80\x80")
    info = wav_info(path)
    assert (info.rate, info.channels, info.frames) == (2**32 - 1, 1, 2)
    with wave_file(path, rate=8_000, channels=65_535, sample_width=1) as wav:
        wav.write(b"\x80" * 65_535)
    assert wav_info(path).channels == 65_535


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from quickstart_helpers.wav import wave_file

    path, chunks = sys.argv[1], int(sys.argv[2])
    with wave_file(path) as wav:
        for i in range(chunks):
            wav.write(bytes([i + 1, 0]) * 100)  # 100 frames, under any write buffer
        print("ready", flush=True)
        sys.stdin.read()  # wait here until the test kills us
    """
)


@pytest.mark.parametrize("chunks", [0, 1, 3])
def test_a_sigkilled_writer_leaves_a_valid_wav_of_every_acknowledged_chunk(
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


def test_path_must_end_in_wav_and_closed_writer_refuses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="should end in .wav"), wave_file(tmp_path / "a.mp3"):
        pass
    assert not (tmp_path / "a.mp3").exists()
    with wave_file(tmp_path / "a.wav") as wav:
        wav.write(b"\x00\x00")
    with pytest.raises(ValueError, match="is closed"):
        wav.write(b"\x00\x00")
    with (
        pytest.raises(FileNotFoundError, match="does not exist"),
        wave_file(tmp_path / "no" / "a.wav"),
    ):
        pass


def test_writer_memory_stays_flat(tmp_path: Path) -> None:
    chunk = sine_pcm(1.0)  # 48 000 bytes
    tracemalloc.start()
    try:
        with wave_file(tmp_path / "long.wav") as wav:
            baseline = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            for _ in range(300):  # 5 minutes of audio, 14.4 MB
                wav.write(chunk)
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert wav_info(tmp_path / "long.wav").duration == pytest.approx(300.0)
    assert peak - baseline < 1_000_000


@pytest.mark.parametrize(
    ("mime_type", "expected"),
    [
        ("audio/pcm;rate=24000", PcmFormat(24_000)),
        ("audio/pcm;rate=16000", PcmFormat(16_000)),
        ("AUDIO/PCM; RATE=8000", PcmFormat(8_000)),
        ("audio/L16;rate=44100;channels=2", PcmFormat(44_100, channels=2)),
        ('audio/pcm; channels=1; rate="22050"', PcmFormat(22_050)),
    ],
)
def test_parse_pcm_mime_type(mime_type: str, expected: PcmFormat) -> None:
    assert parse_pcm_mime_type(mime_type) == expected


def test_parse_pcm_mime_type_errors() -> None:
    with pytest.raises(ValueError, match="does not say its sample rate"):
        parse_pcm_mime_type("audio/pcm")
    assert parse_pcm_mime_type("audio/pcm", default_rate=16_000).rate == 16_000
    with pytest.raises(ValueError, match="is not raw PCM audio"):
        parse_pcm_mime_type("audio/mpeg")
    with pytest.raises(ValueError, match="is not raw PCM audio"):
        parse_pcm_mime_type("text/plain;rate=24000")
    with pytest.raises(ValueError, match="rate='fast' .* is not a whole number"):
        parse_pcm_mime_type("audio/pcm;rate=fast")
    with pytest.raises(ValueError, match="rate must be a positive whole number"):
        parse_pcm_mime_type("audio/pcm;rate=0")
    with pytest.raises(TypeError, match="must be a str"):
        parse_pcm_mime_type(None)  # type: ignore[arg-type]


def test_pcm_duration() -> None:
    assert pcm_duration(b"\x00" * 48_000) == pytest.approx(1.0)
    assert pcm_duration(96_000, rate=24_000, channels=2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="whole number of frames"):
        pcm_duration(b"\x00" * 3)


def test_wav_player_embeds_a_short_preview_and_links_a_file_below_the_notebook(
    tmp_path: Path,
) -> None:
    notebooks = tmp_path / "notebooks"
    path = notebooks / "output" / "reply.wav"
    path.parent.mkdir(parents=True)
    write_wav(path, sine_pcm(2.4))

    player = wav_player(path, notebook_dir=notebooks)
    assert isinstance(player, WavPlayer)
    assert repr(player) == "reply.wav: 2.40 s, 24000 Hz, 16-bit mono"
    html = player._repr_html_()
    # The label comes before the player, the link after it.
    assert html.index("2.40 s") < html.index("<audio controls") < html.index('href="output/')
    assert 'src="data:audio/wav;base64,' in html
    assert len(html) < 25_000  # 2 s at 8 kHz 8-bit, in base64: about 21 KB
    with wave.open(io.BytesIO(player.preview)) as preview:
        assert (preview.getframerate(), preview.getsampwidth(), preview.getnchannels()) == (
            8_000,
            1,
            1,
        )
        assert preview.getnframes() == 16_000


def test_wav_player_names_a_file_it_cannot_link_without_its_path(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "reply.wav"
    path.parent.mkdir()
    write_wav(path, sine_pcm(0.5))
    player = wav_player(path, notebook_dir=tmp_path / "notebooks")
    assert player.src is None
    html = player._repr_html_()
    assert str(tmp_path) not in html and "No player" not in html
    assert "<audio controls" in html and "<code>reply.wav</code> in the output folder" in html
    assert "first 0.5 s" in html


def test_wav_player_links_from_the_folder_of_a_saved_copy(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "run" / "04_audio_streaming" / "reply.wav"
    path.parent.mkdir(parents=True)
    write_wav(path, sine_pcm(0.1))
    monkeypatch.chdir(tmp_path)
    assert wav_player(path).src == "run/04_audio_streaming/reply.wav"
    monkeypatch.setenv("QUICKSTART_NOTEBOOK_DIR", str(tmp_path / "run"))
    assert wav_player(path).src == "04_audio_streaming/reply.wav"


def test_preview_wav_keeps_the_shape_of_the_signal(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    write_wav(path, sine_pcm(1.0))
    with wave.open(io.BytesIO(preview_wav(path, 0.5))) as preview:
        samples = preview.readframes(preview.getnframes())
    assert len(samples) == 4_000
    assert max(samples) > 165 and min(samples) < 91  # amplitude 12 000 of 32 768 stays near 46
    with pytest.raises(ValueError, match="positive"):
        preview_wav(path, 0)


_FULL_DISK_WRITER = textwrap.dedent(
    """
    import resource, signal, sys
    from quickstart_helpers.wav import wave_file

    # The OS refuses to grow the file past 1,044 bytes, as a full disk would.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (44 + 1000, resource.RLIM_INFINITY))
    with wave_file(sys.argv[1]) as wav:
        wav.write(bytes([1, 0]) * 200)
        wav.write(bytes([2, 0]) * 200)
        try:
            wav.write(bytes([3, 0]) * 200)  # 200 bytes fit, the rest does not
        except OSError as exc:
            print("refused", exc.errno, wav.pcm_bytes, flush=True)
        wav.write(bytes([4, 0]) * 50)  # fits again after the failed chunk
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_chunk_the_os_refuses_is_cut_off_and_the_file_stays_valid(tmp_path: Path) -> None:
    path = tmp_path / "full.wav"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_WRITER, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.startswith("refused ") and done.stdout.split()[2] == "800"
    expected = bytes([1, 0]) * 200 + bytes([2, 0]) * 200 + bytes([4, 0]) * 50
    assert read_with_wave(path) == (24_000, 2, 1, expected)
    assert path.stat().st_size == 44 + len(expected)
    assert soundfile.info(path).frames == len(expected) // 2


def test_a_chunk_past_the_4_gib_a_wav_holds_is_refused_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "huge.wav"
    with wave_file(path) as wav:
        wav.write(b"\x01\x00")
        wav._bytes = 0xFFFF_FFFF - 36 - 2  # as if 4 GiB had been written (unit test)
        with pytest.raises(ValueError, match="4 GiB"):
            wav.write(b"\x02\x00" * 2)
        wav._bytes = 2
    assert read_with_wave(path) == (24_000, 2, 1, b"\x01\x00")

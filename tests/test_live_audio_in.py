"""Spoken questions: the real SDK streams 16 kHz PCM (``send_realtime_input(audio=...)``) to
the emulator, which matches the recording by the audio received, however it was chunked."""

from __future__ import annotations

import asyncio
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from google import genai
from google.genai import errors, types

from quickstart_helpers.audio import (
    MIME_TYPE,
    SPOKEN_QUESTION,
    Player,
    file_chunks,
    microphone_chunks,
    read_pcm,
)
from quickstart_helpers.emulator import CassetteStore, Emulator, load_cassette, recording_emulator
from quickstart_helpers.emulator._live_wire import MAX_REASON_BYTES, load_audio
from quickstart_helpers.wav import wave_file

from ._store import STORE

KEY = "test-key-must-never-be-recorded"
QUESTION = next(c for c in STORE.cassettes if c.name == "live_spoken_question")
MODEL = QUESTION.model
TRANSCRIBED = types.LiveConnectConfig(
    response_modalities=["AUDIO"],
    input_audio_transcription=types.AudioTranscriptionConfig(),
    output_audio_transcription=types.AudioTranscriptionConfig(),
)
MANUAL = types.RealtimeInputConfig(
    automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(pacing="fast").start()
    yield emu
    emu.stop()


@pytest.fixture
def client(emulator: Emulator) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=emulator.http_options())


def recorded_reply() -> bytes:
    assert QUESTION.path is not None
    return load_audio(QUESTION.path.parent / "audio" / "question_reply.wav")[1]


async def ask(client, chunks, path: Path, *, config=TRANSCRIBED, end=None) -> tuple[str, str]:
    """Stream ``chunks`` as the notebook does, write the reply to ``path``; return the
    input and output transcriptions."""
    heard, said = [], []
    async with client.aio.live.connect(model=MODEL, config=config) as session:
        if end == "activity":
            await session.send_realtime_input(activity_start=types.ActivityStart())
        async for chunk in chunks:
            await session.send_realtime_input(audio=types.Blob(data=chunk, mime_type=MIME_TYPE))
        if end == "activity":
            await session.send_realtime_input(activity_end=types.ActivityEnd())
        elif end == "stream":
            await session.send_realtime_input(audio_stream_end=True)
        with wave_file(path) as wf:
            async for message in session.receive():
                content = message.server_content
                if content and content.input_transcription:
                    heard.append(content.input_transcription.text)
                if content and content.output_transcription:
                    said.append(content.output_transcription.text)
                if content and content.model_turn:
                    for part in content.model_turn.parts or []:
                        if part.inline_data:
                            wf.writeframes(part.inline_data.data)
    return "".join(heard), "".join(said)


def wav_pcm(path: Path) -> tuple[int, bytes]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.readframes(wav.getnframes())


@pytest.mark.parametrize(("chunk_ms", "end"), [(100, "stream"), (37, None), (250, "activity")])
def test_the_shipped_question_gets_the_recorded_reply_however_it_is_chunked(
    client, tmp_path: Path, chunk_ms: int, end: str | None
) -> None:
    config = TRANSCRIBED
    if end == "activity":
        config = TRANSCRIBED.model_copy(update={"realtime_input_config": MANUAL})
    chunks = file_chunks(SPOKEN_QUESTION, chunk_ms, realtime=False)
    heard, said = asyncio.run(ask(client, chunks, tmp_path / "reply.wav", config=config, end=end))
    assert heard == "How many high tides does a coast see each day?"
    assert said.startswith("Most coasts see two high tides a day")
    assert wav_pcm(tmp_path / "reply.wav") == (24_000, recorded_reply())


def test_without_transcription_config_no_transcriptions_come(client, tmp_path: Path) -> None:
    config = types.LiveConnectConfig(response_modalities=["AUDIO"])
    chunks = file_chunks(SPOKEN_QUESTION, realtime=False)
    said = asyncio.run(ask(client, chunks, tmp_path / "r.wav", config=config, end="stream"))
    assert said == ("", "")
    assert wav_pcm(tmp_path / "r.wav")[1] == recorded_reply()


def test_activity_signals_with_automatic_detection_close_the_session(client, tmp_path) -> None:
    chunks = file_chunks(SPOKEN_QUESTION, realtime=False)
    with pytest.raises(errors.APIError) as caught:
        asyncio.run(ask(client, chunks, tmp_path / "r.wav", end="activity"))
    assert caught.value.code == 1007
    assert "automaticActivityDetection.disabled" in str(caught.value)


def test_audio_no_recording_holds_closes_the_session_with_the_reason(client, tmp_path) -> None:
    async def other():
        yield read_pcm(SPOKEN_QUESTION)[:32_000]  # the first second only

    with pytest.raises(errors.APIError) as caught:
        asyncio.run(ask(client, other(), tmp_path / "r.wav", end="stream"))
    assert caught.value.code == 1008
    reason = str(caught.value)
    assert "No cassette recorded this audio (1.0 s)" in reason and "quickstart record" in reason
    assert len(reason.split("1008 None. ")[-1].encode()) <= MAX_REASON_BYTES


def test_a_44k_stereo_wav_is_converted_and_streamed(client, tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    mono = np.frombuffer(read_pcm(SPOKEN_QUESTION), "<i2").astype(np.float64) / 32768
    import soxr

    stereo = soxr.resample(mono, 16_000, 44_100)
    soundfile.write(path, np.stack([stereo, stereo], axis=1), 44_100, subtype="PCM_16")
    pcm = read_pcm(path)
    assert abs(len(pcm) - len(read_pcm(SPOKEN_QUESTION))) <= 4  # 16 kHz mono 16-bit again
    back = np.frombuffer(pcm, "<i2")[:40_000].astype(float)
    assert np.corrcoef(back, np.frombuffer(read_pcm(SPOKEN_QUESTION), "<i2")[:40_000])[0, 1] > 0.95
    # Not the recorded bytes after two resamplings: the emulator says no recording holds it.
    with pytest.raises(errors.APIError, match="No cassette recorded this audio"):
        asyncio.run(
            ask(client, file_chunks(path, realtime=False), tmp_path / "r.wav", end="stream")
        )


def test_an_unsupported_file_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "question.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    with pytest.raises(ValueError, match=r"question.m4a is a M4A file .* cannot read") as caught:
        read_pcm(path)
    assert "ffmpeg" in str(caught.value)


class WavInputStream:
    """``sounddevice.RawInputStream``'s interface, playing a WAV file instead of a device."""

    def __init__(
        self, *, samplerate, channels, dtype, blocksize, device, callback, finished_callback
    ):
        assert (samplerate, channels, dtype, device) == (16_000, 1, "int16", None)
        self.pcm, self.blocksize = read_pcm(SPOKEN_QUESTION), blocksize
        self.callback, self.finished = callback, finished_callback
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:  # the audio thread
        size = self.blocksize * 2
        for start in range(0, len(self.pcm), size):
            block = self.pcm[start : start + size]
            self.callback(memoryview(block), len(block) // 2, None, None)
        self.finished()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join()


def test_the_microphone_source_streams_the_same_chunks(client, tmp_path: Path) -> None:
    chunks = microphone_chunks(100, stream_class=WavInputStream)
    heard, _ = asyncio.run(ask(client, chunks, tmp_path / "mic.wav", end="stream"))
    assert heard == "How many high tides does a coast see each day?"
    assert wav_pcm(tmp_path / "mic.wav")[1] == recorded_reply()


def test_file_chunks_are_16k_mono_chunks_of_the_file() -> None:
    async def sizes_of() -> list[int]:
        return [len(c) async for c in file_chunks(SPOKEN_QUESTION, 100, realtime=False)]

    sizes = asyncio.run(sizes_of())
    assert set(sizes[:-1]) == {3_200} and sum(sizes) == len(read_pcm(SPOKEN_QUESTION))
    assert read_pcm(SPOKEN_QUESTION) == wav_pcm(SPOKEN_QUESTION)[1]  # 16 kHz mono: unchanged


def test_record_mode_records_a_spoken_session_that_then_replays(tmp_path: Path) -> None:
    assert QUESTION.path is not None
    upstream = Emulator(store=CassetteStore([QUESTION.path.parent]), pacing="fast").start()
    proxy = recording_emulator(
        tmp_path / "cassettes",
        mode="once",
        upstream=upstream.base_url,
        upstream_ca=upstream.certificate.cert_file,
        pacing="fast",
        shared=False,
    )
    try:
        recorder = genai.Client(api_key=KEY, http_options=proxy.http_options())
        chunks = file_chunks(SPOKEN_QUESTION, 120, realtime=False)
        asked = asyncio.run(ask(recorder, chunks, tmp_path / "live.wav", end="stream"))
        for _ in range(200):  # written when the proxy sees the session end
            if proxy.recorder.written or proxy.recorder.failures:
                break
            time.sleep(0.05)
        assert not proxy.recorder.failures
    finally:
        proxy.stop()
        upstream.stop()
    (path,) = (tmp_path / "cassettes").glob("*.json")
    cassette = load_cassette(path)
    (turn,) = cassette.turns
    assert turn.input == "" and turn.audio is not None and turn.audio.file.endswith("_input.wav")
    assert load_audio(path.parent / turn.audio.file) == (16_000, read_pcm(SPOKEN_QUESTION))
    assert KEY not in path.read_text()

    offline = Emulator(store=CassetteStore([tmp_path / "cassettes"]), pacing="fast").start()
    try:
        client = genai.Client(api_key="other", http_options=offline.http_options())
        chunks = file_chunks(SPOKEN_QUESTION, 300, realtime=False)
        replayed = asyncio.run(ask(client, chunks, tmp_path / "offline.wav", end="stream"))
    finally:
        offline.stop()
    assert replayed == asked and asked[0] == "How many high tides does a coast see each day?"
    assert wav_pcm(tmp_path / "offline.wav") == wav_pcm(tmp_path / "live.wav")
    assert wav_pcm(tmp_path / "offline.wav")[1] == recorded_reply()


def test_a_player_embeds_the_whole_file_as_ogg_opus_under_its_name_and_duration() -> None:
    import base64
    import io
    import re

    player = Player(SPOKEN_QUESTION)
    assert repr(player) == "question.wav: 3.20 s"
    page = player._repr_html_()
    assert "<code>question.wav</code>: 3.20 s" in page
    data = re.search(r'src="data:audio/ogg;base64,([^"]+)"', page)
    assert data is not None
    ogg = base64.b64decode(data.group(1))
    info = soundfile.info(io.BytesIO(ogg))
    assert (info.format, info.subtype, info.channels) == ("OGG", "OPUS", 1)
    assert abs(info.duration - soundfile.info(SPOKEN_QUESTION).duration) <= 0.02
    assert len(ogg) < 8_000 * info.duration  # compressed: under 8 KB a second


def test_notebook_04_stays_under_400_kb() -> None:
    notebook = Path(__file__).resolve().parent.parent / "notebooks" / "04_audio_streaming.ipynb"
    assert notebook.stat().st_size <= 400_000

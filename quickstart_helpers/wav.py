"""Write streamed PCM audio to WAV files with the standard library's :mod:`wave`.

The Live API sends speech as chunks of raw PCM (``audio/pcm;rate=24000``: 16-bit
little-endian, mono, 24 000 Hz). :func:`wave_file` writes each chunk to disk as it
arrives, so memory stays flat however long the audio, and the file on disk is a
valid WAV at every moment: the header (built by stdlib :mod:`wave`) is written when the
file is opened and its two sizes are patched after each chunk, and header and data are
written to the operating system (unbuffered) before :meth:`WavWriter.write` returns, so
even a killed process (``SIGKILL``) leaves a valid WAV holding every chunk that was
acknowledged, and a block that ends with an exception (a broken connection) keeps what
arrived. Two system calls per chunk (the data, then the header's sizes with ``pwrite``)
where ``wave.writeframes`` makes seven.
:func:`write_wav` writes a whole buffer at once,
:func:`parse_pcm_mime_type` reads the format from a MIME type, :func:`wav_info`
reads a file's format and duration, and :func:`wav_player` shows a file in a
notebook with a short embedded preview and a link, never the whole file's bytes.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import struct
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from . import settings

__all__ = [
    "LIVE_API_OUTPUT_RATE",
    "MAX_CHANNELS",
    "MAX_DATA_BYTES",
    "MAX_RATE",
    "SUPPORTED_SAMPLE_WIDTHS",
    "PcmFormat",
    "WavInfo",
    "WavPlayer",
    "WavWriter",
    "PREVIEW_RATE",
    "PREVIEW_SECONDS",
    "parse_pcm_mime_type",
    "preview_wav",
    "pcm_duration",
    "wav_info",
    "wav_player",
    "wave_file",
    "write_wav",
]

#: Sample rate of the Live API's output audio, in Hz.
LIVE_API_OUTPUT_RATE = 24_000

#: Bytes per sample that the standard library's ``wave`` module can write.
SUPPORTED_SAMPLE_WIDTHS = (1, 2, 3, 4)

#: Largest channel count a WAV header can hold (a 16-bit field).
MAX_CHANNELS = 0xFFFF

#: Largest sample rate, in Hz, a WAV header can hold (a 32-bit field, which also holds the
#: byte rate: ``rate * channels * sample_width`` must fit too).
MAX_RATE = 0xFFFF_FFFF

_BytesLike = bytes | bytearray | memoryview


@dataclass(frozen=True)
class PcmFormat:
    """The layout of raw PCM audio.

    Attributes:
        rate: Sample rate in Hz (frames per second).
        channels: Number of interleaved channels. Defaults to 1 (mono).
        sample_width: Bytes per sample. Defaults to 2 (16-bit little-endian).
    """

    rate: int
    channels: int = 1
    sample_width: int = 2

    def __post_init__(self) -> None:
        _check_format(self.rate, self.channels, self.sample_width)

    @property
    def frame_size(self) -> int:
        """Bytes per frame: one sample for every channel."""
        return self.channels * self.sample_width

    def duration(self, nbytes: int) -> float:
        """Return the duration in seconds of ``nbytes`` bytes of this PCM."""
        return nbytes / (self.frame_size * self.rate)


@dataclass(frozen=True)
class WavInfo:
    """The format and length of a WAV file, as read back by :func:`wav_info`.

    Attributes:
        path: The file.
        rate: Sample rate in Hz.
        channels: Number of channels.
        sample_width: Bytes per sample.
        frames: Number of frames (samples per channel).
    """

    path: Path
    rate: int
    channels: int
    sample_width: int
    frames: int

    @property
    def duration(self) -> float:
        """Length in seconds: ``frames / rate``."""
        return self.frames / self.rate

    @property
    def pcm_bytes(self) -> int:
        """Size of the PCM data in bytes (without the header)."""
        return self.frames * self.channels * self.sample_width


def _check_format(rate: Any, channels: Any, sample_width: Any) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int) or not 0 < rate <= MAX_RATE:
        raise ValueError(
            f"rate must be a positive whole number of frames per second (Hz) up to "
            f"{MAX_RATE} (what a WAV header holds), e.g. 24000, not {rate!r}."
        )
    if (
        isinstance(channels, bool)
        or not isinstance(channels, int)
        or not 0 < channels <= MAX_CHANNELS
    ):
        raise ValueError(
            f"channels must be a whole number from 1 to {MAX_CHANNELS} (1 is mono), "
            f"not {channels!r}."
        )
    if sample_width not in SUPPORTED_SAMPLE_WIDTHS or isinstance(sample_width, bool):
        raise ValueError(
            f"sample_width must be one of {SUPPORTED_SAMPLE_WIDTHS} bytes per sample "
            f"(2 is 16-bit PCM, what the Live API sends), not {sample_width!r}."
        )
    frame = channels * sample_width
    if frame > MAX_CHANNELS or rate * frame > MAX_RATE:
        raise ValueError(
            f"{rate} Hz x {channels} channel(s) x {sample_width} byte(s) is {rate * frame} "
            f"bytes per second (frames of {frame} bytes); a WAV header holds at most "
            f"{MAX_RATE} bytes per second and frames of at most {MAX_CHANNELS} bytes."
        )


def _check_pcm(pcm: Any, fmt: PcmFormat) -> memoryview:
    if isinstance(pcm, str):
        raise TypeError(
            "PCM audio must be bytes, not str. If this is the base64 text of an "
            "inlineData part, decode it first with base64.b64decode(text); the SDK's "
            "part.inline_data.data and message.data are already bytes."
        )
    if not isinstance(pcm, _BytesLike):
        raise TypeError(
            f"PCM audio must be bytes, bytearray or memoryview, not {type(pcm).__name__}. "
            "Pass message.data or part.inline_data.data from the SDK."
        )
    view = memoryview(pcm).cast("B")
    if len(view) % fmt.frame_size:
        raise ValueError(
            f"{len(view)} bytes is not a whole number of frames: a frame is "
            f"{fmt.frame_size} bytes ({fmt.channels} channel(s) x {fmt.sample_width} "
            f"byte(s) per sample), so {len(view) % fmt.frame_size} byte(s) are left "
            "over. Check the sample width and channels, or that the chunk was not cut."
        )
    return view


_PCM_MIME = re.compile(r"^\s*audio/(pcm|l16)\s*(;.*)?$", re.IGNORECASE)


def parse_pcm_mime_type(mime_type: str, *, default_rate: int | None = None) -> PcmFormat:
    """Read the PCM layout from a MIME type such as ``audio/pcm;rate=24000``.

    ``audio/pcm`` and ``audio/L16`` are accepted, with parameters ``rate`` and
    ``channels`` in any order and case. Samples are 16-bit.

    Args:
        mime_type: The ``mimeType`` of an inline data part.
        default_rate: Rate in Hz to use when the MIME type names none. Defaults to
            None, which makes a missing rate an error.

    Returns:
        The sample rate, channels (default 1) and sample width (2 bytes).

    Raises:
        ValueError: The MIME type is not raw PCM, or its rate or channels are not
            positive whole numbers, or it has no rate and ``default_rate`` is None.
    """
    if not isinstance(mime_type, str):
        raise TypeError(
            f"mime_type must be a str such as 'audio/pcm;rate=24000', not {mime_type!r}"
        )
    match = _PCM_MIME.match(mime_type)
    if not match:
        raise ValueError(
            f"{mime_type!r} is not raw PCM audio: expected 'audio/pcm;rate=<Hz>' (or "
            "audio/L16). Compressed formats such as audio/mpeg need a decoder, not a WAV header."
        )
    params: dict[str, str] = {}
    for item in (match.group(2) or "").split(";"):
        if item.strip():
            key, _, value = item.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
    values: dict[str, int] = {}
    for key in ("rate", "channels"):
        if key in params:
            try:
                values[key] = int(params[key])
            except ValueError:
                raise ValueError(
                    f"{key}={params[key]!r} in {mime_type!r} is not a whole number."
                ) from None
    rate = values.get("rate", default_rate)
    if rate is None:
        raise ValueError(
            f"{mime_type!r} does not say its sample rate; pass default_rate "
            "(the Live API sends 24000 Hz, and expects 16000 Hz input)."
        )
    return PcmFormat(rate=rate, channels=values.get("channels", 1))


def pcm_duration(
    pcm: _BytesLike | int,
    *,
    rate: int = LIVE_API_OUTPUT_RATE,
    channels: int = 1,
    sample_width: int = 2,
) -> float:
    """Return the duration in seconds of raw PCM (bytes, or a byte count)."""
    fmt = PcmFormat(rate, channels, sample_width)
    nbytes = pcm if isinstance(pcm, int) else len(_check_pcm(pcm, fmt))
    return fmt.duration(nbytes)


#: Largest PCM data a WAV file holds, in bytes: its sizes are 32-bit fields.
MAX_DATA_BYTES = 0xFFFF_FFFF


def _header(fmt: PcmFormat) -> bytearray:
    """The WAV header stdlib ``wave`` writes for ``fmt``, for 0 frames."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(fmt.channels)
        wav.setsampwidth(fmt.sample_width)
        wav.setframerate(fmt.rate)
    header = bytearray(buffer.getvalue())
    # RIFF <size> WAVE ... data <size>: the two sizes are patched as the data grows.
    assert header[:4] == b"RIFF" and header[-8:-4] == b"data", "unexpected WAV header"
    return header


class WavWriter:
    """Appends PCM chunks to an open WAV file. Made by :func:`wave_file`.

    Each :meth:`write` appends the chunk, then rewrites the header's two sizes (the RIFF
    chunk's and the data chunk's, what ``wave`` patches), each with one unbuffered
    system call, so when it returns the file is a valid WAV holding every chunk written
    so far, even if the process is killed right after. (The data is handed to the OS,
    not forced to the physical disk: a power cut may still lose the last chunks.)

    Attributes:
        path: The file being written.
        format: Its rate, channels and sample width.
    """

    def __init__(self, path: Path, fmt: PcmFormat, file: BinaryIO, header: bytearray) -> None:
        self.path = path
        self.format = fmt
        self._file: BinaryIO | None = file
        self._fd = file.fileno()
        self._header = header
        self._patch = memoryview(header)[4:]  # from the RIFF size to the data size
        self._bytes = 0
        self._chunks = 0

    def write(self, pcm: _BytesLike) -> int:
        """Append one chunk of PCM audio.

        Args:
            pcm: Little-endian PCM in the writer's format (for the Live API, 16-bit
                mono at 24 000 Hz), e.g. ``message.data``.

        Returns:
            The number of bytes written. When this returns, the chunk and the patched
            header are written to the operating system.

        Raises:
            TypeError: ``pcm`` is not bytes-like (e.g. base64 text).
            ValueError: Its length is not a whole number of frames, the file would
                exceed the 4 GiB a WAV file holds, or the file is closed. Nothing of
                a rejected chunk is written.
            OSError: Writing failed (e.g. the disk is full); the file is cut back to
                the chunks written before, so it stays a valid WAV of them.
        """
        view = _check_pcm(pcm, self.format)
        if self._file is None:
            raise ValueError(f"{self.path} is closed; open a new wave_file() to write more.")
        size = len(view)
        if not size:
            return 0
        total = self._bytes + size
        header = self._header
        if len(header) - 8 + total > MAX_DATA_BYTES:
            raise ValueError(
                f"{self.path} would exceed the 4 GiB a WAV file holds; start a new file."
            )
        try:
            written = os.write(self._fd, view)
            while written < size:  # a short write (rare for files): write the rest
                written += os.write(self._fd, view[written:])
        except BaseException:
            self._rewind()
            raise
        struct.pack_into("<L", header, 4, len(header) - 8 + total)
        struct.pack_into("<L", header, len(header) - 4, total)
        self._bytes = total
        self._chunks += 1
        self._write_header()
        return size

    def _write_header(self) -> None:
        """Write the header's sizes (bytes 4 to the end of the header) in place."""
        if _PWRITE is not None:
            _PWRITE(self._fd, self._patch, 4)
            return
        end = os.lseek(self._fd, 0, os.SEEK_CUR)  # Windows: no pwrite
        os.lseek(self._fd, 4, os.SEEK_SET)
        try:
            os.write(self._fd, self._patch)
        finally:
            os.lseek(self._fd, end, os.SEEK_SET)

    def _rewind(self) -> None:
        """After a failed write: cut the file back to the header and the data written."""
        end = len(self._header) + self._bytes
        try:
            os.ftruncate(self._fd, end)
            os.lseek(self._fd, end, os.SEEK_SET)
        except OSError:
            pass  # the header still names only the earlier data

    @property
    def chunks(self) -> int:
        """Number of non-empty chunks written."""
        return self._chunks

    @property
    def pcm_bytes(self) -> int:
        """Bytes of PCM written so far (without the header)."""
        return self._bytes

    @property
    def frames(self) -> int:
        """Frames written so far."""
        return self._bytes // self.format.frame_size

    @property
    def duration(self) -> float:
        """Seconds of audio written so far."""
        return self.format.duration(self._bytes)

    @property
    def closed(self) -> bool:
        """Whether the header is final and the file closed."""
        return self._file is None

    def close(self) -> None:
        """Close the file (safe to call twice); its header is final after every write."""
        file, self._file = self._file, None
        if file is not None:
            file.close()


_PWRITE = getattr(os, "pwrite", None)


def _open(path: str | os.PathLike[str], fmt: PcmFormat) -> tuple[Path, BinaryIO, bytearray]:
    target = Path(path)
    if target.suffix.lower() != ".wav":
        raise ValueError(f"{str(target)!r} should end in .wav so players recognise it.")
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"The folder {str(target.parent)!r} does not exist; create it first "
            "(quickstart_helpers.paths.output_dir() makes the run's output folder)."
        )
    header = _header(fmt)
    # Unbuffered: every write is a system call, so nothing waits in a Python buffer.
    fh = open(target, "wb", buffering=0)  # noqa: SIM115 - closed by WavWriter.close()
    try:
        fh.write(header)  # the file is a valid (empty) WAV from the start
    except BaseException:
        fh.close()
        target.unlink(missing_ok=True)
        raise
    return target, fh, header


@contextmanager
def wave_file(
    path: str | os.PathLike[str],
    *,
    rate: int = LIVE_API_OUTPUT_RATE,
    channels: int = 1,
    sample_width: int = 2,
) -> Iterator[WavWriter]:
    """Open a WAV file for streamed PCM chunks; finalize it when the block ends.

    Example::

        with wave_file("reply.wav") as wav:
            async for message in session.receive():
                if message.data:
                    wav.write(message.data)

    Args:
        path: File to create or overwrite; must end in ``.wav``; its folder must exist.
        rate: Sample rate in Hz. Defaults to 24000 (the Live API's output).
        channels: Number of channels. Defaults to 1 (mono).
        sample_width: Bytes per sample. Defaults to 2 (16-bit).

    Yields:
        A :class:`WavWriter`. The file is a valid WAV from the moment it is opened;
        every :meth:`WavWriter.write` writes its chunk and the patched header to the
        operating system before returning, so a crash or kill at any point leaves a
        valid WAV of every chunk written. The file is closed when the block exits,
        also when it raises, and keeps every chunk written before the error.

    Raises:
        ValueError: A bad rate, channel count, sample width or file suffix (checked
            before the file is created).
        OSError: The file cannot be created.
    """
    fmt = PcmFormat(rate, channels, sample_width)
    target, fh, header = _open(path, fmt)
    writer = WavWriter(target, fmt, fh, header)
    try:
        yield writer
    finally:
        writer.close()


def write_wav(
    path: str | os.PathLike[str],
    pcm: _BytesLike,
    *,
    rate: int = LIVE_API_OUTPUT_RATE,
    channels: int = 1,
    sample_width: int = 2,
) -> WavInfo:
    """Write a whole buffer of PCM audio to a WAV file.

    The input is checked before the file is created, so bad input leaves no file.

    Args:
        path: File to create or overwrite; must end in ``.wav``.
        pcm: Little-endian PCM bytes, a whole number of frames.
        rate: Sample rate in Hz. Defaults to 24000.
        channels: Number of channels. Defaults to 1.
        sample_width: Bytes per sample. Defaults to 2.

    Returns:
        The written file's format and length.

    Raises:
        TypeError: ``pcm`` is not bytes-like.
        ValueError: A bad format, or ``pcm`` is not a whole number of frames.
    """
    fmt = PcmFormat(rate, channels, sample_width)
    view = _check_pcm(pcm, fmt)
    with wave_file(path, rate=rate, channels=channels, sample_width=sample_width) as wav:
        wav.write(view)
    return WavInfo(Path(path), rate, channels, sample_width, len(view) // fmt.frame_size)


def wav_info(path: str | os.PathLike[str]) -> WavInfo:
    """Read a WAV file's format and length (not its samples).

    Raises:
        FileNotFoundError: There is no such file.
        wave.Error: The file is not a PCM WAV file.
    """
    with wave.open(str(path), "rb") as wav:
        return WavInfo(
            Path(path),
            wav.getframerate(),
            wav.getnchannels(),
            wav.getsampwidth(),
            wav.getnframes(),
        )


def _describe(info: WavInfo) -> str:
    layout = "mono" if info.channels == 1 else f"{info.channels} channels"
    return f"{info.duration:.2f} s, {info.rate} Hz, {info.sample_width * 8}-bit {layout}"


#: Seconds of audio embedded as a preview by :func:`wav_player`.
PREVIEW_SECONDS = 2.0

#: Sample rate of the embedded preview, in Hz (8-bit mono: 8 KB per second).
PREVIEW_RATE = 8_000


def preview_wav(path: str | os.PathLike[str], seconds: float = PREVIEW_SECONDS) -> bytes:
    """Return a small WAV of the start of a file: 8 kHz, 8-bit, mono.

    The first ``seconds`` are mixed down to mono and resampled to :data:`PREVIEW_RATE`
    (each output sample is the mean of the input samples it covers), then stored as
    8-bit unsigned PCM, which every browser plays: about 8 KB per second.

    Args:
        path: A PCM WAV file (8-, 16-, 24- or 32-bit, any rate and channel count).
        seconds: How much of the start to keep. Must be positive.

    Returns:
        The preview as the bytes of a WAV file.

    Raises:
        ValueError: ``seconds`` is not positive.
        FileNotFoundError: There is no such file.
        wave.Error: The file is not a PCM WAV file.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, not {seconds}.")
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        raw = wav.readframes(round(seconds * rate))
    frame = channels * width
    count = len(raw) // frame

    def sample(i: int) -> int:
        """Mean of the channels of frame i, as a signed 16-bit value."""
        total = 0
        for c in range(channels):
            at = i * frame + c * width
            if width == 1:
                value = (raw[at] - 128) << 8
            else:
                value = int.from_bytes(raw[at : at + width], "little", signed=True)
                value >>= 8 * (width - 2)
            total += value
        return total // channels

    out = bytearray()
    step = rate / PREVIEW_RATE
    for j in range(int(count / step)):
        lo, hi = int(j * step), max(int(j * step) + 1, int((j + 1) * step))
        hi = min(hi, count)
        mean = sum(sample(i) for i in range(lo, hi)) // (hi - lo)
        out.append(max(0, min(255, (mean >> 8) + 128)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as preview:
        preview.setnchannels(1)
        preview.setsampwidth(1)
        preview.setframerate(PREVIEW_RATE)
        preview.writeframes(bytes(out))
    return buffer.getvalue()


class WavPlayer:
    """A notebook display of a WAV file: its label, a short embedded preview, a link.

    Made by :func:`wav_player`. The plain-text form is ``name: 2.40 s, 24000 Hz,
    16-bit mono``. The HTML form shows that label above an ``<audio>`` player holding
    a short low-rate preview of the start (embedded, so it plays in JupyterLab, Jupyter
    Notebook and Colab whatever folder the server serves), then a link to the full file
    when the file lies in the notebook's folder or below it (a relative link that needs
    no ``..`` works wherever Jupyter was started), else the file's name.

    Attributes:
        info: The file's format and duration.
        src: The link to the full file, relative to the notebook's folder, or None.
        preview: The embedded preview, as WAV bytes (see :func:`preview_wav`).
        preview_seconds: The preview's length in seconds.
    """

    def __init__(
        self, info: WavInfo, src: str | None, preview: bytes, preview_seconds: float
    ) -> None:
        self.info = info
        self.src = src
        self.preview = preview
        self.preview_seconds = preview_seconds

    def __repr__(self) -> str:
        return f"{self.info.path.name}: {_describe(self.info)}"

    def _repr_html_(self) -> str:
        name = html.escape(self.info.path.name)
        label = f"<code>{name}</code>: {html.escape(_describe(self.info))}"
        data = base64.b64encode(self.preview).decode("ascii")
        if self.src is None:
            full = f"full file: <code>{name}</code> in the output folder"
        else:
            src = html.escape(self.src, quote=True)
            full = f'full file: <a href="{src}" target="_blank">{name}</a>'
        shown = min(self.preview_seconds, self.info.duration)
        return (
            f"<div>{label}<br>"
            f'<audio controls preload="auto" src="data:audio/wav;base64,{data}"></audio><br>'
            f"<small>Preview: the first {shown:.1f} s at 8 kHz; {full}.</small></div>"
        )


def wav_player(
    path: str | os.PathLike[str],
    *,
    notebook_dir: str | os.PathLike[str] | None = None,
    preview_seconds: float = PREVIEW_SECONDS,
) -> WavPlayer:
    """Return a notebook display of a WAV file: label, short embedded preview, link.

    Only a short, low-rate preview is embedded (about 16 KB for 2 s), so a notebook
    stays small and its stored outputs hold no file paths; the full file is linked
    when it lies under the notebook's folder (see :class:`WavPlayer`). In a Jupyter
    kernel, :func:`quickstart_helpers.paths.output_dir` puts a notebook's files in
    ``output/`` next to it, so their links resolve whether Jupyter serves the notebook's
    folder or one above it. To embed a whole file on purpose, use
    ``IPython.display.Audio(filename=path)``.

    Args:
        path: A WAV file.
        notebook_dir: The folder of the notebook that shows the player, where links
            start. Defaults to ``$QUICKSTART_NOTEBOOK_DIR`` (for a copy of the notebook
            saved elsewhere), else the current working directory (a notebook's kernel
            runs in its folder).
        preview_seconds: Seconds of the start to embed. Defaults to 2.

    Raises:
        FileNotFoundError: There is no such file.
        wave.Error: The file is not a PCM WAV file.
        ValueError: ``preview_seconds`` is not positive.
    """
    info = wav_info(path)
    preview = preview_wav(path, preview_seconds)
    if notebook_dir is None:
        notebook_dir = settings.notebook_dir() or Path.cwd()
    target = Path(path).resolve()
    start = Path(notebook_dir).resolve()
    src = target.relative_to(start).as_posix() if target.is_relative_to(start) else None
    return WavPlayer(info, src, preview, preview_seconds)

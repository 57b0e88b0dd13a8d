"""The Live API recordings with real speech (``recordings/live.toml``, whose opening
comment gives the rules applied here). Needs ``espeak-ng`` and ``sox``."""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import _authoring as a

from quickstart_helpers import settings
from quickstart_helpers.emulator import FORMAT, LiveCassette
from quickstart_helpers.emulator._cassette import LiveAudio, LiveMessage, LiveTurn
from quickstart_helpers.emulator._live_wire import load_audio, wav_bytes


def synthesize(text: str, voice: list[str], rate: int) -> bytes:
    """Speak ``text`` with espeak-ng; return 16-bit mono PCM at ``rate`` Hz (via sox).

    Raises:
        RuntimeError: espeak-ng or sox is not installed.
    """
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed: apt-get install espeak-ng sox")
    with tempfile.TemporaryDirectory() as tmp:
        raw, resampled = Path(tmp) / "espeak.wav", Path(tmp) / "resampled.wav"
        subprocess.run(["espeak-ng", *voice, "-w", str(raw), text], check=True)
        # -R: repeatable dither, so authoring again writes the same WAV bytes.
        sox = ["sox", "-R", str(raw), "-r", str(rate), "-b", "16", "-c", "1", str(resampled)]
        subprocess.run([*sox, "gain", "-n", "-3"], check=True)
        got, pcm = load_audio(resampled)  # 16-bit mono, or ValueError
        assert got == rate
        return pcm


def pieces(text: str, count: int) -> list[str]:
    """``text`` in ``count`` pieces of whole words, as outputTranscription sends it."""
    words = text.split()
    count = max(1, min(count, len(words)))
    return [
        (" " if i else "")
        + " ".join(words[len(words) * i // count : len(words) * (i + 1) // count])
        for i in range(count)
    ]


class Session:
    """One Live session's messages and running token count (the prompt grows each turn)."""

    def __init__(self, family: dict[str, Any]) -> None:
        self.f = family
        self.tokens = a.estimate_tokens(family["narrator"])
        self.chunk = family["rate"] * family["chunk_ms"] // 1000  # frames per audio chunk
        self.heard = b""  # a spoken turn's question: 16 kHz PCM

    def usage(self, sent: str, frames: int, *, keep: bool = True) -> dict[str, Any]:
        """Usage of a reply of ``frames`` audio frames to ``sent`` (``keep``: it ends the turn;
        a spoken ``sent`` counts as speech of its length)."""
        heard = math.ceil(len(self.heard) / 32000 * self.f["audio_tokens_per_second"])
        prompt = self.tokens + (heard or a.estimate_tokens(sent))
        response = math.ceil(frames / self.f["rate"] * self.f["audio_tokens_per_second"])
        if keep:
            self.tokens = prompt + response
        return {
            "promptTokenCount": prompt,
            "responseTokenCount": response,
            "totalTokenCount": prompt + response + self.f["thoughts"],
            "promptTokensDetails": [
                {"modality": "AUDIO" if heard else "TEXT", "tokenCount": prompt}
            ],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": response}],
            "thoughtsTokenCount": self.f["thoughts"],  # last, as in tests/wire/live/
        }

    def audio(
        self, file: str, frames: int, text: str, sent: str, stop: int | None
    ) -> list[LiveMessage]:
        """One reply's audio chunks, pieces of its transcription in the same events, and
        midway a message carrying only the running usage."""
        end = frames if stop is None else min(frames, stop)
        starts = list(range(0, end, self.chunk))
        words = text.split()
        if stop is not None:
            words = words[: max(1, round(len(words) * end / frames))]
        said = pieces(" ".join(words), max(1, len(starts) // 6))
        every = max(1, len(starts) // len(said))
        out = []
        for i, start in enumerate(starts):
            message = {}
            if i % every == 0 and said:
                message = {"serverContent": {"outputTranscription": {"text": said.pop(0)}}}
            delay = self.f["first_ms"] if i == 0 else self.f["every_ms"]
            audio = LiveAudio(file=file, start=start, frames=min(self.chunk, end - start))
            out.append(
                LiveMessage(
                    delay_ms=delay, audio=audio, **({"message": message} if message else {})
                )
            )
            if i == len(starts) // 2:
                usage = self.usage(sent, start + self.chunk, keep=False)
                out.append(LiveMessage(delay_ms=0, message={"usageMetadata": usage}))
        out += [
            LiveMessage(delay_ms=0, message={"serverContent": {"outputTranscription": {"text": p}}})
            for p in said
        ]
        return out

    def turn(self, spec: dict[str, Any], folder: str, files: list[a.Output]) -> LiveTurn:
        """One turn: its reply spoken, cut (interrupted or dropped) or complete."""
        sent, spoken = spec["input"], spec.get("reply", spec["input"])
        if "spoken" in spec:  # the user speaks `input`: a 16 kHz WAV in the package and here
            self.heard = synthesize(sent, self.f["user_voice"], 16000)
            for path in (
                f"quickstart_helpers/data/{spec['spoken']}",
                f"assets/cassettes/{folder}/audio/{spec['spoken']}",
            ):
                files.append((path, wav_bytes(self.heard, 16000)))
        pcm = synthesize(spoken, self.f["voice"], self.f["rate"])
        frames, stop = len(pcm) // 2, None
        if "interrupt_s" in spec:
            stop = int(spec["interrupt_s"] * self.f["rate"]) // self.chunk * self.chunk
        if "drop_after" in spec:
            stop = int(frames * spec["drop_after"]) // self.chunk * self.chunk
        file = f"audio/{spec['audio']}.wav"
        kept = pcm if stop is None else pcm[: stop * 2]
        files.append((f"assets/cassettes/{folder}/{file}", wav_bytes(kept, self.f["rate"])))
        messages = self.audio(file, frames, spoken, sent, stop)
        complete = {"serverContent": {"turnComplete": True}}
        if "interrupt_s" in spec:
            messages.append(
                LiveMessage(delay_ms=60, message={"serverContent": {"interrupted": True}})
            )
            usage = self.usage(sent, stop or 0)
            messages.append(LiveMessage(delay_ms=30, message=complete | {"usageMetadata": usage}))
        elif "drop_after" in spec:
            messages.append(LiveMessage(delay_ms=40, break_=True))
        else:
            if "go_away" in spec:
                go_away = {"goAway": {"timeLeft": spec["go_away"]}}
                messages.append(LiveMessage(delay_ms=20, message=go_away))
            done = {"serverContent": {"generationComplete": True}}
            usage = self.usage(sent, frames)
            messages.append(LiveMessage(delay_ms=10, message=done))
            messages.append(LiveMessage(delay_ms=30, message=complete | {"usageMetadata": usage}))
        if not self.heard:
            return LiveTurn(input=sent, messages=messages)
        heard = [{"serverContent": {"inputTranscription": {"text": p}}} for p in pieces(sent, 3)]
        messages[:0] = [LiveMessage(delay_ms=90, message=m) for m in heard]
        spoken_audio = LiveAudio(
            file=f"audio/{spec['spoken']}", start=0, frames=len(self.heard) // 2
        )
        return LiveTurn(audio=spoken_audio, messages=messages)


def outputs(family: dict[str, Any], folder: str) -> list[a.Output]:
    """The Live cassettes of ``folder`` (``live`` or ``faults``) and their WAV files."""
    model = getattr(settings, family["model"])
    files: list[a.Output] = []
    for spec in family["cassette"]:
        if spec["folder"] != folder:
            continue
        session = Session(family)
        cassette = LiveCassette(
            format=FORMAT,
            name=spec["name"],
            kind="live",
            description=spec["description"] + family["source"],
            model=model,
            **({"faults": spec["faults"]} if "faults" in spec else {}),
            setup={
                "model": f"models/{model}",
                "generationConfig": {"responseModalities": ["AUDIO"]},
                **spec.get(
                    "setup", {"systemInstruction": {"parts": [{"text": family["narrator"]}]}}
                ),
            },
            turns=[session.turn(turn, folder, files) for turn in spec["turns"]],
        )
        out = a.cassette_file(
            f"assets/cassettes/{folder}", cassette, indent=1, one_line={"messages"}
        )
        files.append(out)
    return files

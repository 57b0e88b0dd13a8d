"""Write the Live API cassettes (notebooks 04 and 07) with real speech.

Run: ``uv run python scripts/make_audio_cassettes.py``. It needs ``espeak-ng`` (the
speech) and ``sox`` (resampling to 24 kHz) from Debian: ``apt-get install espeak-ng
sox``. Running the notebooks and the tests needs neither: they read the committed files.

Each model reply is our own narration text spoken by espeak-ng, resampled to the Live
API's output format (16-bit little-endian mono PCM at 24 000 Hz) and stored as one WAV
file per reply under ``assets/cassettes/live/audio/``. The cassette JSON refers to
slices of those files: the emulator sends each slice as one ``inlineData`` chunk
(``audio/pcm;rate=24000``). Chunks are 80 ms of audio; the delays (a time to first chunk
of about 0.7 s, then chunks at twice real time) and the token counts (32 tokens per
second of audio, about 1.3 per word of text, a few thinking tokens) are modelled on the
live API, not measured.

The messages have the shapes of real ``gemini-3.1-flash-live-preview`` streams (the Live
API capabilities guide, "Receiving response"; ``docs/emulator-rules.md``): an audio chunk
and a piece of its transcription in one ``serverContent`` (several parts per event), a
message that carries only ``usageMetadata`` midway through each reply,
``generationComplete`` before ``turnComplete``, and ``thoughtsTokenCount`` in the usage.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import _authoring as authoring  # noqa: E402

from quickstart_helpers import settings  # noqa: E402
from quickstart_helpers.wav import write_wav  # noqa: E402

OUT = ROOT / "assets" / "cassettes" / "live"
AUDIO = OUT / "audio"
FAULTS = ROOT / "assets" / "cassettes" / "faults"
MODEL = settings.DEFAULT_LIVE_MODEL
RATE = 24_000
CHUNK_FRAMES = RATE * 80 // 1000  # 80 ms of audio per chunk
FIRST_DELAY_MS = 700
CHUNK_DELAY_MS = 40  # 80 ms of audio every 40 ms: twice real time
AUDIO_TOKENS_PER_SECOND = 32
THOUGHTS_TOKENS = 12  # thinkingLevel "minimal", the Live 3.1 default: a few tokens a turn
VOICE = ["-v", "en-us", "-s", "160"]

#: The system instruction every cassette was recorded with (notebook 04 sends it).
NARRATOR = (
    "You are the narrator of a short audio guide. Read each passage the user sends "
    "aloud, word for word, in a calm voice, and add nothing. If the user asks you to "
    "say something else instead, say just that."
)

#: The narration script of notebook 04 (a short audio guide to the tides), sent one
#: part per turn.
NARRATION = [
    "Welcome to this short audio guide to the tides.",
    "Twice a day, the sea creeps up the beach, then slips back again.",
    "The Moon's gravity pulls the ocean into a bulge on the side of the Earth facing it, "
    "and a second bulge forms on the far side.",
    "As the Earth turns beneath those bulges, most coasts see two high tides and two low "
    "tides a day.",
    "At new moon and full moon, the Sun and Moon pull together, and the tides run highest.",
]

LONG_PASSAGE = (
    "People have predicted the tides for centuries. Harbour masters kept tables of high "
    "water, and in eighteen seventy-two Lord Kelvin built a machine of gears and pulleys "
    "that drew the tides of a whole year."
)
BARGE_IN = "Stop there, please, and just say: thanks for listening."
BARGE_IN_REPLY = "Thanks for listening."
INTERRUPT_AFTER_S = 2.4

DROPPED = (
    "On a flat bay, the incoming tide can move faster than you can walk, so check the "
    "tide table before you cross the sands."
)
DROP_AFTER_FRACTION = 0.45


def synthesize(text: str) -> bytes:
    """Speak ``text`` with espeak-ng; return 24 kHz 16-bit mono PCM (via sox)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        resampled = Path(tmp) / "24k.wav"
        subprocess.run(["espeak-ng", *VOICE, "-w", str(raw), text], check=True)
        # -R: repeatable dither, so running the script again writes the same WAV bytes.
        sox = ["sox", "-R", str(raw), "-r", str(RATE), "-b", "16", "-c", "1", str(resampled)]
        subprocess.run([*sox, "gain", "-n", "-3"], check=True)
        with wave.open(str(resampled), "rb") as wav:
            assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (RATE, 2, 1)
            return wav.readframes(wav.getnframes())


def store(file: str, pcm: bytes, frames: int | None = None) -> int:
    """Write the first ``frames`` frames (default all) of ``pcm`` to ``OUT/file``.

    Returns the frame count of the whole of ``pcm``.
    """
    total = len(pcm) // 2
    write_wav(OUT / file, pcm[: (total if frames is None else frames) * 2], rate=RATE)
    return total


def cut_frame(frames: int, fraction: float) -> int:
    """The first frame after ``fraction`` of ``frames``, rounded down to whole chunks."""
    return int(frames * fraction) // CHUNK_FRAMES * CHUNK_FRAMES


def transcript_pieces(text: str, count: int) -> list[str]:
    """Split ``text`` into ``count`` pieces of whole words, as outputTranscription sends it."""
    words = text.split()
    count = max(1, min(count, len(words)))
    pieces = []
    for i in range(count):
        chunk = words[len(words) * i // count : len(words) * (i + 1) // count]
        pieces.append((" " if i else "") + " ".join(chunk))
    return pieces


def audio_messages(
    file: str, frames: int, text: str, context: Context, sent: str, *, stop_frame: int | None = None
) -> list[dict[str, Any]]:
    """Audio chunks of one reply, pieces of its transcription in the same events.

    Midway, one message carries only the running ``usageMetadata``.
    """
    end = frames if stop_frame is None else min(frames, stop_frame)
    starts = list(range(0, end, CHUNK_FRAMES))
    spoken_words = text.split()
    if stop_frame is not None:
        spoken_words = spoken_words[: max(1, round(len(spoken_words) * end / frames))]
    pieces = transcript_pieces(" ".join(spoken_words), max(1, len(starts) // 6))
    every = max(1, len(starts) // len(pieces))
    messages: list[dict[str, Any]] = []
    for i, start in enumerate(starts):
        message: dict[str, Any] = {"delay_ms": FIRST_DELAY_MS if i == 0 else CHUNK_DELAY_MS}
        if i % every == 0 and pieces:  # one event, two parts: audio and its transcription
            text_piece = {"outputTranscription": {"text": pieces.pop(0)}}
            message["message"] = {"serverContent": text_piece}
        message["audio"] = {"file": file, "start": start, "frames": min(CHUNK_FRAMES, end - start)}
        messages.append(message)
        if i == len(starts) // 2:  # usage so far, alone in its message
            usage = context.usage(sent, start + CHUNK_FRAMES, keep=False)
            messages.append({"delay_ms": 0, "message": {"usageMetadata": usage}})
    for piece in pieces:
        messages.append(
            {"delay_ms": 0, "message": {"serverContent": {"outputTranscription": {"text": piece}}}}
        )
    return messages


class Context:
    """Running token count of one session (the prompt grows with every turn)."""

    def __init__(self) -> None:
        self.tokens = authoring.estimate_tokens(NARRATOR)

    def usage(self, sent: str, audio_frames: int, *, keep: bool = True) -> dict[str, Any]:
        """Usage of a reply of ``audio_frames`` frames to ``sent`` (``keep``: it ends the turn)."""
        prompt = self.tokens + authoring.estimate_tokens(sent)
        response = math.ceil(audio_frames / RATE * AUDIO_TOKENS_PER_SECOND)
        if keep:
            self.tokens = prompt + response
        return {
            "promptTokenCount": prompt,
            "responseTokenCount": response,
            "totalTokenCount": prompt + response + THOUGHTS_TOKENS,
            "thoughtsTokenCount": THOUGHTS_TOKENS,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": response}],
        }


def end_of_turn(usage: dict[str, Any], *, generation_complete: bool = True) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if generation_complete:
        messages.append(
            {"delay_ms": 10, "message": {"serverContent": {"generationComplete": True}}}
        )
    messages.append(
        {
            "delay_ms": 30,
            "message": {"serverContent": {"turnComplete": True}, "usageMetadata": usage},
        }
    )
    return messages


def live_cassette(name: str, description: str, turns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "live",
        "description": description,
        "model": MODEL,
        "setup": {
            "model": f"models/{MODEL}",
            "generationConfig": {"responseModalities": ["AUDIO"]},
            "systemInstruction": {"parts": [{"text": NARRATOR}]},
        },
        "turns": turns,
    }


SOURCE = "Speech by espeak-ng (scripts/make_audio_cassettes.py); delays and token counts modelled."


def narration() -> dict[str, Any]:
    context = Context()
    turns = []
    for i, text in enumerate(NARRATION, 1):
        file = f"audio/narration_{i}.wav"
        frames = store(file, synthesize(text))
        messages = audio_messages(file, frames, text, context, text)
        messages += end_of_turn(context.usage(text, frames))
        turns.append({"input": text, "messages": messages})
    return live_cassette(
        "live_narration",
        "The narrator reads each part of notebook 04's script aloud. " + SOURCE,
        turns,
    )


def interruption() -> dict[str, Any]:
    context = Context()
    cut = int(INTERRUPT_AFTER_S * RATE) // CHUNK_FRAMES * CHUNK_FRAMES
    long_frames = store("audio/long_passage.wav", synthesize(LONG_PASSAGE), cut)
    first = audio_messages(
        "audio/long_passage.wav", long_frames, LONG_PASSAGE, context, LONG_PASSAGE, stop_frame=cut
    )
    first.append({"delay_ms": 60, "message": {"serverContent": {"interrupted": True}}})
    first += end_of_turn(context.usage(LONG_PASSAGE, cut), generation_complete=False)
    reply_frames = store("audio/thanks.wav", synthesize(BARGE_IN_REPLY))
    second = audio_messages("audio/thanks.wav", reply_frames, BARGE_IN_REPLY, context, BARGE_IN)
    second.append({"delay_ms": 20, "message": {"goAway": {"timeLeft": "10s"}}})
    second += end_of_turn(context.usage(BARGE_IN, reply_frames))
    return live_cassette(
        "live_interruption",
        "The user talks over the narrator after about 2.4 s of the first reply: the API "
        "sends `interrupted` and ends the turn; the second reply is followed by a "
        "`goAway` warning that the server will close the session in 10 s. " + SOURCE,
        [
            {"input": LONG_PASSAGE, "messages": first},
            {"input": BARGE_IN, "messages": second},
        ],
    )


def dropped_connection() -> dict[str, Any]:
    pcm = synthesize(DROPPED)
    frames = len(pcm) // 2
    stop = cut_frame(frames, DROP_AFTER_FRACTION)
    store("audio/dropped.wav", pcm, stop)
    messages = audio_messages(
        "audio/dropped.wav", frames, DROPPED, Context(), DROPPED, stop_frame=stop
    )
    messages.append({"delay_ms": 40, "break": True})
    return live_cassette(
        "live_dropped_connection",
        "The connection drops after 45% of the reply's audio (no close frame). " + SOURCE,
        [{"input": DROPPED, "messages": messages}],
    )


#: Notebook 07: three passages of a short audio guide to honeybees, read over two
#: connections (a goAway during the first reply).
GO_AWAY_PASSAGES = [
    "A honeybee gathers nectar from hundreds of flowers on a single trip.",
    "In the hive, workers fan it with their wings until it thickens into honey.",
    "Then they seal each cell with wax, to keep the honey for winter.",
]


def live_go_away() -> dict[str, Any]:
    """Three narrated turns; ``goAway`` midway through the first (faults/live_go_away.json)."""
    context = Context()
    turns = []
    for i, text in enumerate(GO_AWAY_PASSAGES, 1):
        file = f"audio/go_away_{i}.wav"
        pcm = synthesize(text)
        write_wav(FAULTS / file, pcm, rate=RATE)
        messages = audio_messages(file, len(pcm) // 2, text, context, text)
        messages += end_of_turn(context.usage(text, len(pcm) // 2))
        turns.append({"input": text, "messages": messages})
    cassette = live_cassette(
        "live_go_away",
        "07_errors_and_retries: goAway (10 s left) during the first reply; the client "
        "reconnects with its session resumption handle for the next turns. " + SOURCE,
        turns,
    )
    cassette["faults"] = [{"fault": "go_away", "turn": 0, "after": 6, "time_left": "10s"}]
    return cassette


def main() -> int:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: apt-get install espeak-ng sox", file=sys.stderr)
            return 1
    AUDIO.mkdir(parents=True, exist_ok=True)
    for old in AUDIO.glob("*.wav"):
        old.unlink()
    cassettes = [narration(), interruption(), dropped_connection()]
    # One server message per line: short, readable diffs.
    paths = authoring.write_cassettes(OUT, cassettes, indent=1, one_line={"messages"})
    (FAULTS / "audio").mkdir(parents=True, exist_ok=True)
    cassettes.append(live_go_away())
    paths += authoring.write_cassettes(FAULTS, cassettes[-1:], indent=1, one_line={"messages"})
    for path, cassette in zip(paths, cassettes, strict=True):
        print(f"wrote {path.relative_to(ROOT)} ({len(cassette['turns'])} turns)")
    total = sum(p.stat().st_size for p in AUDIO.glob("*.wav"))
    print(f"audio: {total / 1e6:.2f} MB in {AUDIO.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

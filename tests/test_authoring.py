"""The authoring (``scripts/author.py``): every shipped recording is what its source makes.

The main test authors every family into a temporary folder and compares it with
``assets/cassettes/`` and ``tests/cassettes/``: cassette JSON byte for byte, and no
shipped file without a source. The Live audio is speech by espeak-ng, resampled by sox
(both needed here; ``.ci/run`` installs them). Another espeak-ng version may render the
same text with different samples; the cassette JSON holds every reply's frame count and
slices, so a WAV that differs in its bytes must still have the same format and frame
count: a real change (other text, voice, rate or cut) still fails, through the JSON or
the frame count. The other tests pin the shared wire builders of
``scripts/_authoring.py``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import wave
from pathlib import Path

import pytest

from quickstart_helpers.emulator import FORMAT, Chunk, LiveCassette, parse_cassette
from quickstart_helpers.errors import CassetteError

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gemini-3.8-flash"
SHIPPED = ("assets/cassettes", "tests/cassettes")


def _load(name: str):
    """Load ``scripts/<name>.py`` (it puts ``scripts/`` on ``sys.path`` for its helpers)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


author = _load("author")
authoring = sys.modules["_authoring"]


def _files(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for folder in SHIPPED
        for p in sorted((root / folder).rglob("*"))
        if p.is_file() and p.suffix in {".json", ".wav"}
    }


def _wav_format(data: bytes) -> tuple[int, int, int, int]:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()


@pytest.fixture(scope="module")
def authored(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("authored")
    assert author.main(["--out", str(out)]) == 0
    return out


def test_every_shipped_recording_is_what_its_source_makes(authored):
    made, shipped = _files(authored), _files(ROOT)
    assert sorted(made) == sorted(shipped), "a shipped file has no source, or one is missing"
    differ = []
    for path, file in made.items():
        new, old = file.read_bytes(), shipped[path].read_bytes()
        if new == old:
            continue
        if path.endswith(".wav") and _wav_format(new) == _wav_format(old):
            continue  # same format and length: another espeak-ng build (see the docstring)
        differ.append(path)
    assert not differ, f"re-author with `python3 -m uv run python scripts/author.py`: {differ}"


def test_check_reports_a_file_that_differs(tmp_path, capsys):
    assert author.main(["--out", str(tmp_path), "text"]) == 0
    assert author.main(["--out", str(tmp_path), "--check", "text"]) == 0
    changed = tmp_path / "assets/cassettes/text/text_first_stream.json"
    changed.write_text(changed.read_text("utf-8").replace("yeast", "yeasts"), "utf-8")
    assert author.main(["--out", str(tmp_path), "--check", "text"]) == 1
    assert "differs: assets/cassettes/text/text_first_stream.json" in capsys.readouterr().out


def test_cassettes_are_the_emulators_models_written_in_the_shipped_layout():
    outputs = dict(author.author(["faults"]))
    text = outputs["assets/cassettes/faults/faults_overloaded.json"].decode()
    data = json.loads(text)
    assert list(data)[:3] == ["format", "name", "kind"] and list(data)[-1] == "faults"
    assert list(data["faults"][0]) == ["fault", "status", "times", "error"]
    live = parse_cassette(json.loads(outputs["assets/cassettes/faults/live_go_away.json"]))
    assert isinstance(live, LiveCassette) and live.faults[0].fault == "go_away"
    line = text.splitlines()[1]
    assert line == f'  "format": {FORMAT},'


def _chunks(**kwargs) -> list[Chunk]:
    base = {"name": "n", "model": MODEL, "prompt_tokens": 3, "answer_tokens": 4}
    return authoring.stream_chunks(**{**base, **kwargs})


def test_the_writer_refuses_what_the_sdks_models_refuse():
    chunk = _chunks(chunks=["a"], delays_ms=[1])[0]
    chunk.response["candidates"][0]["content"]["partz"] = []
    bad = authoring.generate_cassette("bad", "", MODEL, {"contents": []}, [chunk])
    with pytest.raises(CassetteError, match=r"(?s)bad\.json.*partz"):
        authoring.cassette_file("out", bad)


def test_split_text_cuts_irregular_pieces_mid_word_and_joins_back():
    text = (
        "As the dough rests, yeast feeds on the sugars in the flour and releases carbon "
        "dioxide, which the stretchy gluten network traps in thousands of tiny bubbles."
    )
    chunks = authoring.split_text(text, seed="bread", first=(3, 8), size=(10, 30))
    assert "".join(chunks) == text and 3 <= len(chunks[0]) <= 8
    assert all(10 <= len(c) <= 30 for c in chunks[1:-1]) and len(chunks[-1]) <= 30
    assert any(a[-1].isalpha() and b[0].isalpha() for a, b in zip(chunks, chunks[1:], strict=False))
    assert authoring.split_text(text, seed="other", first=(3, 8), size=(10, 30)) != chunks
    assert authoring.split_text("", seed=1) == []
    with pytest.raises(ValueError, match="low <= high"):
        authoring.split_text(text, seed=1, size=(0, 5))


def test_delays_and_token_estimates():
    delays = authoring.stream_delays(40, seed="x")
    assert 800 <= delays[0] <= 2500 and all(40 <= d <= 520 for d in delays[1:])
    assert delays == authoring.stream_delays(40, seed="x") and len(set(delays[1:])) > 10
    with pytest.raises(ValueError, match="low <= high"):
        authoring.stream_delays(3, seed="x", first_ms=(900, 800))
    assert authoring.paced_delays(5, first_ms=620, every_ms=140, jitter_ms=37) == [
        620,
        177,
        214,
        140,
        177,
    ]
    assert authoring.thinking_tokens(350) == 0 and authoring.thinking_tokens(1350) == 240
    assert authoring.estimate_tokens("one two three four five six seven eight nine ten") == 13
    assert authoring.estimate_tokens("") == 1


def test_usage_metadata_in_the_apis_key_order():
    assert authoring.usage_metadata(10) == {
        "promptTokenCount": 10,
        "totalTokenCount": 10,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}],
        "serviceTier": "standard",
    }
    final = authoring.usage_metadata(
        10, 20, thoughts=5, prompt_details=False, answer_details={"TEXT": 8, "IMAGE": 12}
    )
    assert list(final) == [
        "promptTokenCount",
        "candidatesTokenCount",
        "totalTokenCount",
        "candidatesTokensDetails",
        "thoughtsTokenCount",
        "serviceTier",
    ]
    assert final["totalTokenCount"] == 35


def test_stream_chunks_build_one_streamed_answer():
    image = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    thought = [{"text": "Hmm", "thought": True}]
    chunks = _chunks(
        chunks=[thought, "A", [{"text": "B"}, image]], delays_ms=[300, 40, 40], thoughts=2
    )
    # A thinking stream ends with an empty text part carrying the signature, and the finish.
    assert [c.delay_ms for c in chunks] == [300, 40, 40, 30]
    responses = [c.response for c in chunks]
    usages = [r["usageMetadata"] for r in responses]
    assert "candidatesTokenCount" not in usages[0] and "thoughtsTokenCount" not in usages[0]
    assert [u["candidatesTokenCount"] for u in usages[1:]] == [1, 4, 4]  # running totals
    assert usages[-1]["totalTokenCount"] == 3 + 4 + 2
    assert all("finishReason" not in r["candidates"][0] for r in responses[:-1])
    assert list(responses[-1]) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
    assert list(responses[-1]["candidates"][0]) == ["content", "finishReason", "index"]
    assert responses[-1]["candidates"][0]["content"]["parts"] == [
        {"text": "", "thoughtSignature": authoring.thought_signature("n")}
    ]
    assert {r["responseId"] for r in responses} == {authoring.response_id("n")}


def test_stream_chunks_cut_short_or_without_finish_reason():
    plain = _chunks(chunks=["a", "b"], delays_ms=[1, 1])
    assert len(plain) == 2 and plain[-1].response["candidates"][0]["finishReason"] == "STOP"
    cut = _chunks(chunks=["a", "b"], delays_ms=[1, 1], complete=False, thoughts=3)
    assert len(cut) == 2  # no signature chunk on a stream cut short
    assert all("finishReason" not in c.response["candidates"][0] for c in cut)
    no_reason = _chunks(chunks=["a"], delays_ms=[1], finish_reason=None)
    assert "finishReason" not in no_reason[0].response["candidates"][0]
    with pytest.raises(ValueError):
        _chunks(chunks=["a", "b"], delays_ms=[1])

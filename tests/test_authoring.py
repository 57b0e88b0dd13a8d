"""Unit tests of scripts/_authoring.py, the cassette authoring code of the make_* scripts."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from unittest import mock

import pytest

from quickstart_helpers.emulator import FORMAT, CassetteStore, parse_cassette
from quickstart_helpers.errors import CassetteError

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gemini-3.8-flash"


def _load(name: str):
    """Load ``scripts/<name>.py`` the way the tests load scripts (not on sys.path)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


authoring = _load("_authoring")


def _cassette(name: str = "authored", text: str = "Hi ✓") -> dict:
    chunks = authoring.stream_chunks(
        ["Hello", " there."],
        [100, 50],
        name=name,
        model=MODEL,
        prompt_tokens=authoring.estimate_tokens(text),
        answer_tokens=authoring.estimate_tokens("Hello there."),
    )
    request = {"contents": [authoring.text_content("user", text)]}
    return authoring.generate_cassette(name, "A test cassette.", MODEL, request, chunks)


def test_estimate_tokens_is_about_1_3_per_word_and_at_least_1():
    assert authoring.estimate_tokens("one two three four five six seven eight nine ten") == 13
    assert authoring.estimate_tokens("word") == 2  # ceil(1.3)
    assert authoring.estimate_tokens("") == 1
    assert authoring.estimate_tokens("  \n\t ") == 1


def test_response_id_is_stable_per_name():
    rid = authoring.response_id("text_first_stream")
    assert rid == authoring.response_id("text_first_stream")
    # The API's form (e.g. "iCUhao2zJ-LHjuMP1vvH2Qk"): 23 URL-safe base64 characters.
    assert re.fullmatch(r"[A-Za-z0-9_-]{23}", rid)
    assert rid != authoring.response_id("text_async_stream")


def test_text_content_and_paced_delays():
    assert authoring.text_content("model", "Hi") == {"role": "model", "parts": [{"text": "Hi"}]}
    delays = authoring.paced_delays(5, first_ms=620, every_ms=140, jitter_ms=37)
    assert delays == [620, 177, 214, 140, 177]
    assert authoring.paced_delays(0, first_ms=1, every_ms=1, jitter_ms=1) == []


def test_split_text_cuts_irregular_pieces_mid_word_and_joins_back():
    text = (
        "As the dough rests, yeast feeds on the sugars in the flour and releases carbon "
        "dioxide, which the stretchy gluten network traps in thousands of tiny bubbles."
    )
    chunks = authoring.split_text(text, seed="bread", first=(3, 8), size=(10, 30))
    assert "".join(chunks) == text
    assert all(chunks) and 3 <= len(chunks[0]) <= 8
    assert all(10 <= len(c) <= 30 for c in chunks[1:-1]) and len(chunks[-1]) <= 30
    assert len({len(c) for c in chunks}) > 2  # irregular, not one fixed size
    pairs = zip(chunks, chunks[1:], strict=False)
    mid_word = [a for a, b in pairs if a[-1].isalpha() and b[0].isalpha()]
    assert mid_word  # some boundaries fall inside a word
    assert authoring.split_text(text, seed="bread", first=(3, 8), size=(10, 30)) == chunks
    assert authoring.split_text(text, seed="other", first=(3, 8), size=(10, 30)) != chunks
    assert authoring.split_text("", seed=1) == []
    with pytest.raises(ValueError, match="low <= high"):
        authoring.split_text(text, seed=1, size=(0, 5))


def test_stream_delays_wait_to_think_then_come_quickly():
    delays = authoring.stream_delays(40, seed="x", first_ms=(800, 2500), gap_ms=(40, 260))
    assert 800 <= delays[0] <= 2500
    assert all(40 <= d <= 260 + 260 for d in delays[1:])
    assert max(delays[1:]) < delays[0] and len(set(delays[1:])) > 10
    assert delays == authoring.stream_delays(40, seed="x", first_ms=(800, 2500), gap_ms=(40, 260))
    assert authoring.stream_delays(0, seed="x") == []
    with pytest.raises(ValueError, match="low <= high"):
        authoring.stream_delays(3, seed="x", first_ms=(900, 800))


def test_thinking_tokens_grow_with_the_first_wait():
    assert authoring.thinking_tokens(350) == 0 == authoring.thinking_tokens(100)
    assert authoring.thinking_tokens(1350) == 240
    assert authoring.thinking_tokens(2500) > authoring.thinking_tokens(1000) > 0


def test_usage_metadata_in_the_apis_key_order():
    thought = authoring.usage_metadata(10)
    assert thought == {
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
    chunks = authoring.stream_chunks(
        [thought, "A", [{"text": "B"}, image]],
        [300, 40, 40],
        name="n",
        model=MODEL,
        prompt_tokens=3,
        answer_tokens=4,
        thoughts=2,
    )
    # A thinking stream ends with an empty text part carrying the signature, and the finish.
    assert [c["delay_ms"] for c in chunks] == [300, 40, 40, 30]
    usages = [c["response"]["usageMetadata"] for c in chunks]
    assert "candidatesTokenCount" not in usages[0] and "thoughtsTokenCount" not in usages[0]
    assert [u["candidatesTokenCount"] for u in usages[1:]] == [1, 4, 4]  # running totals
    assert usages[-1]["totalTokenCount"] == 3 + 4 + 2
    assert all(u["serviceTier"] == "standard" for u in usages)
    responses = [c["response"] for c in chunks]
    assert all("finishReason" not in r["candidates"][0] for r in responses[:-1])
    assert list(responses[-1]) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
    assert list(responses[-1]["candidates"][0]) == ["content", "finishReason", "index"]
    assert list(responses[-1]["candidates"][0]["content"]) == ["parts", "role"]
    assert responses[-1]["candidates"][0]["content"]["parts"] == [
        {"text": "", "thoughtSignature": authoring.thought_signature("n")}
    ]
    assert {r["responseId"] for r in responses} == {authoring.response_id("n")}
    assert {r["modelVersion"] for r in responses} == {MODEL}


def test_stream_chunks_without_thinking_cut_short_or_without_finish_reason():
    kwargs = {"name": "n", "model": MODEL, "prompt_tokens": 1, "answer_tokens": 2}
    plain = authoring.stream_chunks(["a", "b"], [1, 1], **kwargs)
    assert len(plain) == 2 and plain[-1]["response"]["candidates"][0]["finishReason"] == "STOP"
    cut = authoring.stream_chunks(["a", "b"], [1, 1], complete=False, thoughts=3, **kwargs)
    assert len(cut) == 2  # no signature chunk on a stream cut short
    assert all("finishReason" not in c["response"]["candidates"][0] for c in cut)
    no_reason = authoring.stream_chunks(["a"], [1], finish_reason=None, **kwargs)
    assert "finishReason" not in no_reason[0]["response"]["candidates"][0]
    assert no_reason[0]["response"]["usageMetadata"]["candidatesTokenCount"] == 2
    with pytest.raises(ValueError):
        authoring.stream_chunks(["a", "b"], [1], **kwargs)


def test_generate_cassette_is_valid_with_format_first():
    cassette = _cassette()
    assert next(iter(cassette)) == "format" and cassette["format"] == FORMAT
    parsed = parse_cassette(cassette)
    assert parsed.kind == "generate" and parsed.name == "authored"


def test_authored_cassettes_are_written_and_load_back(tmp_path):
    cassette = _cassette()
    del cassette["format"]  # the writer adds it
    (path,) = authoring.write_cassettes(tmp_path / "out", [cassette])
    assert path == tmp_path / "out" / "authored.json"
    text = path.read_text("utf-8")
    assert text.startswith('{\n  "format": 1,\n') and text.endswith("}\n")
    assert "Hi ✓" in text  # UTF-8, not \u escapes
    (loaded,) = CassetteStore([tmp_path / "out"]).cassettes
    assert loaded.request == cassette["request"] and loaded.path == path
    assert json.loads(text) == {"format": FORMAT, **cassette}
    assert sorted(os.listdir(tmp_path / "out")) == ["authored.json"]  # no temp file left


def test_writer_refuses_an_invalid_cassette_before_writing_anything(tmp_path):
    bad = _cassette("bad")
    bad["chunks"][0]["response"]["candidates"][0]["content"]["partz"] = []
    with pytest.raises(CassetteError, match=r"(?s)bad\.json.*partz"):
        authoring.write_cassettes(tmp_path / "new", [_cassette("good"), bad])
    assert not (tmp_path / "new").exists()
    with pytest.raises(CassetteError):
        authoring.write_cassettes(tmp_path / "new", [{"name": "no model"}])
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="unique"):
        authoring.write_cassettes(tmp_path / "new", [_cassette("twin"), _cassette("twin", "Yo")])
    assert not (tmp_path / "new").exists()


def test_writer_replaces_files_atomically(tmp_path):
    (old,) = authoring.write_cassettes(tmp_path, [_cassette(text="first")])
    before = old.read_bytes()
    with (
        mock.patch.object(authoring.os, "replace", side_effect=OSError("disk full")),
        pytest.raises(OSError, match="disk full"),
    ):
        authoring.write_cassettes(tmp_path, [_cassette(text="second")])
    assert old.read_bytes() == before  # the old file is whole
    assert os.listdir(tmp_path) == ["authored.json"]  # and the temp file is gone
    authoring.write_cassettes(tmp_path, [_cassette(text="second")])
    assert "second" in old.read_text("utf-8")
    assert os.listdir(tmp_path) == ["authored.json"]


def test_writer_one_line_layout_keeps_the_content(tmp_path):
    live = {
        "name": "live_one_line",
        "kind": "live",
        "model": "gemini-live",
        "turns": [
            {
                "input": "Hi",
                "messages": [
                    {"delay_ms": 5, "message": {"serverContent": {"turnComplete": True}}},
                    {"delay_ms": 5, "break": True},
                ],
            }
        ],
    }
    (path,) = authoring.write_cassettes(tmp_path, [live], indent=1, one_line={"messages"})
    lines = path.read_text("utf-8").splitlines()
    assert lines[1] == ' "format": 1,'
    assert '    {"delay_ms": 5, "message": {"serverContent": {"turnComplete": true}}},' in lines
    assert '    {"delay_ms": 5, "break": true}' in lines
    assert json.loads(path.read_text("utf-8")) == {"format": FORMAT, **live}


@pytest.mark.parametrize(
    ("script", "folders"),
    [
        ("make_text_cassettes", {"CASSETTES": "assets/cassettes/text"}),
        ("make_web_cassettes", {"CASSETTES": "assets/cassettes/web"}),
        (
            "make_chat_cassettes",
            {"NOTEBOOK": "assets/cassettes/chat", "TESTS": "tests/cassettes/chat"},
        ),
    ],
)
def test_scripts_build_the_committed_cassettes(script, folders):
    module = _load(script)
    for attribute, folder in folders.items():
        for cassette in getattr(module, attribute):
            committed = ROOT / folder / f"{cassette['name']}.json"
            assert json.loads(committed.read_text("utf-8")) == cassette, committed

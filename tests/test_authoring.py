"""Unit tests of scripts/_authoring.py, the cassette authoring code of the make_* scripts."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from unittest import mock

import pytest
from google.genai import types

from quickstart_helpers.emulator import FORMAT, CassetteStore, parse_cassette
from quickstart_helpers.errors import CassetteError

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gemini-2.5-flash"


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
    assert len(rid) == 22 and int(rid, 16) >= 0
    assert rid != authoring.response_id("text_async_stream")


def test_text_content_and_paced_delays():
    assert authoring.text_content("model", "Hi") == {"role": "model", "parts": [{"text": "Hi"}]}
    delays = authoring.paced_delays(5, first_ms=620, every_ms=140, jitter_ms=37)
    assert delays == [620, 177, 214, 140, 177]
    assert authoring.paced_delays(0, first_ms=1, every_ms=1, jitter_ms=1) == []


def test_usage_metadata_running_and_final():
    running = authoring.usage_metadata(10, thoughts=5)
    assert running == {
        "promptTokenCount": 10,
        "totalTokenCount": 15,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}],
        "thoughtsTokenCount": 5,
    }
    final = authoring.usage_metadata(
        10, 20, prompt_details=False, answer_details={"TEXT": 8, "IMAGE": 12}
    )
    assert final == {
        "promptTokenCount": 10,
        "totalTokenCount": 30,
        "candidatesTokenCount": 20,
        "candidatesTokensDetails": [
            {"modality": "TEXT", "tokenCount": 8},
            {"modality": "IMAGE", "tokenCount": 12},
        ],
    }
    types.GenerateContentResponseUsageMetadata.model_validate(final)


def test_stream_chunks_build_one_streamed_answer():
    image = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    chunks = authoring.stream_chunks(
        ["A", [{"text": "B"}, image]],
        [300, 40],
        name="n",
        model=MODEL,
        prompt_tokens=3,
        answer_tokens=4,
        thoughts=2,
    )
    assert [c["delay_ms"] for c in chunks] == [300, 40]
    first, last = (types.GenerateContentResponse.model_validate(c["response"]) for c in chunks)
    assert first.text == "A" and first.candidates[0].finish_reason is None
    assert first.usage_metadata.candidates_token_count is None
    assert first.usage_metadata.total_token_count == 5
    assert last.candidates[0].content.parts[1].inline_data.mime_type == "image/png"
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.total_token_count == 3 + 4 + 2
    assert {c["response"]["responseId"] for c in chunks} == {authoring.response_id("n")}
    assert {c["response"]["modelVersion"] for c in chunks} == {MODEL}


def test_stream_chunks_cut_short_or_without_finish_reason():
    kwargs = {"name": "n", "model": MODEL, "prompt_tokens": 1, "answer_tokens": 2}
    cut = authoring.stream_chunks(["a", "b"], [1, 1], complete=False, **kwargs)
    assert all("finishReason" not in c["response"]["candidates"][0] for c in cut)
    assert all("candidatesTokenCount" not in c["response"]["usageMetadata"] for c in cut)
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

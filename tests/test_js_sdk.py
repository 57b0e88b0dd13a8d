"""The official JavaScript SDK (``@google/genai``, run with Node) against the emulator.

The SDK is installed from the npm registry into ``build/js-sdk/`` (ignored) from
``tests/js/package.json`` when it is missing, so ``uv run pytest`` works on a fresh
machine with ``node`` and ``npm`` (``.ci/run`` installs Debian's packages). The
emulator's certificate authority is trusted with ``NODE_EXTRA_CA_CERTS``
(tests/test_emulator_command.py runs ``tests/js/exports.mjs`` with only the exports
``quickstart emulator`` prints).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from quickstart_helpers.audio import SPOKEN_QUESTION, read_pcm
from quickstart_helpers.emulator import Emulator
from quickstart_helpers.emulator._live_wire import load_audio

from ._store import STORE
from .conformance import (
    CHAT1,
    CHAT2,
    NARRATION,
    TEXT,
    chunk_texts,
    last_prompt,
    prompt_tokens,
    system_text,
    turn_pcm,
)

SPOKEN = next(c for c in STORE.cassettes if c.name == "live_spoken_question")
ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "js"
BUILD = ROOT / "build" / "js-sdk"


def install_sdk() -> Path:
    """Install the pinned SDK into build/js-sdk/ if it is not there; return the folder."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is missing: install Debian's nodejs and npm (.ci/run does)")
    BUILD.mkdir(parents=True, exist_ok=True)
    manifest = (SOURCE / "package.json").read_text()
    installed = BUILD / "node_modules" / "@google" / "genai" / "package.json"
    if not installed.exists() or (BUILD / "package.json").read_text() != manifest:
        (BUILD / "package.json").write_text(manifest)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--omit=dev"],
            cwd=BUILD,
            check=True,
            timeout=600,
        )
    for script in SOURCE.glob("*.mjs"):
        shutil.copy(script, BUILD / script.name)
    return BUILD


@pytest.fixture(scope="module")
def js_run(tmp_path_factory):
    folder = install_sdk()
    folder_js = tmp_path_factory.mktemp("js")
    wav_path = folder_js / "turn.wav"
    (folder_js / "question.pcm").write_bytes(read_pcm(SPOKEN_QUESTION))
    cases = {
        "text": {"model": TEXT.model, "prompt": last_prompt(TEXT)},
        "chat": {
            "model": CHAT1.model,
            "system": system_text(CHAT1),
            "prompts": [last_prompt(CHAT1), last_prompt(CHAT2)],
        },
        "live": {
            "model": NARRATION.model,
            "system": system_text(NARRATION),
            "prompt": NARRATION.turns[0].input,
            "wav": str(wav_path),
        },
        "spoken": {
            "model": SPOKEN.model,
            "pcm": str(folder_js / "question.pcm"),
            "reply": str(folder_js / "reply.pcm"),
        },
    }
    with Emulator(pacing="fast") as emulator:
        env = {
            **os.environ,
            "BASE_URL": emulator.base_url,
            "CASES": json.dumps(cases),
            "NODE_EXTRA_CA_CERTS": str(emulator.certificate.cert_file),
        }
        result = subprocess.run(
            ["node", "conformance.mjs"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        requests = list(emulator.requests)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), wav_path, requests


def test_generate_content_stream(js_run):
    out, _, _ = js_run
    assert out["stream"] == chunk_texts(TEXT)


def test_chat_send_message_stream(js_run):
    out, _, _ = js_run
    assert out["chat"] == [chunk_texts(CHAT1), chunk_texts(CHAT2)]


def test_models_list_pages_and_count_tokens(js_run):
    out, _, _ = js_run
    assert f"models/{TEXT.model}" in out["models"]
    assert len(out["models"]) == len(set(out["models"])) >= 3
    assert out["tokens"] == prompt_tokens(TEXT)
    assert out["countError"]["status"] == 404
    assert "never estimates" in out["countError"]["message"]


def test_live_connect_writes_the_cassette_pcm(js_run):
    out, wav_path, requests = js_run
    with wave.open(str(wav_path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        pcm = wav.readframes(wav.getnframes())
    assert pcm == turn_pcm(NARRATION, 0)
    live = [r for r in requests if r.method == "BidiGenerateContent"]
    assert live and live[0].cassette == NARRATION.name


def test_live_connect_streams_the_spoken_question(js_run):
    out, wav_path, requests = js_run
    assert out["spoken"] == {"heard": "How many high tides does a coast see each day?", "end": None}
    assert SPOKEN.path is not None
    recorded = load_audio(SPOKEN.path.parent / "audio" / "question_reply.wav")[1]
    assert (wav_path.parent / "reply.pcm").read_bytes() == recorded
    spoken = [r for r in requests if r.cassette == SPOKEN.name]
    assert spoken and spoken[0].method == "BidiGenerateContent"

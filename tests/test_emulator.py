"""The real google-genai SDK against the emulator over HTTPS and SSE."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from google import genai
from google.genai import errors

from quickstart_helpers.display import StreamInterrupted, stream_markdown
from quickstart_helpers.emulator import CassetteStore, Emulator
from quickstart_helpers.emulator._http import merge_chunks
from quickstart_helpers.emulator._protocol import INVALID_KEY_ERROR
from quickstart_helpers.emulator._tls import make_local_certificate

from ._sockets import raw_generate_stream

MODEL = "gemini-3.8-flash"


def _chunk(text, *, last=False):
    candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    response = {"candidates": [candidate], "modelVersion": MODEL}
    if last:
        candidate["finishReason"] = "STOP"
        response["usageMetadata"] = {
            "promptTokenCount": 4,
            "candidatesTokenCount": 9,
            "totalTokenCount": 13,
        }
    return {"delay_ms": 30, "response": response}


CHUNKS = ["Line one\nline two", " — unicode ✓ café", "", " and the end.\r\nDone"]


@pytest.fixture(scope="module")
def cassette_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cassettes")
    chunks = [_chunk(t, last=i == len(CHUNKS) - 1) for i, t in enumerate(CHUNKS)]
    cassettes = {
        "multi": {
            "format": 1,
            "kind": "generate",
            "name": "multi",
            "model": MODEL,
            "request": {"contents": [{"role": "user", "parts": [{"text": "Tell me"}]}]},
            "chunks": chunks,
        },
        "broken": {
            "format": 1,
            "kind": "generate",
            "name": "broken",
            "model": MODEL,
            "request": {"contents": [{"role": "user", "parts": [{"text": "Break"}]}]},
            "chunks": [_chunk("Partial "), _chunk("answer"), {"delay_ms": 0, "break": True}],
        },
    }
    for name, body in cassettes.items():
        (folder / f"{name}.json").write_text(json.dumps(body))
    return folder


def _emulator(cassette_dir, **kwargs):
    return Emulator(CassetteStore([cassette_dir]), pacing="fast", **kwargs)


@pytest.fixture(scope="module")
def emulator(cassette_dir):
    with _emulator(cassette_dir) as emu:
        yield emu


_clients = []


def _client(emu, key="test-key"):
    # Keep each client alive: a genai.Client closes its HTTP connections when collected.
    client = genai.Client(api_key=key, http_options=emu.http_options())
    _clients.append(client)
    return client


def _texts(chunks):
    return [c.candidates[0].content.parts[0].text or "" for c in chunks]


def test_sync_stream_yields_each_recorded_chunk(emulator):
    chunks = list(_client(emulator).models.generate_content_stream(model=MODEL, contents="Tell me"))
    assert _texts(chunks) == CHUNKS
    assert chunks[-1].candidates[0].finish_reason == "STOP"
    assert chunks[-1].usage_metadata.total_token_count == 13


def test_async_stream_yields_each_recorded_chunk(emulator):
    async def consume():
        stream = await _client(emulator).aio.models.generate_content_stream(
            model=MODEL, contents="Tell me"
        )
        return [chunk async for chunk in stream]

    assert _texts(asyncio.run(consume())) == CHUNKS


def test_non_streaming_call_merges_the_chunks(emulator):
    response = _client(emulator).models.generate_content(model=MODEL, contents="Tell me")
    assert response.text == "".join(CHUNKS)
    assert response.candidates[0].finish_reason == "STOP"
    assert response.usage_metadata.candidates_token_count == 9


def test_async_non_streaming_call(emulator):
    response = asyncio.run(
        _client(emulator).aio.models.generate_content(model=f"models/{MODEL}", contents="Tell me")
    )
    assert response.text == "".join(CHUNKS)


def test_any_api_version_is_served(cassette_dir):
    from google.genai import types

    with _emulator(cassette_dir) as emu:
        for version in ("v1", "v1beta", "v1alpha"):
            options = emu.http_options(api_version=version)
            client = genai.Client(api_key="k", http_options=options)
            assert client.models.generate_content(model=MODEL, contents="Tell me").text
        assert [r.api_version for r in emu.requests] == ["v1", "v1beta", "v1alpha"]
        assert isinstance(options, types.HttpOptions)


def test_crlf_framing_gives_the_chunks(cassette_dir):
    with _emulator(cassette_dir) as emu:
        raw = _raw_stream(emu, "Tell me")
        chunks = list(_client(emu).models.generate_content_stream(model=MODEL, contents="Tell me"))
    # generateContent streams are always framed with CRLF, as the live API frames them
    # (tests/wire/generate/).
    assert b"\r\n\r\n" in raw
    assert raw.count(b"data: ") == len(CHUNKS)
    assert _texts(chunks) == CHUNKS


def _raw_stream(emu, prompt):
    return raw_generate_stream(emu, MODEL, prompt)


def test_unmatched_request_is_a_404_naming_the_closest_cassette(emulator):
    with pytest.raises(errors.ClientError) as info:
        list(_client(emulator).models.generate_content_stream(model=MODEL, contents="Tell me more"))
    err = info.value
    assert err.code == 404
    assert err.status == "NOT_FOUND"
    assert "No recorded response (cassette) matches" in err.message
    assert "'multi'" in err.message
    assert "GEMINI_API_KEY" in err.message


def test_unmatched_model_is_refused_too(emulator):
    with pytest.raises(errors.ClientError) as info:
        _client(emulator).models.generate_content(model="gemini-other", contents="Tell me")
    assert info.value.code == 404
    assert "'gemini-other'" in info.value.message


def test_invalid_key_gets_the_live_api_error(emulator):
    with pytest.raises(errors.ClientError) as info:
        list(
            _client(emulator, key="invalid").models.generate_content_stream(
                model=MODEL, contents="Tell me"
            )
        )
    assert info.value.code == 400
    assert info.value.status == "INVALID_ARGUMENT"
    assert info.value.details == INVALID_KEY_ERROR
    reasons = [d.get("reason") for d in info.value.details["error"]["details"]]
    assert "API_KEY_INVALID" in reasons


def test_requests_are_recorded_without_the_key(emulator):
    before = len(emulator.requests)
    _client(emulator, key="AIza-never-stored").models.generate_content(
        model=MODEL, contents="Tell me"
    )
    received = emulator.requests[before]
    assert received.method == "generateContent"
    assert received.model == MODEL
    assert received.cassette == "multi"
    assert received.body["contents"][0]["parts"][0]["text"] == "Tell me"
    assert "AIza-never-stored" not in repr(emulator.requests)


def test_a_broken_stream_keeps_its_partial_text(emulator, capsys):
    stream = _client(emulator).models.generate_content_stream(model=MODEL, contents="Break")
    with pytest.raises(StreamInterrupted) as info:
        stream_markdown(stream)
    assert info.value.text == "Partial answer"
    assert capsys.readouterr().out.startswith("Partial answer")


def test_realtime_pacing_waits_for_the_recorded_delays(cassette_dir):
    with Emulator(CassetteStore([cassette_dir]), pacing="realtime") as emu:
        import time

        started = time.perf_counter()
        list(_client(emu).models.generate_content_stream(model=MODEL, contents="Tell me"))
        # Four chunks of 30 ms each must take at least their sum.
        assert time.perf_counter() - started >= 0.12


def test_merge_chunks_joins_text_and_keeps_the_last_usage(cassette_dir):
    cassette = CassetteStore([cassette_dir]).find(
        MODEL, {"contents": [{"parts": [{"text": "Tell me"}]}]}
    )
    merged = merge_chunks(cassette)
    assert merged["candidates"][0]["content"]["parts"] == [{"text": "".join(CHUNKS)}]
    assert merged["usageMetadata"]["totalTokenCount"] == 13


def test_invalid_cassette_file_is_a_clear_error(tmp_path):
    (tmp_path / "bad.json").write_text('{"name": "x"}')
    with pytest.raises(ValueError, match="bad.json is not a valid cassette"):
        CassetteStore([tmp_path])


def test_repository_cassettes_load(cassette_dir):
    store = CassetteStore()
    assert any(c.name == "text_first_stream" for c in store.cassettes)


def test_matching_treats_a_chunked_answer_like_the_joined_one():
    from quickstart_helpers.emulator._matching import normalize_contents

    chunked = [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hel"}]},
        {"role": "model", "parts": [{"text": "lo"}, {"text": "!"}]},
        {"parts": [{"text": "Again"}]},
    ]
    joined = [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello!"}]},
        {"role": "user", "parts": [{"text": "Again"}]},
    ]
    assert normalize_contents(chunked) == normalize_contents(joined)
    assert normalize_contents(joined) != normalize_contents(joined[:1] + joined[2:])


def test_two_cassettes_for_the_same_request_are_refused(tmp_path):
    base = {
        "format": 1,
        "kind": "generate",
        "model": MODEL,
        "request": {"contents": [{"role": "user", "parts": [{"text": "Same"}]}]},
        "chunks": [_chunk("x", last=True)],
    }
    (tmp_path / "one.json").write_text(json.dumps({**base, "name": "one"}))
    (tmp_path / "two.json").write_text(json.dumps({**base, "name": "two"}))
    with pytest.raises(ValueError, match="'one' .* and 'two' .* answer the same request"):
        CassetteStore([tmp_path])


def test_stopping_deletes_the_certificate_folder_it_made(cassette_dir, tmp_path):
    emu = _emulator(cassette_dir).start()
    folder = emu.certificate.cert_file.parent
    assert [f.name for f in folder.iterdir()] == ["emulator-ca.pem"]  # no key on disk
    emu.stop()
    assert not folder.exists()
    assert emu.certificate is None
    # A restart makes a new certificate that works, and stopping deletes that one too.
    emu.start()
    client = genai.Client(api_key="test", http_options=emu.http_options())
    assert client.models.generate_content(model=MODEL, contents="Tell me").text
    second = emu.certificate.cert_file.parent
    assert second != folder
    emu.stop()
    assert not second.exists()

    # A certificate the caller made in a folder of their own is left alone.
    mine = make_local_certificate(tmp_path / "mine")
    emu = _emulator(cassette_dir, certificate=mine).start()
    emu.stop()
    assert mine.cert_file.exists() and emu.certificate is mine


def test_an_emulator_never_stopped_leaves_no_certificate_folder_at_exit(tmp_path):
    script = (
        "from quickstart_helpers.emulator import Emulator\n"
        "emu = Emulator().start()\n"
        "print(emu.certificate.cert_file.parent, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    folder = Path(done.stdout.strip())
    assert folder.name.startswith("gemini-emulator-")
    assert not folder.exists()

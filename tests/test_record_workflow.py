"""The user's loop: record once with a key, then pass offline without one.

- the pytest plugin (``pytester``): a user's test module records in ``once`` mode, then
  passes offline in ``none`` mode; an unrecorded test fails naming the record command;
- ``quickstart record`` on a user's notebook, then ``quickstart refresh`` and an nbval
  run offline from the notebook's cassette folder;
- ``quickstart verify-cassettes``: a drift is reported when the upstream's answer
  changes structure, none otherwise.

The upstream standing in for the live API is an emulator with its own cassettes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from quickstart_cli import main
from quickstart_helpers.emulator import CassetteStore, Emulator, recording_emulator
from tests.test_record import (
    FAKE_KEY,
    PLAIN,
    STORY,
    _live_turn,
    client,
    scan_for_key,
    wait_written,
    write_upstream,
)

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Iterator[Emulator]:
    folder = tmp_path_factory.mktemp("upstream")
    write_upstream(folder)
    emulator = Emulator(store=CassetteStore([folder]), pacing="fast").start()
    yield emulator
    emulator.stop()


@pytest.fixture
def live_env(monkeypatch, upstream):
    """A fake key, and trust for the upstream emulator's certificate."""
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("QUICKSTART_UPSTREAM_CA", str(upstream.certificate.cert_file))
    monkeypatch.delenv("QUICKSTART_CASSETTES", raising=False)
    monkeypatch.delenv("QUICKSTART_MODE", raising=False)
    monkeypatch.delenv("QUICKSTART_RECORD_MODE", raising=False)


def offline_env(monkeypatch):
    """No key at all, and an upstream nobody listens on: nothing can go out."""
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("QUICKSTART_UPSTREAM", "https://127.0.0.1:9")


USER_TESTS = f"""
import pytest

MODEL = "gemini-2.5-flash"


def test_story(gemini_client):
    chunks = gemini_client.models.generate_content_stream(model=MODEL, contents={STORY!r})
    assert "".join(c.text for c in chunks) == "Once upon a time."


@pytest.mark.gemini_cassette("shared")
def test_plain(gemini_client):
    assert gemini_client.models.generate_content(model=MODEL, contents={PLAIN!r}).text == "Plain."
"""


def test_the_plugin_records_once_then_passes_offline(pytester, upstream, live_env, monkeypatch):
    pytester.makepyfile(test_user=USER_TESTS)
    recorded = pytester.runpytest_inprocess(
        "--gemini-record-mode=once", f"--gemini-upstream={upstream.base_url}", "-p", "no:randomly"
    )
    recorded.assert_outcomes(passed=2)
    root = pytester.path / "cassettes" / "test_user"
    assert len(list((root / "test_story").glob("*.json"))) == 1
    assert len(list((root / "shared").glob("*.json"))) == 1
    assert scan_for_key(pytester.path / "cassettes") == []

    offline_env(monkeypatch)
    replayed = pytester.runpytest_inprocess("-p", "no:randomly")
    replayed.assert_outcomes(passed=2)

    pytester.makepyfile(
        test_new="def test_new(gemini_client):\n"
        '    gemini_client.models.generate_content(model="gemini-2.5-flash", contents="New")\n'
    )
    unrecorded = pytester.runpytest_inprocess("test_new.py", "-p", "no:randomly")
    unrecorded.assert_outcomes(failed=1)
    unrecorded.stdout.fnmatch_lines(["*--gemini-record-mode=once*"])


def _user_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "%load_ext quickstart_helpers\nfrom google import genai\n\nclient = genai.Client()"
        ),
        nbformat.v4.new_code_cell(
            f"for chunk in client.models.generate_content_stream(\n"
            f'    model="gemini-2.5-flash", contents={STORY!r}\n):\n'
            '    print(chunk.text, end="")'
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def test_record_needs_a_key(tmp_path, monkeypatch, capsys):
    offline_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    notebook = _user_notebook(tmp_path / "mine.ipynb")
    assert main(["record", str(notebook), "--no-progress"]) == 2
    assert "recording needs your API key" in capsys.readouterr().err
    assert not (tmp_path / "cassettes").exists()


def test_a_recorded_notebook_passes_nbval_offline(
    pytester, upstream, live_env, monkeypatch, tmp_path
):
    notebook = _user_notebook(pytester.path / "mine.ipynb")
    out = tmp_path / "out"
    code = main(
        [
            "record",
            str(notebook),
            f"--upstream={upstream.base_url}",
            "--no-progress",
            f"--output={out}",
        ]
    )
    assert code == 0
    folder = pytester.path / "cassettes" / "mine"
    assert len(list(folder.glob("*.json"))) == 1
    assert scan_for_key(pytester.path) == []
    executed = nbformat.read(out / "mine.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "Once upon a time."

    offline_env(monkeypatch)
    assert main(["refresh", str(notebook)]) == 0  # stored outputs: the offline replay
    stored = nbformat.read(notebook, as_version=4)
    assert stored.cells[1].outputs[0]["text"] == "Once upon a time."
    result = pytester.runpytest_inprocess(
        "--nbval", "--nbval-current-env", "mine.ipynb", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=2)


def test_verify_cassettes_reports_structural_drift(
    tmp_path, upstream, live_env, capsys, monkeypatch
):
    stored = tmp_path / "cassettes"
    proxy = recording_emulator(
        stored,
        mode="once",
        upstream=upstream.base_url,
        upstream_ca=upstream.certificate.cert_file,
        shared=False,
    )
    try:
        sdk = client(proxy)
        list(sdk.models.generate_content_stream(model="gemini-2.5-flash", contents=STORY))
        asyncio.run(_live_turn(proxy))
        wait_written(proxy, 2)
    finally:
        proxy.stop()
    assert len(list(stored.glob("*.json"))) == 2

    assert main(["verify-cassettes", str(stored), f"--upstream={upstream.base_url}"]) == 0
    assert "2 cassette(s) checked: no drift" in capsys.readouterr().out

    # The upstream now answers the story with another structure: another finish
    # reason, and a field the stored chunks do not have.
    changed = tmp_path / "changed-upstream"
    write_upstream(changed)
    story = changed / "up_story.json"
    data = json.loads(story.read_text())
    data["chunks"][-1]["response"]["candidates"][0]["finishReason"] = "MAX_TOKENS"
    data["chunks"][0]["response"]["responseId"] = "r1"
    story.write_text(json.dumps(data))
    with Emulator(store=CassetteStore([changed]), pacing="fast") as other:
        monkeypatch.setenv("QUICKSTART_UPSTREAM_CA", str(other.certificate.cert_file))
        code = main(["verify-cassettes", str(stored), f"--upstream={other.base_url}"])
    report = capsys.readouterr().out
    assert code == 1, report
    drifted = [line for line in report.splitlines() if line.startswith("drift")]
    assert len(drifted) == 1 and "tell-me-a-story" in drifted[0]
    assert "finish: + MAX_TOKENS, - STOP" in report
    assert "fields: + responseId" in report
    assert "1 of 2 cassette(s) drifted" in report
    assert scan_for_key(stored) == []

"""make_client (the ``quickstart`` command's client): live with a key, offline without."""

from __future__ import annotations

import pytest

from quickstart_cli._client import OFFLINE_KEY, make_client, resolve_mode
from quickstart_helpers.emulator import _server as emulator_module
from quickstart_helpers.errors import MissingApiKeyError


@pytest.fixture
def no_key(monkeypatch, tmp_path):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "QUICKSTART_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_auto_with_a_key_builds_a_live_client_and_starts_no_emulator(no_key, monkeypatch, capsys):
    emulator_module.stop_emulator()
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-live-test-key")
    api_client = make_client()._api_client
    assert emulator_module._shared is None
    out = capsys.readouterr().out
    assert out == "Mode: live. Requests go to the Gemini API with your key.\n"
    assert api_client.api_key == "AIza-live-test-key"
    assert api_client._http_options.base_url.startswith("https://generativelanguage.googleapis.com")


def test_auto_with_a_dotenv_key_is_live(no_key, tmp_path):
    (tmp_path / ".env").write_text("GEMINI_API_KEY=dotenv-key\n")
    assert resolve_mode() == "live"


def test_auto_without_a_key_uses_the_shared_emulator(no_key, capsys):
    client = make_client(pacing="fast")
    assert capsys.readouterr().out.startswith("Mode: offline.")
    shared = emulator_module._shared
    assert shared is not None and shared.running
    assert client._api_client._http_options.base_url.rstrip("/") == shared.base_url
    response = client.models.generate_content(
        model="gemini-3.8-flash",
        contents="Give me four tips for exploring tide pools safely, as a numbered list.",
    )
    assert response.text.startswith("1. **Check the tide table first.**")
    make_client(quiet=True)
    assert (
        emulator_module._shared is shared and capsys.readouterr().out == ""
    )  # started once per process


def test_live_mode_without_a_key_raises(no_key):
    with pytest.raises(MissingApiKeyError, match="GEMINI_API_KEY"):
        make_client("live")


def test_offline_mode_ignores_a_key(no_key, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-unused")
    assert make_client("offline")._api_client.api_key == OFFLINE_KEY


def test_quickstart_mode_variable_overrides_auto(no_key, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-unused")
    monkeypatch.setenv("QUICKSTART_MODE", "offline")
    assert resolve_mode() == "offline"
    monkeypatch.setenv("QUICKSTART_MODE", "sideways")
    with pytest.raises(ValueError, match="QUICKSTART_MODE=.sideways. is not allowed"):
        resolve_mode()

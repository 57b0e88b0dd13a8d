"""make_client: live with a key (no emulator), offline without, never printing the key."""

from __future__ import annotations

import pytest

from quickstart_helpers.client import client_mode, make_client, resolve_mode
from quickstart_helpers.emulator import _server as emulator_module
from quickstart_helpers.env import MissingApiKeyError


@pytest.fixture
def no_key(monkeypatch, tmp_path):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "QUICKSTART_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_auto_with_a_key_builds_a_live_client_and_starts_no_emulator(no_key, monkeypatch, capsys):
    emulator_module.stop_emulator()
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-live-test-key")
    client = make_client()
    assert emulator_module._shared is None
    assert client_mode(client) == "live"
    api_client = client._api_client
    assert api_client.api_key == "AIza-live-test-key"
    assert api_client._http_options.base_url.startswith("https://generativelanguage.googleapis.com")
    out = capsys.readouterr().out
    assert out.startswith("Mode: live")
    assert "AIza-live-test-key" not in out


def test_auto_with_a_dotenv_key_is_live(no_key, tmp_path):
    (tmp_path / ".env").write_text("GEMINI_API_KEY=dotenv-key\n")
    assert resolve_mode() == "live"


def test_auto_without_a_key_uses_the_emulator(no_key, capsys):
    client = make_client(pacing="fast")
    shared = emulator_module._shared
    assert shared is not None and shared.running
    assert client_mode(client) == "offline"
    assert client._api_client._http_options.base_url.rstrip("/") == shared.base_url
    response = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="Give me four tips for writing clear prompts, as a numbered list.",
    )
    assert response.text.startswith("1. **Say what you want first.**")
    assert capsys.readouterr().out.startswith("Mode: offline")


def test_the_emulator_is_started_once_per_process(no_key):
    make_client(quiet=True)
    first = emulator_module._shared
    make_client(quiet=True)
    assert emulator_module._shared is first


def test_live_mode_without_a_key_raises(no_key):
    with pytest.raises(MissingApiKeyError, match="GEMINI_API_KEY"):
        make_client("live")


def test_offline_mode_ignores_a_key(no_key, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-unused")
    client = make_client("offline", quiet=True)
    assert client_mode(client) == "offline"
    assert client._api_client.api_key != "AIza-unused"


def test_quickstart_mode_variable_overrides_auto(no_key, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-unused")
    monkeypatch.setenv("QUICKSTART_MODE", "offline")
    assert resolve_mode() == "offline"
    monkeypatch.setenv("QUICKSTART_MODE", "sideways")
    with pytest.raises(ValueError, match="QUICKSTART_MODE=.sideways. is not allowed"):
        resolve_mode()


def test_client_mode_rejects_foreign_clients():
    from google import genai

    with pytest.raises(ValueError, match="make_client"):
        client_mode(genai.Client(api_key="x"))

"""Key loading: every source in order, .env discovery, and the missing-key message."""

from __future__ import annotations

import sys
import types

import pytest

from quickstart_helpers.env import MissingApiKeyError, load_api_key


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No key in the environment, the cwd in an empty temporary folder."""
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def colab(monkeypatch):
    """Pretend to run in Colab with a secret store holding `secrets`."""
    secrets: dict[str, str] = {}
    userdata = types.SimpleNamespace(get=lambda name: secrets[name])
    colab_module = types.ModuleType("google.colab")
    colab_module.userdata = userdata
    monkeypatch.setitem(sys.modules, "google.colab", colab_module)
    return secrets


def test_explicit_argument_wins_over_everything(clean_env, colab, monkeypatch):
    colab["GEMINI_API_KEY"] = "from-colab"
    monkeypatch.setenv("GEMINI_API_KEY", "from-env")
    (clean_env / ".env").write_text("GEMINI_API_KEY=from-dotenv\n")
    assert load_api_key("explicit") == "explicit"


def test_colab_secret_wins_over_environment(clean_env, colab, monkeypatch):
    colab["GEMINI_API_KEY"] = "from-colab"
    monkeypatch.setenv("GEMINI_API_KEY", "from-env")
    assert load_api_key() == "from-colab"


def test_missing_colab_secret_falls_through(clean_env, colab, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "from-env")
    assert load_api_key() == "from-env"


def test_gemini_variable_wins_over_google_variable(clean_env, monkeypatch):
    monkeypatch.setenv("GOOGLE_API_KEY", "google")
    monkeypatch.setenv("GEMINI_API_KEY", "gemini")
    assert load_api_key() == "gemini"
    monkeypatch.delenv("GEMINI_API_KEY")
    assert load_api_key() == "google"


def test_environment_wins_over_dotenv(clean_env, monkeypatch):
    (clean_env / ".env").write_text("GEMINI_API_KEY=from-dotenv\n")
    monkeypatch.setenv("GOOGLE_API_KEY", "from-env")
    assert load_api_key() == "from-env"


def test_dotenv_found_from_a_subfolder(clean_env, monkeypatch):
    (clean_env / ".env").write_text("GEMINI_API_KEY=root-key\n")
    notebooks = clean_env / "notebooks" / "deeper"
    notebooks.mkdir(parents=True)
    monkeypatch.chdir(notebooks)
    assert load_api_key() == "root-key"


def test_nearest_dotenv_wins(clean_env, monkeypatch):
    (clean_env / ".env").write_text("GEMINI_API_KEY=root-key\n")
    sub = clean_env / "notebooks"
    sub.mkdir()
    (sub / ".env").write_text("GOOGLE_API_KEY=nearer-key\n")
    monkeypatch.chdir(sub)
    assert load_api_key() == "nearer-key"


def test_empty_values_count_as_missing(clean_env, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "  ")
    (clean_env / ".env").write_text("GEMINI_API_KEY=\nGOOGLE_API_KEY=dotenv-google\n")
    assert load_api_key() == "dotenv-google"


def test_no_key_returns_none(clean_env):
    assert load_api_key() is None


def test_required_without_key_names_every_place_to_put_it(clean_env):
    with pytest.raises(MissingApiKeyError) as info:
        load_api_key(required=True)
    message = str(info.value)
    assert "GEMINI_API_KEY" in message
    assert ".env.example" in message
    assert ".env " in message or ".env," in message or "to .env" in message


def test_the_key_is_never_printed(clean_env, monkeypatch, capsys):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-secret-value")
    assert load_api_key(required=True) == "AIza-secret-value"
    captured = capsys.readouterr()
    assert "secret" not in captured.out + captured.err

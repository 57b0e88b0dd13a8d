"""Settings: one reader of QUICKSTART_* variables, empty values behave as unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from quickstart_cli._client import resolve_mode
from quickstart_helpers import settings
from quickstart_helpers.emulator import Emulator, cassette_dirs, shipped_cassette_dir


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "QUICKSTART_MODE",
        "QUICKSTART_PACING",
        "QUICKSTART_CASSETTES",
        "QUICKSTART_TEXT_MODEL",
        "CI",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(Path("/"))  # no .env above


def test_empty_pacing_is_unset(monkeypatch):
    monkeypatch.setenv("QUICKSTART_PACING", "")
    assert settings.pacing() == "realtime"
    assert Emulator().pacing == "realtime"  # used to raise ValueError
    monkeypatch.setenv("CI", "true")
    assert settings.pacing() == "fast"
    monkeypatch.setenv("QUICKSTART_PACING", "  ")
    assert settings.pacing() == "fast"
    monkeypatch.setenv("QUICKSTART_PACING", "realtime")
    assert settings.pacing() == "realtime"


def test_bad_pacing_names_the_variable(monkeypatch):
    monkeypatch.setenv("QUICKSTART_PACING", "slow")
    with pytest.raises(ValueError, match="QUICKSTART_PACING='slow' is not allowed"):
        settings.pacing()


def test_empty_mode_is_unset(monkeypatch):
    monkeypatch.setenv("QUICKSTART_MODE", "")
    assert settings.mode() == "auto"
    assert resolve_mode() == "offline"  # auto, and no key anywhere
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-not-used")
    assert resolve_mode() == "live"


def test_empty_model_overrides_are_unset(monkeypatch):
    for name, read, default in (
        ("QUICKSTART_TEXT_MODEL", settings.text_model, settings.DEFAULT_TEXT_MODEL),
    ):
        monkeypatch.setenv(name, "")
        assert read() == default
        monkeypatch.setenv(name, "my-model")
        assert read() == "my-model"


def test_cassette_folders_list_is_searched_after_the_shipped_ones(monkeypatch, tmp_path):
    import os

    monkeypatch.setenv("QUICKSTART_CASSETTES", "")
    assert cassette_dirs() == [shipped_cassette_dir()]
    monkeypatch.setenv("QUICKSTART_CASSETTES", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    assert cassette_dirs() == [shipped_cassette_dir(), tmp_path / "a", tmp_path / "b"]


def test_no_module_but_settings_reads_quickstart_variables():
    import re

    read = re.compile(r"(environ\.get|getenv)\(\s*[\"']QUICKSTART_|environ\[[\"']QUICKSTART_")
    package = Path(settings.__file__).parent
    readers = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if read.search(path.read_text("utf-8"))
    ]
    assert readers == []  # settings.py reads every variable through settings.get(name)
    assert "os.environ.get(name)" in Path(settings.__file__).read_text("utf-8")


def test_jobs_default_to_four_per_cpu_and_refuse_what_is_not_a_count(monkeypatch):
    monkeypatch.setattr(settings.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert settings.jobs() == 8
    monkeypatch.setenv("QUICKSTART_JOBS", "")
    assert settings.jobs() == 8
    monkeypatch.setenv("QUICKSTART_JOBS", " 3 ")
    assert settings.jobs() == 3
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("QUICKSTART_JOBS", bad)
        with pytest.raises(ValueError, match=f"QUICKSTART_JOBS={bad!r} is not allowed"):
            settings.jobs()

"""Where ``output_dir`` puts a notebook's files: the override, a Jupyter kernel, a checkout."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from quickstart_helpers import paths


def _fake_ipython(monkeypatch: pytest.MonkeyPatch, shell: object) -> None:
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", module)


@pytest.fixture()
def unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("QUICKSTART_OUTPUT_ROOT", raising=False)
    monkeypatch.delenv("QUICKSTART_NOTEBOOK_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_kernel_writes_next_to_the_notebook(monkeypatch, unset) -> None:
    _fake_ipython(monkeypatch, types.SimpleNamespace(kernel=object()))
    assert paths.in_notebook()
    folder = paths.output_dir("04_audio_streaming")
    assert folder == unset / "output" / "04_audio_streaming"
    assert folder.is_dir()


def test_kernel_uses_the_notebook_dir_setting(monkeypatch, unset) -> None:
    _fake_ipython(monkeypatch, types.SimpleNamespace(kernel=object()))
    monkeypatch.setenv("QUICKSTART_NOTEBOOK_DIR", str(unset / "copy"))
    assert paths.output_dir("a") == unset / "copy" / "output" / "a"


def test_output_root_wins_in_a_kernel(monkeypatch, unset) -> None:
    _fake_ipython(monkeypatch, types.SimpleNamespace(kernel=object()))
    monkeypatch.setenv("QUICKSTART_OUTPUT_ROOT", str(unset / "run"))
    assert paths.output_dir("a") == unset / "run" / "a"


@pytest.mark.parametrize("shell", [None, types.SimpleNamespace()], ids=["no-shell", "terminal"])
def test_outside_a_kernel_a_checkout_writes_to_build_run(monkeypatch, unset, shell) -> None:
    _fake_ipython(monkeypatch, shell)
    assert not paths.in_notebook()
    monkeypatch.setattr(paths, "repo_root", lambda: unset / "checkout")
    assert paths.output_dir("a") == unset / "checkout" / "build" / "run" / "a"


def test_installed_outside_a_kernel_writes_under_the_current_folder(monkeypatch, unset) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(paths, "repo_root", lambda: None)
    assert paths.output_dir("a") == unset / "build" / "run" / "a"


def test_without_ipython_there_is_no_kernel(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not paths.in_notebook()

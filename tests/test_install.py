"""The built wheel works on its own: outside the checkout, offline, with its cassettes.

The module builds the wheel and installs it in a fresh virtual environment outside the
checkout (with uv, a few seconds). Each notebook then runs there from a folder that holds
only it, as a user who installed the package runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WheelEnv:
    """The built wheel, the fresh environment it is installed in, the environment
    variables for its processes and a folder outside the checkout to run them in."""

    wheel: Path
    venv: Path
    python: str
    env: dict[str, str]
    folder: Path


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> WheelEnv:
    """The wheel, built and installed in a fresh virtual environment outside the checkout."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv builds the wheel: run the tests with `python3 -m uv run pytest`"
    folder = tmp_path_factory.mktemp("wheel")
    venv, python = folder / "venv", str(folder / "venv" / "bin" / "python")
    _run([uv, "build", "--wheel", "--out-dir", str(folder / "dist"), str(ROOT)])
    (wheel,) = (folder / "dist").glob("*.whl")
    _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    _run([uv, "pip", "install", "--quiet", "--no-config", "--python", python, str(wheel)])
    # Without the suite's and the checkout's settings and Python; the venv's bin first.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUICKSTART_", "GEMINI_", "GOOGLE_", "PYTHON", "VIRTUAL_ENV", "UV"))
        and k != "JUPYTER_PATH"
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    (folder / "work").mkdir()
    return WheelEnv(wheel, venv, python, env, folder / "work")


def _shipped_names() -> list[str]:
    return sorted(
        json.loads(p.read_text("utf-8"))["name"]
        for p in (ROOT / "assets" / "cassettes").rglob("*.json")
    )


def test_the_wheel_carries_every_cassette_and_its_audio(installed):
    names = zipfile.ZipFile(installed.wheel).namelist()
    shipped = [
        p.relative_to(ROOT / "assets").as_posix()
        for p in (ROOT / "assets" / "cassettes").rglob("*")
        if p.is_file()
    ]
    assert shipped
    for name in shipped:
        assert f"quickstart_helpers/assets/{name}" in names


def _installed_json(installed: WheelEnv, code: str) -> Any:
    """Run ``code`` with the fresh environment's Python, outside the checkout; return the
    JSON it prints."""
    done = _run([installed.python, "-c", code], cwd=installed.folder, env=installed.env)
    return json.loads(done.stdout)


def test_the_installed_emulator_finds_every_shipped_cassette(installed):
    code = (
        "import json; from quickstart_helpers.emulator import CassetteStore, shipped_cassette_dir;"
        "print(json.dumps([str(shipped_cassette_dir()),"
        " sorted(c.name for c in CassetteStore().cassettes)]))"
    )
    folder, names = _installed_json(installed, code)
    assert folder.startswith(str(installed.venv))
    assert names == _shipped_names()


def test_runtime_dependencies_leave_out_test_tools(installed):
    code = (
        "import importlib.util, json;"
        "print(json.dumps([m for m in ('pytest', 'nbval', 'jupyterlab', 'playwright', 'ruff')"
        " if importlib.util.find_spec(m)]))"
    )
    assert _installed_json(installed, code) == []


def test_the_quickstart_command_is_installed(installed):
    done = subprocess.run(
        [str(installed.venv / "bin" / "quickstart"), "--help"],
        cwd=installed.folder,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "run" in done.stdout and "record" in done.stdout


def test_each_notebook_runs_alone_from_the_installed_wheel(installed, tmp_path):
    """Each notebook from a folder holding only it, with the wheel's ``quickstart run``
    (its kernel the fresh environment's): it passes, and leaves nothing beside itself."""
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    copies = []
    for notebook in notebooks:
        (tmp_path / notebook.stem).mkdir()
        copies.append(shutil.copy(notebook, tmp_path / notebook.stem / notebook.name))
    command = [str(installed.venv / "bin" / "quickstart"), "run", "--mode", "offline"]
    out = tmp_path / "out"
    done = subprocess.run(
        [*command, "-j", "2", "--no-progress", "--output", str(out), *map(str, copies)],
        cwd=installed.folder,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for notebook in notebooks:
        assert [p.name for p in (tmp_path / notebook.stem).iterdir()] == [notebook.name]

"""The built wheel works on its own: outside the checkout, offline, with its cassettes.

The module's tests share one wheel and one environment, so they run on one xdist worker
(conftest.py's ``WHOLE_MODULES``); the notebooks run at the same time, each alone in its own folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import _zygote

ROOT = Path(__file__).resolve().parent.parent


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.fail(
            "uv is needed to build the wheel: run the tests with `python3 -m uv run pytest`."
        )
    return uv


def _run(args: list, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """A fresh virtual environment, outside the checkout, with the built wheel installed."""
    uv = _uv()
    tmp = tmp_path_factory.mktemp("install")
    _run([uv, "build", "--wheel", "--out-dir", tmp / "dist", ROOT])
    (wheel,) = (tmp / "dist").glob("*.whl")
    venv = tmp / "venv"
    _run([uv, "venv", "--quiet", "--python", sys.executable, venv])
    # No bytecode compiled at install (--no-config: not the project's tool.uv setting):
    # compiling the whole environment costs six times what the kernels below import
    # (they write that bytecode once, in the zygote).
    _run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--no-config",
            "--python",
            venv / "bin" / "python",
            wheel,
        ],
        cwd=tmp,
        env={k: v for k, v in os.environ.items() if k != "UV_COMPILE_BYTECODE"},
    )
    return {"wheel": wheel, "venv": venv, "tmp": tmp}


def _clean_env(venv: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUICKSTART_", "GEMINI_", "GOOGLE_", "PYTHON", "VIRTUAL_ENV", "UV"))
        # The suite's kernel zygote runs the checkout's Python; the wheel's gets its own.
        and k not in ("JUPYTER_PATH", _zygote.SOCKET_ENV)
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _shipped_names() -> list[str]:
    return sorted(
        json.loads(p.read_text("utf-8"))["name"]
        for p in (ROOT / "assets" / "cassettes").rglob("*.json")
    )


def test_the_wheel_carries_every_cassette_and_its_audio(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    shipped = [
        p.relative_to(ROOT / "assets").as_posix()
        for p in (ROOT / "assets" / "cassettes").rglob("*")
        if p.is_file()
    ]
    assert shipped
    for name in shipped:
        assert f"quickstart_helpers/assets/{name}" in names


def _installed_json(warm, code: str) -> Any:
    """Run ``code`` with the fresh environment's Python, outside the checkout; return the
    JSON it prints."""
    done = _zygote.run(["-c", code], cwd=warm.cwd, env=warm.env, python=warm.python)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_installed_emulator_finds_every_shipped_cassette(installed, warm):
    code = (
        "import json; from quickstart_helpers.emulator import CassetteStore, shipped_cassette_dir;"
        "print(json.dumps([str(shipped_cassette_dir()),"
        " sorted(c.name for c in CassetteStore().cassettes)]))"
    )
    folder, names = _installed_json(warm, code)
    assert folder.startswith(str(installed["venv"]))
    assert names == _shipped_names()


def test_the_run_of_every_notebook_succeeds(run):
    assert run.returncode == 0, run.stdout + run.stderr


def test_runtime_dependencies_leave_out_test_tools(warm):
    code = (
        "import importlib.util, json;"
        "print(json.dumps([m for m in ('pytest', 'nbval', 'jupyterlab', 'playwright', 'ruff')"
        " if importlib.util.find_spec(m)]))"
    )
    assert _installed_json(warm, code) == []


NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


@dataclass(frozen=True)
class _Warm:
    """The fresh environment's Python, its environment (the suite's own settings left out),
    and a folder outside the checkout; processes forked from a zygote of that Python."""

    python: str
    env: dict[str, str]
    cwd: Path


@pytest.fixture(scope="module")
def warm(installed) -> Iterator[_Warm]:
    """A zygote (tests/_zygote.py) of the fresh environment's own Python, which imported
    the installed wheel and its dependencies once; its kernels and commands fork from it."""
    python = str(installed["venv"] / "bin" / "python")
    env = _clean_env(installed["venv"])
    zygote, socket_path = _zygote.start(python, env=env)
    kernelspecs = installed["tmp"] / "kernelspecs"
    _zygote.install_kernelspec(str(kernelspecs))
    env = {**env, "JUPYTER_PATH": str(kernelspecs), _zygote.SOCKET_ENV: socket_path}
    try:
        yield _Warm(python, env, installed["tmp"])
    finally:
        zygote.terminate()
        zygote.wait()


def test_the_quickstart_command_is_installed(installed):
    quickstart = installed["venv"] / "bin" / "quickstart"
    out = _run([quickstart, "--help"], cwd=installed["tmp"], env=_clean_env(installed["venv"]))
    assert "run" in out.stdout and "record" in out.stdout


@pytest.fixture(scope="module")
def run(installed, warm) -> _zygote.Finished:
    """One ``quickstart run`` of every notebook, each copied alone into a folder of its
    own (its kernel starts there); the notebooks run at once, each with its own kernel
    and emulator. The executed copies go to ``build/run/``."""
    paths = []
    for notebook in NOTEBOOKS:
        work = installed["tmp"] / notebook.removesuffix(".ipynb")
        work.mkdir()
        shutil.copy(ROOT / "notebooks" / notebook, work)
        paths.append(work / notebook)
    return _zygote.run(
        ["-m", "quickstart_helpers.cli", "run", *map(str, paths), "--mode", "offline"]
        + ["--no-progress"],
        cwd=warm.cwd,
        env={**warm.env, "QUICKSTART_PACING": "fast"},
        python=warm.python,
        timeout=600,
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_each_notebook_runs_offline_alone_in_a_fresh_folder(installed, run, notebook):
    """A folder holding only the notebook, and an environment holding only the wheel."""
    rows = [line.split() for line in run.stdout.splitlines() if line.startswith(notebook)]
    assert [(row[-2], row[-1]) for row in rows] == [("offline", "ok")], run.stdout + run.stderr
    assert sorted(
        p.name for p in (installed["tmp"] / notebook.removesuffix(".ipynb")).iterdir()
    ) == [notebook], "the notebook's folder should hold only the notebook"
    executed = installed["tmp"] / "build" / "run" / notebook
    assert executed.is_file()
    cells = json.loads(executed.read_text("utf-8"))["cells"]
    errors = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    assert "No recorded response" not in executed.read_text("utf-8")

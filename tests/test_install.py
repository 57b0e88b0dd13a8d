"""The built wheel works on its own: outside the checkout, offline, with its cassettes.

The wheel and its fresh environment are built once per run (tests/_wheel.py), in the
background while the workers start. nbval runs each repository notebook in that
environment, alone in a folder of its own (conftest.py): that one execution is both
nbval's strict check and issue 13's "each notebook from a temporary folder holding only
that notebook and a fresh environment with the built wheel". This module checks what the
wheel carries and what its environment holds.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from . import _kernels, _wheel, _zygote
from ._kernels import run_code

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed() -> _wheel.WheelEnv:
    """The run's fresh virtual environment, outside the checkout, with the built wheel."""
    return _wheel.wait()


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


def _installed_json(installed: _wheel.WheelEnv, code: str) -> Any:
    """Run ``code`` with the fresh environment's Python, outside the checkout; return the
    JSON it prints."""
    done = _zygote.run(
        ["-c", code], cwd=installed.folder, env=installed.env, python=installed.python
    )
    assert done.returncode == 0, done.stderr
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


def test_the_notebooks_kernels_run_the_installed_wheel(installed, tmp_path):
    """nbval's kernel for a repository notebook (conftest.py) imports the wheel's package,
    in a folder of its own, not the checkout's."""
    from jupyter_client.manager import KernelManager
    from nbval.kernel import NbvalKernelspecManager

    from conftest import WHEEL_KERNEL

    manager = KernelManager(kernel_name=WHEEL_KERNEL, kernel_spec_manager=NbvalKernelspecManager())
    with _kernels.running(manager, cwd=tmp_path) as client:
        code = "import os, quickstart_helpers; print(quickstart_helpers.__file__, os.getcwd())"
        out = run_code(client, code, timeout=60)
    module, cwd = out["stdout"].split()
    assert module.startswith(str(installed.venv)), module
    assert cwd == str(tmp_path)

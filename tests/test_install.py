"""The built wheel works on its own: outside the checkout, offline, with its cassettes.

The module builds the wheel and installs it in a fresh virtual environment outside the
checkout (with uv, a few seconds). There, every import statement of the package and of the
notebooks runs, and a notebook runs from a folder that holds only it, as a user who
installed the package runs it. (nbval runs every notebook from the checkout.)
"""

from __future__ import annotations

import ast
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


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def test_the_wheel_carries_every_cassette_and_every_file_of_its_packages(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    shipped = [
        "quickstart_helpers/" + p.relative_to(ROOT).as_posix()
        for p in _files(ROOT / "assets" / "cassettes")
    ]
    for package in ("quickstart_helpers", "quickstart_cli"):  # data too: static/, data/
        shipped += [p.relative_to(ROOT).as_posix() for p in _files(ROOT / package)]
    assert "quickstart_helpers/data/question.wav" in shipped
    assert sorted(set(shipped) - names) == []


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


#: Modules an import may miss in the fresh environment: optional extras and Colab's own.
OPTIONAL = {
    "sounddevice": "the mic extra (audio.microphone_chunks)",
    "pytest": "the test extra (quickstart_cli.pytest_plugin)",
    "google.colab": "Colab's own (env.py reads a Colab secret there)",
}


def _import_statements(source: str) -> set[str]:
    """Every absolute import statement in ``source``, at any depth (in functions too)."""
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # notebooks await at top level
    tree = compile(source, "<source>", "exec", flags=flags)
    return {
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and not node.level)
    }


def test_every_import_of_the_package_and_the_notebooks_runs_in_the_fresh_environment(
    installed,
):
    """What a notebook needs is installed with the wheel: each import statement of the
    notebooks' cells and of the package's modules (and each module itself) runs there."""
    from IPython.core.inputtransformer2 import TransformerManager

    statements = set()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text("utf-8"))["cells"]:
            if cell["cell_type"] == "code":  # magics made Python, as IPython runs them
                code = TransformerManager().transform_cell("".join(cell["source"]))
                statements |= _import_statements(code)
    for package in ("quickstart_helpers", "quickstart_cli"):
        for path in (ROOT / package).rglob("*.py"):
            statements |= _import_statements(path.read_text("utf-8"))
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if not module.endswith("__main__"):  # that one runs the command
                statements.add(f"import {module.removesuffix('.__init__')}")
    assert "from google import genai" in statements and "import soundfile" in statements
    code = (
        "import json, sys\nfailed = {}\nfor statement in json.loads(sys.argv[1]):\n"
        "    try:\n        exec(statement, {})\n"
        "    except ImportError as exc:\n        failed[statement] = exc.name or str(exc)\n"
        "print(json.dumps(failed))"
    )
    done = _run(
        [installed.python, "-c", code, json.dumps(sorted(statements))],
        cwd=installed.folder,
        env=installed.env,
    )
    failed = json.loads(done.stdout)
    optional = tuple(OPTIONAL) + tuple(f"{name}." for name in OPTIONAL)
    missing = {s: name for s, name in failed.items() if not name.startswith(optional)}
    assert missing == {}, "not installed with the wheel (add them to its dependencies)"


def test_a_notebook_runs_alone_from_the_installed_wheel(installed, tmp_path):
    """A notebook from a folder holding only it, with the wheel's ``quickstart run`` (its
    kernel the fresh environment's): it passes, and leaves nothing beside itself. Notebook
    03 streams from the shipped cassettes and saves images (PIL) in its output folder."""
    notebook = ROOT / "notebooks" / "03_text_and_image_streaming.ipynb"
    (tmp_path / "alone").mkdir()
    copy = shutil.copy(notebook, tmp_path / "alone" / notebook.name)
    command = [str(installed.venv / "bin" / "quickstart"), "run", "--mode", "offline"]
    out = tmp_path / "out"
    done = subprocess.run(
        [*command, "--no-progress", "--output", str(out), str(copy)],
        cwd=installed.folder,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in (tmp_path / "alone").iterdir()] == [notebook.name]
    assert list((out / notebook.stem).glob("*.png")), "the notebook saved no image"

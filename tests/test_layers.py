"""The package's layering contracts (import-linter, configured in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the package under ``root`` with ``root``'s pyproject.toml."""
    script = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(script), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )


def test_layering_contracts_are_kept() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def _scratch_copy(tmp_path: Path) -> Path:
    for package in ("quickstart_helpers", "quickstart_cli"):
        shutil.copytree(ROOT / package, tmp_path / package)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_a_helper_importing_an_emulator_internal_breaks_the_contract(tmp_path: Path) -> None:
    root = _scratch_copy(tmp_path)
    display = root / "quickstart_helpers" / "display.py"
    display.write_text(display.read_text() + "\nfrom .emulator import _http  # noqa\n")
    result = _lint_imports(root)
    assert result.returncode != 0
    assert "Notebook helpers do not import the emulator's internals BROKEN" in result.stdout
    assert "quickstart_helpers.display -> quickstart_helpers.emulator._http" in result.stdout


def test_the_emulator_importing_a_helper_breaks_the_contract(tmp_path: Path) -> None:
    root = _scratch_copy(tmp_path)
    server = root / "quickstart_helpers" / "emulator" / "_server.py"
    server.write_text(server.read_text() + "\nfrom .. import wav  # noqa\n")
    result = _lint_imports(root)
    assert result.returncode != 0
    assert "The emulator does not import notebook helpers BROKEN" in result.stdout


def test_importing_the_cli_breaks_the_contract(tmp_path: Path) -> None:
    root = _scratch_copy(tmp_path)
    wav = root / "quickstart_helpers" / "wav.py"
    wav.write_text(wav.read_text() + "\nimport quickstart_cli  # noqa\n")
    result = _lint_imports(root)
    assert result.returncode != 0
    assert "Nothing imports the CLI BROKEN" in result.stdout


def test_importing_the_package_loads_neither_the_sdk_nor_the_emulator() -> None:
    code = (
        "import sys, quickstart_helpers, quickstart_helpers.settings;"
        "print(sorted(m for m in sys.modules if m.startswith(('google.genai', "
        "'quickstart_helpers.emulator', 'aiohttp'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

"""Each stored notebook equals a fresh offline execution (the canonical executed copy)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from quickstart_helpers._runner import execute_notebook

from .notebook_compare import differences

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_notebook_matches_a_fresh_offline_execution(path, tmp_path):
    stored = nbformat.read(path, as_version=4)
    fresh, result = execute_notebook(
        path,
        # The executed copy and the outputs sit side by side, as in `quickstart refresh`:
        # the outputs are not below the notebook's folder, so players link no file.
        tmp_path / "executed" / path.name,
        mode="offline",
        pacing="fast",
        output_root=tmp_path / "outputs",
        progress=False,
    )
    assert result.ok, f"{path.name} failed at cell {result.failed_cell}: {result.error}"
    problems = differences(stored, fresh)
    assert not problems, (
        f"{path.name} is not the canonical offline execution. Run "
        f"`uv run quickstart refresh {path.relative_to(path.parent.parent)}` and commit it.\n"
        + "\n".join(problems)
    )

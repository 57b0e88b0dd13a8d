"""Stored notebooks are clean and stand alone: scans of their sources and outputs.

- no temporary or machine paths and no ``NBVAL_`` comments (cell tags instead);
- no empty outputs and no "No player" lines;
- one H1 title with an Open-in-Colab badge, an install cell, a key cell and a plain
  ``genai.Client`` first, and a "Next steps" section; the badge and the install cell
  use the repository URL from ``pyproject.toml`` (see ``scripts/sync_notebook_links.py``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location(
    "sync_links", ROOT / "scripts/sync_notebook_links.py"
)
sync_links = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync_links)

#: Paths that only exist on the machine that ran the notebook.
MACHINE_PATH = re.compile(
    r"(/tmp/|/var/folders/|/private/var/|/home/\w|/Users/\w|/root/|/work/|[A-Za-z]:\\\\"
    r"|quickstart-refresh-|quickstart-test-run-|site-packages)"
)


def _load(path: Path):
    return nbformat.read(path, as_version=4)


def _output_texts(output) -> list[str]:
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return [output.ename, output.evalue, *output.traceback]
    return [v if isinstance(v, str) else json.dumps(v) for v in output.get("data", {}).values()]


def test_the_scan_catches_what_it_looks_for():
    assert MACHINE_PATH.search("Full path: /tmp/quickstart-refresh-_zy7uy42/03")
    assert MACHINE_PATH.search(r"C:\\Users\\me\\out.wav")
    assert not MACHINE_PATH.search("Saved 04_audio_streaming/audio_response_1.wav")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_machine_paths_and_no_nbval_comments(path):
    problems = []
    for index, cell in enumerate(_load(path).cells, start=1):
        if "NBVAL_" in cell.source:
            problems.append(
                f"cell {index}: an NBVAL_ comment (use a cell tag such as nbval-ignore-output)"
            )
        for output in cell.get("outputs", []):
            for text in _output_texts(output):
                found = MACHINE_PATH.search(text)
                if found:
                    problems.append(
                        f"cell {index}: a machine path in an output: {found.group(0)!r}"
                    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_empty_outputs_and_no_missing_players(path):
    problems = []
    for index, cell in enumerate(_load(path).cells, start=1):
        for output in cell.get("outputs", []):
            texts = _output_texts(output)
            if not any(t.strip() for t in texts) and output.output_type != "stream":
                problems.append(f"cell {index}: an empty {output.output_type} output")
            if output.output_type == "stream" and output.text == "":
                problems.append(f"cell {index}: an empty stream output")
            if any("No player" in t for t in texts):
                problems.append(f"cell {index}: a 'No player' line")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_structure_title_badge_setup_and_next_steps(path):
    nb = _load(path)
    repository = sync_links.repository_url()
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    headings = [line for text in markdown for line in text.splitlines() if line.startswith("# ")]
    assert len(headings) == 1 and nb.cells[0].source.startswith("# "), "one H1, in the first cell"
    assert sync_links.colab_url(repository, path.name) in nb.cells[0].source, (
        "the Colab badge must use [project.urls] Repository: run scripts/sync_notebook_links.py"
    )
    assert "After this notebook you can write" in nb.cells[0].source
    install, key, client = code[:3]
    assert 'find_spec("quickstart_helpers") is None' in install and "%pip install" in install
    assert f'REPOSITORY = "{repository}"' in install
    assert "GEMINI_API_KEY" in key
    assert "genai.Client(" in client or "OpenAI(" in client  # 08: OpenAI's SDK
    assert markdown[-1].startswith("## Next steps")


def test_the_sync_script_leaves_synced_notebooks_unchanged(tmp_path):
    repository = sync_links.repository_url()
    for path in NOTEBOOKS:
        copy = tmp_path / path.name
        copy.write_bytes(path.read_bytes())
        assert not sync_links.sync(copy, repository), f"{path.name} is out of sync"
    moved = tmp_path / NOTEBOOKS[0].name
    assert sync_links.sync(moved, "https://github.com/someone/elsewhere")
    text = moved.read_text(encoding="utf-8")
    assert "github/someone/elsewhere/blob/main/notebooks/" in text
    assert 'REPOSITORY = \\"https://github.com/someone/elsewhere\\"' in text

"""Stored notebooks are clean and stand alone: scans of their sources and outputs.

- no temporary or machine paths and no ``NBVAL_`` comments (cell tags instead);
- no empty outputs and no "No player" lines;
- one H1 title, an install cell, the set-up line ``%load_ext quickstart_helpers`` and a
  plain ``genai.Client()`` first, and a "Next steps" section; the Open-in-Colab badge
  and the install cell follow the repository URL in ``pyproject.toml``: no badge and a
  local install while it is a placeholder (see ``scripts/sync_notebook_links.py``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

from .test_notebook_lessons import LEAD_CONVERTS

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
    assert "After this notebook you can write" in nb.cells[0].source
    assert markdown[-1].startswith("## Next steps")
    if path.name[:2] in LEAD_CONVERTS:
        return  # top matter still the old pattern; test_notebook_lessons keeps the list honest
    badge = "colab.research.google.com/github/" in nb.cells[0].source
    if repository is None:
        assert not badge, "no Colab badge while [project.urls] Repository is a placeholder"
    else:
        assert sync_links.badge(repository, path.name) in nb.cells[0].source
    install, setup, client = code[:3]
    assert install == sync_links.install_cell(repository), "run scripts/sync_notebook_links.py"
    assert setup == "%load_ext quickstart_helpers"
    assert "genai.Client()" in client or "OpenAI(" in client  # 08: OpenAI's SDK


def test_the_sync_script_leaves_synced_notebooks_unchanged(tmp_path):
    repository = sync_links.repository_url()
    for path in NOTEBOOKS:
        if path.name[:2] in LEAD_CONVERTS:
            continue
        copy = tmp_path / path.name
        copy.write_bytes(path.read_bytes())
        assert not sync_links.sync(copy, repository), f"{path.name} is out of sync"


def test_a_real_address_adds_the_badge_and_a_git_install_and_the_placeholder_removes_them(
    tmp_path,
):
    path = next(p for p in NOTEBOOKS if p.name[:2] not in LEAD_CONVERTS)
    moved = tmp_path / path.name
    moved.write_bytes(path.read_bytes())
    assert sync_links.sync(moved, "https://github.com/someone/elsewhere")
    nb = _load(moved)
    assert sync_links.badge("https://github.com/someone/elsewhere", path.name) in nb.cells[0].source
    assert nb.cells[0].source.count("colab-badge") == 1
    install = next(c.source for c in nb.cells if c.cell_type == "code")
    assert 'REPOSITORY = "https://github.com/someone/elsewhere"' in install
    assert '%pip install -q "gemini-streaming-quickstarts @ git+{REPOSITORY}"' in install
    assert not sync_links.sync(moved, "https://github.com/someone/elsewhere")

    assert sync_links.sync(moved, None)
    nb = _load(moved)
    assert "colab" not in nb.cells[0].source and "github.com" not in nb.cells[0].source
    install = next(c.source for c in nb.cells if c.cell_type == "code")
    assert "%pip install -q .." in install and "pip install path/to/" in install
    if sync_links.repository_url() is None:  # back where it started
        assert moved.read_bytes() == path.read_bytes()


def test_the_placeholder_owner_means_no_address(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project.urls]\nRepository = "https://github.com/OWNER/gemini-streaming-quickstarts"\n'
    )
    assert sync_links.repository_url(pyproject) is None
    pyproject.write_text('[project.urls]\nRepository = "https://github.com/acme/quickstarts/"\n')
    assert sync_links.repository_url(pyproject) == "https://github.com/acme/quickstarts"
    pyproject.write_text('[project.urls]\nRepository = "https://example.com/x"\n')
    with pytest.raises(ValueError, match="must be https://github.com/OWNER/NAME"):
        sync_links.repository_url(pyproject)

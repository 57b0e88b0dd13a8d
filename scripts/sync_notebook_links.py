"""Make every notebook's Open-in-Colab badge and install cell follow the repository URL.

The URL lives in one place, ``[project.urls] Repository`` in ``pyproject.toml``. Run this
after changing it (``python3 -m uv run python scripts/sync_notebook_links.py``);
``tests/test_notebook_hygiene.py`` fails while a notebook disagrees.

- While the URL is a placeholder (owner ``OWNER``), a learner must see no address that
  does not work: no Colab badge, and an install cell that installs from the project folder
  the notebook came with (``%pip install ..``) or prints exactly how to install.
- With a real ``https://github.com/owner/name`` URL: the badge under the title, and an
  install cell that installs from that repository.

Only the badge line of the first cell and the install cell (the code cell that checks
``find_spec("quickstart_helpers")``) change; outputs stay as they are.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PROJECT = "gemini-streaming-quickstarts"

_BADGE_LINE = re.compile(r"^<a [^\n]*colab\.research\.google\.com/github/[^\n]*\n\n?", re.M)
_INSTALL_MARK = 'find_spec("quickstart_helpers")'

INSTALL_FROM_FOLDER = f"""\
import importlib.util
from pathlib import Path

if importlib.util.find_spec("quickstart_helpers") is None:
    if Path("../pyproject.toml").is_file():  # the notebooks/ folder of the project
        %pip install -q ..
    else:
        print(
            "Install the helpers first, from the folder or wheel this notebook came with:\\n"
            "  pip install path/to/{PROJECT}\\n"
            "or\\n"
            "  pip install path/to/{PROJECT.replace("-", "_")}-0.1.0-py3-none-any.whl\\n"
            "then restart the kernel."
        )"""

INSTALL_FROM_URL = """\
import importlib.util

REPOSITORY = "{repository}"
if importlib.util.find_spec("quickstart_helpers") is None:
    %pip install -q "{project} @ git+{{REPOSITORY}}\""""


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str | None:
    """Return ``[project.urls] Repository`` without a final ``/``, or None for the placeholder.

    Raises:
        ValueError: The URL is not a ``https://github.com/owner/name`` URL.
    """
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    url = (data.get("project", {}).get("urls", {}).get("Repository") or "").rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(
            f"[project.urls] Repository in {pyproject} must be https://github.com/OWNER/NAME, "
            f"not {url!r}."
        )
    return None if url.split("/")[3] == "OWNER" else url


def colab_url(repository: str, notebook: str) -> str:
    """Return the Open-in-Colab address of ``notebooks/<notebook>`` on the main branch."""
    return (
        "https://colab.research.google.com/github/"
        f"{repository.removeprefix('https://github.com/')}/blob/main/notebooks/{notebook}"
    )


def badge(repository: str, notebook: str) -> str:
    """The badge's HTML line."""
    return (
        f'<a target="_blank" href="{colab_url(repository, notebook)}"><img '
        'src="https://colab.research.google.com/assets/colab-badge.svg" '
        'alt="Open in Colab" height="30"/></a>'
    )


def install_cell(repository: str | None) -> str:
    """The install cell's source for ``repository`` (None: the placeholder)."""
    if repository is None:
        return INSTALL_FROM_FOLDER
    return INSTALL_FROM_URL.format(repository=repository, project=PROJECT)


def sync(path: Path, repository: str | None) -> bool:
    """Rewrite one notebook's badge and install cell; return whether it changed."""
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0]
    new = _BADGE_LINE.sub("", title.source)
    if repository is not None:
        heading, _, rest = new.partition("\n\n")
        new = f"{heading}\n\n{badge(repository, path.name)}\n\n{rest}"
    changed = new != title.source
    title.source = new
    for cell in nb.cells:
        if cell.cell_type == "code" and _INSTALL_MARK in cell.source:
            wanted = install_cell(repository)
            changed |= cell.source != wanted
            cell.source = wanted
            break
    if changed:
        nbformat.write(nb, path)
    return changed


def main() -> int:
    repository = repository_url()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        state = "updated" if sync(path, repository) else "up to date"
        print(f"{path.relative_to(ROOT)}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

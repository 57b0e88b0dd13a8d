"""Make every notebook's install cell and Open-in-Colab badge use the repository URL.

The URL lives in one place, ``[project.urls] Repository`` in ``pyproject.toml``. Run
this after changing it (``python3 -m uv run python scripts/sync_notebook_links.py``);
``tests/test_notebook_hygiene.py`` fails while a notebook disagrees. Only the
``REPOSITORY = "..."`` line of install cells and the Colab links of Markdown cells
change; outputs stay as they are.
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

_REPOSITORY_LINE = re.compile(r'^REPOSITORY = "[^"]*"$', re.MULTILINE)
_COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s\"')]+")


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """Return ``[project.urls] Repository`` from ``pyproject.toml``, without a final ``/``.

    Raises:
        ValueError: The URL is missing or is not a ``https://github.com/owner/name`` URL.
    """
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    url = (data.get("project", {}).get("urls", {}).get("Repository") or "").rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(
            f"[project.urls] Repository in {pyproject} must be https://github.com/OWNER/NAME, "
            f"not {url!r}."
        )
    return url


def colab_url(repository: str, notebook: str) -> str:
    """Return the Open-in-Colab address of ``notebooks/<notebook>`` on the main branch."""
    return (
        "https://colab.research.google.com/github/"
        f"{repository.removeprefix('https://github.com/')}/blob/main/notebooks/{notebook}"
    )


def sync(path: Path, repository: str) -> bool:
    """Rewrite one notebook's install cells and Colab links; return whether it changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code":
            new = _REPOSITORY_LINE.sub(f'REPOSITORY = "{repository}"', cell.source)
        else:
            new = _COLAB_LINK.sub(colab_url(repository, path.name), cell.source)
        if new != cell.source:
            cell.source = new
            changed = True
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

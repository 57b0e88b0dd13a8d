"""Make every notebook's Open-in-Colab badge and install cell follow ``[project.urls]
Repository`` in ``pyproject.toml`` (run it after changing that; the hygiene test checks).
Placeholder (owner ``OWNER``): no badge; install from the notebook's project folder, or say
how. A real address: the badge under the title, and an install from the repository."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
_BADGE_LINE = re.compile(r"^<a [^\n]*colab\.research\.google\.com/github/[^\n]*\n\n?", re.M)
_INSTALL_MARK = 'find_spec("quickstart_helpers")'

INSTALL_FROM_FOLDER = """\
import importlib.util
from pathlib import Path

if importlib.util.find_spec("quickstart_helpers") is None:
    if Path("../pyproject.toml").is_file():  # the notebooks/ folder of the project
        %pip install -q ..
    else:
        print(
            "Install the helpers first, from the folder or wheel this notebook came with:\\n"
            "  pip install path/to/gemini-streaming-quickstarts\\n"
            "or\\n"
            "  pip install path/to/gemini_streaming_quickstarts-0.1.0-py3-none-any.whl\\n"
            "then restart the kernel."
        )"""

INSTALL_FROM_URL = """\
import importlib.util

REPOSITORY = "{repository}"
if importlib.util.find_spec("quickstart_helpers") is None:
    %pip install -q "gemini-streaming-quickstarts @ git+{{REPOSITORY}}\""""


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str | None:
    """``[project.urls] Repository`` (None: the placeholder); ValueError unless a GitHub URL."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    url = (data.get("project", {}).get("urls", {}).get("Repository") or "").rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(
            f"{pyproject}: Repository must be https://github.com/OWNER/NAME, not {url!r}"
        )
    return None if url.split("/")[3] == "OWNER" else url


def badge(repository: str, notebook: str) -> str:
    """The Open-in-Colab badge of ``notebooks/<notebook>`` on the main branch."""
    path = f"{repository.removeprefix('https://github.com/')}/blob/main/notebooks/{notebook}"
    return (
        f'<a target="_blank" href="https://colab.research.google.com/github/{path}"><img '
        'src="https://colab.research.google.com/assets/colab-badge.svg" '
        'alt="Open in Colab" height="30"/></a>'
    )


def install_cell(repository: str | None) -> str:
    """The install cell's source for ``repository`` (None: the placeholder)."""
    return INSTALL_FROM_URL.format(repository=repository) if repository else INSTALL_FROM_FOLDER


def sync(path: Path, repository: str | None) -> bool:
    """Rewrite one notebook's badge and install cell; return whether it changed."""
    nb = nbformat.read(path, as_version=4)
    title, old = nb.cells[0], [c.source for c in nb.cells]
    title.source = _BADGE_LINE.sub("", title.source)
    if repository is not None:
        heading, _, rest = title.source.partition("\n\n")
        title.source = f"{heading}\n\n{badge(repository, path.name)}\n\n{rest}"
    install = next(c for c in nb.cells if c.cell_type == "code" and _INSTALL_MARK in c.source)
    install.source = install_cell(repository)
    changed = old != [c.source for c in nb.cells]
    if changed:
        nbformat.write(nb, path)
    return changed


def main() -> None:
    repository = repository_url()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        print(f"{path.name}: {'updated' if sync(path, repository) else 'up to date'}")


if __name__ == "__main__":
    main()

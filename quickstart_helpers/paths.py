"""Where notebooks write what they produce (WAV files, images, saved chats)."""

from __future__ import annotations

from pathlib import Path

from . import settings
from .display import in_notebook


def repo_root() -> Path | None:
    """Return the source checkout this package runs from (it has ``notebooks/`` and
    ``assets/`` beside the package), or None for an installed package."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "notebooks").is_dir() and (here / "assets").is_dir() else None


def output_dir(name: str) -> Path:
    """Return (and create) a notebook run's output folder, e.g. ``"04_audio_streaming"``:
    ``$QUICKSTART_OUTPUT_ROOT/name`` (``quickstart run`` and ``refresh`` set it); in a
    Jupyter kernel ``<notebook folder>/output/name`` (``$QUICKSTART_NOTEBOOK_DIR`` or the
    current folder), so links from the notebook resolve; else ``build/run/name`` in the
    source checkout or the current folder."""
    base = settings.output_root()
    if base is None and in_notebook():
        base = (settings.notebook_dir() or Path.cwd()) / "output"
    if base is None:
        base = (repo_root() or Path.cwd()) / "build" / "run"
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder

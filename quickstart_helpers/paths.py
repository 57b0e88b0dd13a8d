"""Where notebooks write what they produce (WAV files, images, saved chats)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["output_dir", "repo_root"]


def repo_root() -> Path:
    """Return the repository root (the folder holding ``notebooks/``), else the cwd."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "notebooks").is_dir() else Path.cwd()


def output_dir(name: str) -> Path:
    """Return (and create) the output folder of one notebook's run.

    Args:
        name: The notebook's stem, e.g. ``"04_audio_streaming"``.

    Returns:
        ``$QUICKSTART_OUTPUT_ROOT/name`` when that variable is set (``quickstart run``
        sets it to ``build/run``), else ``<repository>/build/run/name``.
    """
    root = os.environ.get("QUICKSTART_OUTPUT_ROOT")
    base = Path(root) if root else repo_root() / "build" / "run"
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder

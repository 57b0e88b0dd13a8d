"""Where notebooks write what they produce (WAV files, images, saved chats)."""

from __future__ import annotations

from pathlib import Path

from . import settings

__all__ = ["output_dir", "repo_root"]


def repo_root() -> Path | None:
    """Return the source checkout this package runs from, or None when it is installed.

    A checkout is recognised by the ``notebooks/`` and ``assets/`` folders next to the
    package folder. An installed package (a wheel in ``site-packages``) has none, and
    this returns None rather than guessing a folder.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "notebooks").is_dir() and (here / "assets").is_dir():
        return here
    return None


def output_dir(name: str) -> Path:
    """Return (and create) the output folder of one notebook's run.

    Args:
        name: The notebook's stem, e.g. ``"04_audio_streaming"``.

    Returns:
        ``$QUICKSTART_OUTPUT_ROOT/name`` when that variable is set (``quickstart run``
        sets it); else ``<checkout>/build/run/name`` when the package runs from a source
        checkout; else ``./build/run/name`` under the current folder (an installed
        package).
    """
    base = settings.output_root()
    if base is None:
        root = repo_root()
        base = (root if root is not None else Path.cwd()) / "build" / "run"
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder

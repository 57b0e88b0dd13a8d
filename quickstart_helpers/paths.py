"""Where notebooks write what they produce (WAV files, images, saved chats)."""

from __future__ import annotations

import sys
from pathlib import Path

from . import settings


def repo_root() -> Path | None:
    """Return the source checkout this package runs from (it has ``notebooks/`` and
    ``assets/`` beside the package), or None for an installed package."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "notebooks").is_dir() and (here / "assets").is_dir() else None


def in_notebook_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (JupyterLab, Notebook, Colab, VS Code).

    False in a plain Python process or a terminal IPython. IPython is never imported here.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def output_dir(name: str) -> Path:
    """Return (and create) the output folder of one notebook's run, e.g. ``"04_audio_streaming"``.

    The first that applies: ``$QUICKSTART_OUTPUT_ROOT/name`` (set by ``quickstart run``
    and ``refresh``); in a Jupyter kernel ``<notebook folder>/output/name``, the folder
    being ``$QUICKSTART_NOTEBOOK_DIR`` or the current one, so links to the files resolve
    from the notebook; ``<checkout>/build/run/name`` in a source checkout; else
    ``./build/run/name``.
    """
    base = settings.output_root()
    if base is None and in_notebook_kernel():
        base = (settings.notebook_dir() or Path.cwd()) / "output"
    if base is None:
        base = (repo_root() or Path.cwd()) / "build" / "run"
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder

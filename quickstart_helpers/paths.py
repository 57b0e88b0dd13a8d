"""Where notebooks write what they produce (WAV files, images, saved chats)."""

from __future__ import annotations

import sys
from pathlib import Path

from . import settings

__all__ = ["NOTEBOOK_OUTPUT_FOLDER", "in_notebook_kernel", "output_dir", "repo_root"]

#: The folder, next to the notebook, that holds a notebook's files when it runs in Jupyter.
NOTEBOOK_OUTPUT_FOLDER = "output"


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


def in_notebook_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (JupyterLab, Notebook, Colab, VS Code).

    True when IPython is imported and its shell has a kernel; False in a plain Python
    process or a terminal IPython. IPython is never imported here.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def output_dir(name: str) -> Path:
    """Return (and create) the output folder of one notebook's run.

    Args:
        name: The notebook's stem, e.g. ``"04_audio_streaming"``.

    Returns:
        The first that applies:

        1. ``$QUICKSTART_OUTPUT_ROOT/name`` when that variable is set (``quickstart run``
           and ``quickstart refresh`` set it, so they write under ``build/run`` or a
           temporary folder).
        2. ``<notebook folder>/output/name`` in a Jupyter kernel (see
           :func:`in_notebook_kernel`), the notebook folder being
           ``$QUICKSTART_NOTEBOOK_DIR`` or else the current folder (where Jupyter starts
           a notebook's kernel). Files there are below the notebook, so links to them
           (such as :func:`~quickstart_helpers.wav.wav_player`'s) resolve from the
           notebook whichever folder Jupyter serves.
        3. ``<checkout>/build/run/name`` when the package runs from a source checkout.
        4. ``./build/run/name`` under the current folder (an installed package).
    """
    base = settings.output_root()
    if base is None and in_notebook_kernel():
        base = (settings.notebook_dir() or Path.cwd()) / NOTEBOOK_OUTPUT_FOLDER
    if base is None:
        root = repo_root()
        base = (root if root is not None else Path.cwd()) / "build" / "run"
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder

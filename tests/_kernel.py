"""Execute code cells in a real Jupyter kernel (nbclient), for the display helpers' tests."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient
from nbformat import NotebookNode


def execute_cells(*sources: str, timeout: int = 60) -> list[NotebookNode]:
    """Run ``sources`` as the code cells of a new notebook in a fresh ``python3`` kernel;
    return the executed cells (their ``outputs`` as a notebook stores them).

    Raises:
        nbclient.exceptions.CellExecutionError: A cell raised.
    """
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    NotebookClient(nb, kernel_name="python3", timeout=timeout).execute()
    return nb.cells

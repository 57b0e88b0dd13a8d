"""What a notebook run shows: a tqdm bar per notebook, then the summary table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

if TYPE_CHECKING:
    from ._runner import NotebookResult


class NotebookBar(tqdm):
    """A notebook's progress bar whose clock stops when the notebook ends.

    With several notebooks at once, the bars stay drawn until the last one ends; a
    stopped clock keeps each bar's elapsed time that of its own notebook.
    """

    _ended_at: float | None = None

    def end(self, status: str) -> None:
        """Stop the clock and show ``status`` (``ok``, ``FAILED at cell 3``)."""
        if self.disable:  # hidden (or closed): no clock
            return
        self._ended_at = self._time()
        self.set_postfix_str(status)

    @property
    def format_dict(self) -> dict[str, Any]:
        figures = super().format_dict
        if self._ended_at is not None:
            figures["elapsed"] = self._ended_at - self.start_t
        return figures


def progress_bar(
    path: Path, nb: Any, *, progress: bool, position: int | None = None
) -> NotebookBar:
    """Return the bar of notebook ``nb`` (read from ``path``): it counts its code cells."""
    return NotebookBar(
        total=sum(1 for c in nb.cells if c.cell_type == "code"),
        desc=path.stem,
        unit="cell",
        disable=not progress,
        file=sys.stderr,
        leave=True,
        position=position,
    )


def format_summary(results: list[NotebookResult]) -> str:
    """Return a plain-text table: notebook, cells, seconds, mode, status."""
    rows = [("notebook", "cells", "seconds", "mode", "status")]
    for r in results:
        status = "ok" if r.ok else f"FAILED at cell {r.failed_cell}"
        rows.append((r.notebook.name, str(r.cells), f"{r.seconds:.1f}", r.mode, status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

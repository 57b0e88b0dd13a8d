"""Compare a stored notebook with a fresh execution the way nbval does, but stricter.

Execution counts, every output type and every MIME type (images included) are
compared; cells tagged ``nbval-ignore-output`` or ``nbval-skip`` (nbval's cell tags) are
passed over and the sanitize patterns nbval uses are applied to both sides.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

SANITIZE_FILE = Path(__file__).with_name("nbval_sanitize.cfg")
_SKIP_TAGS = ("nbval-ignore-output", "nbval-skip")


def _patterns() -> list[tuple[re.Pattern[str], str]]:
    parser = configparser.ConfigParser()
    parser.read(SANITIZE_FILE)
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def _sanitize(value: Any, patterns) -> Any:
    if isinstance(value, str):
        for regex, replacement in patterns:
            value = regex.sub(replacement, value)
        return value
    if isinstance(value, list):
        return [_sanitize(v, patterns) for v in value]
    return value


def normalized_outputs(cell: Any) -> list[dict[str, Any]]:
    """Return a cell's outputs with streams merged by name and noise removed."""
    patterns = _patterns()
    result: list[dict[str, Any]] = []
    for out in cell.get("outputs", []):
        kind = out["output_type"]
        if kind == "stream":
            text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
            if result and result[-1]["type"] == "stream" and result[-1]["name"] == out["name"]:
                result[-1]["text"] += text
                continue
            result.append({"type": "stream", "name": out["name"], "text": text})
        elif kind in ("display_data", "execute_result"):
            data = {k: _sanitize(v, patterns) for k, v in out["data"].items()}
            result.append({"type": kind, "data": data})
        elif kind == "error":
            result.append({"type": kind, "ename": out["ename"], "evalue": out["evalue"]})
    for item in result:
        if item["type"] == "stream":
            item["text"] = _sanitize(item["text"], patterns)
    return result


def differences(stored: Any, fresh: Any) -> list[str]:
    """Return a line per cell whose source, execution count or outputs differ."""
    problems = []
    if len(stored.cells) != len(fresh.cells):
        return [f"cell count differs: {len(stored.cells)} stored, {len(fresh.cells)} fresh"]
    for index, (old, new) in enumerate(zip(stored.cells, fresh.cells, strict=True), start=1):
        if old.cell_type != "code":
            continue
        if old.execution_count != new.execution_count:
            problems.append(
                f"cell {index}: execution count {old.execution_count} stored, "
                f"{new.execution_count} fresh (re-run the whole notebook)"
            )
        if any(tag in old.get("metadata", {}).get("tags", []) for tag in _SKIP_TAGS):
            continue
        if normalized_outputs(old) != normalized_outputs(new):
            problems.append(f"cell {index}: outputs differ\n  source: {old.source[:80]!r}")
    return problems


def expected_execution_count(nb: Any, cell: Any) -> int | None:
    """Return the count a fresh top-to-bottom execution gives ``cell`` (None if empty).

    nbclient skips empty code cells; every other code cell is numbered from 1.
    """
    count = 0
    for other in nb.cells:
        if other.cell_type != "code" or not other.source.strip():
            if other is cell:
                return None
            continue
        count += 1
        if other is cell:
            return count
    raise ValueError("the cell is not in the notebook")


def canonical_problems(
    nb: Any, cell: Any, stored: Any, fresh_outputs: list[Any], options: dict[str, Any]
) -> list[str]:
    """Compare one stored cell with a fresh execution's outputs, strictly.

    Args:
        nb: The stored notebook holding ``cell``.
        cell: The stored code cell (its position gives the expected execution count).
        stored: An unmodified copy of ``cell`` (nbval edits the outputs it compares).
        fresh_outputs: The outputs of a fresh execution of the cell (display updates
            applied), e.g. those nbval collected.
        options: nbval's options for the cell: ``check`` False (the ``nbval-ignore-output``
            tag) skips the output comparison, not the execution count.

    Returns:
        One line per difference; empty when the stored cell is canonical.
    """
    problems = []
    expected = expected_execution_count(nb, cell)
    if stored.execution_count != expected:
        problems.append(
            f"execution count {stored.execution_count} stored, {expected} in a fresh "
            "top-to-bottom execution (re-run the whole notebook)"
        )
    tags = stored.get("metadata", {}).get("tags", [])
    if options.get("check", True) and not any(tag in tags for tag in _SKIP_TAGS):
        old = normalized_outputs(stored)
        new = normalized_outputs({"outputs": fresh_outputs})
        if old != new:
            problems.append(
                "outputs differ (every output type and MIME type compared, images included):\n"
                f"  stored: {_brief(old)}\n  fresh:  {_brief(new)}"
            )
    return problems


def _brief(outputs: list[dict[str, Any]]) -> str:
    """Describe outputs in one line: types, MIME types and a hash of each payload."""
    import hashlib

    items = []
    for out in outputs:
        if out["type"] == "stream":
            items.append(f"{out['name']}({len(out['text'])} chars)")
        elif out["type"] == "error":
            items.append(f"error({out['ename']})")
        else:
            data = ", ".join(
                f"{mime}:{hashlib.sha256(str(value).encode()).hexdigest()[:8]}"
                for mime, value in sorted(out["data"].items())
            )
            items.append(f"{out['type']}[{data}]")
    return "[" + "; ".join(items) + "]"

"""Compare a stored notebook with a fresh execution the way nbval does, but stricter.

Execution counts, every output type and every MIME type (images included) are
compared; cells marked ``NBVAL_IGNORE_OUTPUT`` or ``NBVAL_SKIP`` (a comment, or the
cell tag ``nbval-ignore-output`` or ``nbval-skip``) are passed over and
the sanitize patterns nbval uses are applied to both sides.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

SANITIZE_FILE = Path(__file__).with_name("nbval_sanitize.cfg")
_SKIP_MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")
_SKIP_TAGS = frozenset({"nbval-ignore-output", "nbval-skip"})


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
        if any(marker in old.source for marker in _SKIP_MARKERS):
            continue
        if _SKIP_TAGS & set(old.get("metadata", {}).get("tags", [])):
            continue
        if normalized_outputs(old) != normalized_outputs(new):
            problems.append(f"cell {index}: outputs differ\n  source: {old.source[:80]!r}")
    return problems

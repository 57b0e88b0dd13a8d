"""Run the benchmarks and print each figure as a ratio against its baseline.

Usage: ``python3 -m uv run python -m benchmarks [NAME ...] [--repeats N] [--quick]
[--markdown] [--check] [--list]``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from benchmarks.registry import BENCHMARKS, Options, Result


def load_all() -> None:
    """Import every ``benchmarks/bench_*.py`` module so its benchmarks register."""
    folder = Path(__file__).parent
    for module in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if module.name.startswith("bench_"):
            importlib.import_module(f"benchmarks.{module.name}")


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_table(results: list[Result], markdown: bool = False) -> str:
    """Return the results as a plain-text (or Markdown) table, one row per figure."""
    header = ("benchmark", "figure", "ours", "baseline", "ratio", "target", "")
    rows = [header]
    for r in results:
        target = ""
        if r.target is not None:
            target = f"{'>=' if r.higher_is_better else '<='} {r.target:g}x"
        status = {True: "ok", False: "MISSED", None: ""}[r.met]
        baseline = f"{_number(r.baseline)} {r.unit}"
        if r.baseline_name:
            baseline += f" ({r.baseline_name})"
        rows.append(
            (
                r.group,
                r.figure,
                f"{_number(r.value)} {r.unit}",
                baseline,
                f"{r.ratio:.2f}x",
                target,
                status,
            )
        )
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        lines.insert(1, "|" + "|".join("---" for _ in header) + "|")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks (all by default); return the exit status."""
    load_all()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (median kept)")
    parser.add_argument("--quick", action="store_true", help="small workloads, a smoke run")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for bench in BENCHMARKS.values():
            print(f"{bench.name:<12} {bench.description}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    options = Options(repeats=args.repeats, quick=args.quick)
    results: list[Result] = []
    for name in args.names or list(BENCHMARKS):
        bench = BENCHMARKS[name]
        print(f"running {name}: {bench.description} ...", file=sys.stderr, flush=True)
        results.extend(bench.run(options))
    print(format_table(results, markdown=args.markdown))
    missed = [r for r in results if r.met is False]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())

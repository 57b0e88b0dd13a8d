"""The ``quickstart`` command: run notebooks, refresh stored outputs, record and list
cassettes, serve the emulator or the web chat. Each module here holds a group of its
commands, with their options."""

from __future__ import annotations

import argparse

from . import _cassettes, _common, _record, _run, _serve

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``quickstart`` command."""
    parser = argparse.ArgumentParser(
        prog="quickstart",
        description="Gemini streaming quickstarts: run notebooks, live or offline.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for commands in (_run, _record, _cassettes, _serve):
        commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``quickstart`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    if argv is None and args.command in ("emulator", "serve"):  # this process is the server
        _common.system_allocator()
    return int(args.func(args) or 0)

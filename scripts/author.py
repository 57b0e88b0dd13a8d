"""Author every shipped recording from its source: ``scripts/recordings/<family>.toml``.

Run: ``python3 -m uv run python scripts/author.py [FAMILY ...] [--out DIR] [--check]``. Without
families it writes them all: text, chat, web, faults, images, interactions, live, openai
(``assets/cassettes/`` and the test-only ``tests/cassettes/``). ``--check`` writes nothing and
lists every file that differs from what its source makes (exit status 1). The live family (and
``faults``' Live cassette) needs ``espeak-ng`` and ``sox`` (``apt-get install espeak-ng sox``);
the others need nothing beyond the project.

Each family's TOML holds its prompts, answers and the rules it is cut and paced by (its opening
comment says which); ``scripts/_generate.py``, ``_storyboard.py``, ``_interactions.py`` and
``_live.py`` are the code those rules need. The cassettes are the emulator's own models, written
by ``_authoring.cassette_file``; the output is deterministic, so running the command again
rewrites the same bytes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport (``pip install tomli``)
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import _authoring as a  # noqa: E402
import _generate  # noqa: E402
import _interactions  # noqa: E402
import _live  # noqa: E402
import _storyboard  # noqa: E402


def source(family: str) -> dict:
    """The data of ``family``: ``scripts/recordings/<family>.toml``."""
    return tomllib.loads((HERE / "recordings" / f"{family}.toml").read_text("utf-8"))


FAMILIES: dict[str, Callable[[], list[a.Output]]] = {
    "text": lambda: _generate.family_outputs(source("text")),
    "chat": lambda: _generate.family_outputs(source("chat")),
    "web": lambda: _generate.family_outputs(source("web")),
    "faults": lambda: (
        _generate.fault_outputs(source("faults")) + _live.outputs(source("live"), "faults")
    ),
    "images": lambda: _storyboard.outputs(source("images")),
    "interactions": lambda: _interactions.outputs(source("interactions")),
    "live": lambda: _live.outputs(source("live"), "live"),
    "openai": lambda: _generate.openai_outputs(source("openai")),
}


def author(families: list[str] | None = None) -> list[a.Output]:
    """Every file of ``families`` (default all), as ``(path under the root, bytes)``."""
    return [out for name in families or list(FAMILIES) for out in FAMILIES[name]()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("families", nargs="*", metavar="FAMILY", help=", ".join(FAMILIES))
    parser.add_argument("--out", type=Path, default=ROOT, help="root to write under")
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    if unknown := set(args.families) - set(FAMILIES):
        parser.error(f"unknown families {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    differ = 0
    for path, data in author(args.families):
        target = args.out / path
        if args.check:
            if not target.is_file() or target.read_bytes() != data:
                print(f"differs: {path}")
                differ += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        print(f"wrote {path}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())

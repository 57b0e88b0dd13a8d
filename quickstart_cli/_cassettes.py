"""``quickstart verify-cassettes`` and ``quickstart cassettes``: check and list recordings."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from quickstart_helpers import settings

from ._common import upstream_option


def add_parsers(sub: Any) -> None:
    """Add the ``verify-cassettes`` and ``cassettes`` commands to the subparsers ``sub``."""
    verify = sub.add_parser(
        "verify-cassettes",
        help="re-record each cassette's request and report structural drift",
        description="Send each cassette's request again (your key is required), record the "
        "answer in a temporary folder and report where its structure differs from the stored "
        "one: field names, part kinds, finish reasons, errors and Live message types (not "
        "the text). Exit 1 when a cassette drifted.",
    )
    verify.add_argument(
        "folders", nargs="*", help="cassette folders (default: $QUICKSTART_CASSETTES)"
    )
    upstream_option(verify, "ask")
    verify.set_defaults(func=_cmd_verify)

    cassettes = sub.add_parser(
        "cassettes",
        help="list the recordings the emulator replays, by model, with their prompts",
        description="List the cassettes (recordings) the offline emulator replays: the "
        "shipped ones and those in $QUICKSTART_CASSETTES, by model, with their prompts. "
        "A request is answered offline only when it matches a recording.",
    )
    cassettes.add_argument(
        "folders", nargs="*", help="cassette folders (default: shipped, then $QUICKSTART_CASSETTES)"
    )
    cassettes.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per recording (JSON Lines): name, kind, model, file, fault, "
        "path and the request as a client sends it",
    )
    cassettes.set_defaults(func=_cmd_cassettes)


def _cmd_verify(args: argparse.Namespace) -> int:
    from quickstart_helpers.env import load_api_key
    from quickstart_helpers.errors import CassetteError, MissingApiKeyError

    try:
        key = load_api_key(required=True)
        folders = [Path(f) for f in args.folders] or settings.extra_cassette_dirs()
        if not folders:
            raise ValueError("Name the cassette folders to check (or set QUICKSTART_CASSETTES).")
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing:
            raise ValueError(f"No such folder: {', '.join(missing)}")
        from quickstart_helpers.emulator import verify_cassettes

        drifts = verify_cassettes(folders, api_key=key, upstream=args.upstream)
    except MissingApiKeyError as exc:
        print(f"quickstart verify-cassettes: this needs your API key. {exc}", file=sys.stderr)
        return 2
    except (CassetteError, ValueError) as exc:
        print(f"quickstart verify-cassettes: {exc}", file=sys.stderr)
        return 2
    drifted = [d for d in drifts if d.drifted]
    for drift in drifts:
        if not drift.drifted:
            print(f"ok     {drift.cassette}")
            continue
        print(f"drift  {drift.cassette}")
        for line in drift.differences or [f"could not re-record: {drift.problem}"]:
            print(f"         {line}")
    if drifted:
        print(
            f"\n{len(drifted)} of {len(drifts)} cassette(s) drifted; re-record them with "
            "--record-mode all."
        )
        return 1
    print(f"\n{len(drifts)} cassette(s) checked: no drift in structure.")
    return 0


def _cmd_cassettes(args: argparse.Namespace) -> int:
    from quickstart_helpers.emulator import CassetteStore, cassette_listing, recordings_text
    from quickstart_helpers.errors import CassetteError

    try:
        store = CassetteStore([Path(f) for f in args.folders] or None)
    except CassetteError as exc:
        print(f"quickstart cassettes: {exc}", file=sys.stderr)
        return 2
    try:
        for cassette in store.cassettes if args.json else []:
            print(json.dumps(cassette_listing(cassette), ensure_ascii=False))
        if not args.json:
            print(recordings_text(store))
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `quickstart cassettes --json | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0

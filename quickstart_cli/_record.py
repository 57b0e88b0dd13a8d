"""``quickstart record``: notebooks run live through a recording proxy that writes cassettes."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from quickstart_helpers import settings

from ._common import (
    find_notebooks,
    report_failure,
    signals_interrupt,
    skip_the_iri_grammar,
    upstream_option,
)


def add_parsers(sub: Any) -> None:
    """Add the ``record`` command to the subparsers ``sub``."""
    record = sub.add_parser(
        "record",
        help="execute notebooks live through a recording proxy and write cassettes",
        description="Execute notebooks against the live API (your key is required) through "
        "a local recording proxy that writes one cassette per request or Live session, so "
        "`quickstart run` and `pytest --nbval` replay them offline without a key.",
    )
    record.add_argument("notebooks", nargs="+", help="notebooks or folders of notebooks")
    record.add_argument(
        "--cassettes",
        help="cassette folder (default: cassettes/<notebook name>/ beside each notebook)",
    )
    record.add_argument(
        "--record-mode",
        choices=list(settings.RECORD_MODES),
        default="once",
        help="once (default: only into a folder without cassettes), new_episodes (record "
        "what is not recorded yet), all (record everything again), none (replay only)",
    )
    upstream_option(record, "record")
    record.add_argument(
        "--output", default="build/record", help="executed copies (default: build/record)"
    )
    record.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    record.set_defaults(func=_cmd_record)


def _cmd_record(args: argparse.Namespace) -> int:
    skip_the_iri_grammar()
    from quickstart_helpers.env import load_api_key
    from quickstart_helpers.errors import CassetteError, MissingApiKeyError

    from ._progress import format_summary

    try:
        key = load_api_key(required=True)
        notebooks = find_notebooks(args.notebooks)
        upstream = args.upstream or settings.upstream()
    except MissingApiKeyError as exc:
        print(f"quickstart record: recording needs your API key. {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"quickstart record: {exc}", file=sys.stderr)
        return 2
    try:
        with signals_interrupt(), tempfile.TemporaryDirectory(prefix="quickstart-record-") as tmp:
            # The kernels' CA bundle, public (see recording_kernel_env): deleted however the
            # run stops, but for SIGKILL.
            bundle = Path(tmp) / "ca.pem"
            results = [_record_notebook(path, args, key, upstream, bundle) for path in notebooks]
    except (CassetteError, ValueError) as exc:
        print(f"quickstart record: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nquickstart record: interrupted; the kernel was shut down.", file=sys.stderr)
        return 130
    print()
    print(format_summary(results))
    print(
        "\nReplay offline (no key): quickstart run NOTEBOOK, or pytest --nbval NOTEBOOK, "
        "with QUICKSTART_CASSETTES set to the cassette folder when it is not the notebook's "
        "own cassettes/<notebook>/ folder."
    )
    return 0 if all(r.ok for r in results) else 1


def _record_notebook(
    path: Path, args: argparse.Namespace, key: str, upstream: str, bundle: Path
) -> Any:
    """Run one notebook live through its own recording proxy; return its result.

    Raises:
        CassetteError: A cassette already in the folder is not valid.
        ValueError: A record mode or upstream URL that is not allowed.
    """
    from quickstart_helpers.emulator import recording_emulator

    from ._kernel import notebook_cassette_dir, recording_kernel_env
    from ._runner import execute_notebook

    folder = Path(args.cassettes) if args.cassettes else notebook_cassette_dir(path)
    proxy = recording_emulator(
        folder, mode=args.record_mode, upstream=upstream, pacing="fast", shared=False
    )
    print(f"Recording {path} ({args.record_mode}) through {upstream} into {folder}/", flush=True)
    try:
        assert proxy.certificate is not None
        env = recording_kernel_env(proxy.base_url, proxy.certificate.ca_pem, key, bundle)
        _, result = execute_notebook(
            path,
            Path(args.output) / path.name,
            mode="live",
            pacing="fast",
            output_root=Path(args.output),
            progress=not args.no_progress,
            env=env,
        )
    finally:
        proxy.stop()
    assert proxy.recorder is not None
    print(f"  wrote {len(proxy.recorder.written)} cassette(s)")
    for failure in proxy.recorder.failures:
        print(f"  not recorded: {failure}", file=sys.stderr)
    report_failure(result)
    return result

"""The ``quickstart`` command: run notebooks, refresh stored outputs, serve the emulator."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import settings

__all__ = ["main"]


def _skip_the_iri_grammar() -> None:
    """Keep this process from importing ``rfc3987_syntax``: about 1 s of CPU saved.

    The runner needs nbformat, which imports jsonschema, which imports
    ``rfc3987_syntax`` when it is installed (JupyterLab brings it, through
    jupyter-events) to check the ``iri`` string format; that module builds a lark
    grammar when imported. Notebook schemas use no string format, so the ``quickstart``
    command never needs it. ``None`` in ``sys.modules`` makes ``import`` raise
    ``ImportError``, which jsonschema handles as "not installed".
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]


def _pacing_option(
    parser: argparse.ArgumentParser, default: str = "fast in CI and realtime elsewhere"
) -> None:
    """Add ``--pacing``; unset, the command uses ``$QUICKSTART_PACING``, else ``default``."""
    parser.add_argument(
        "--pacing",
        choices=list(settings.PACINGS),
        default=None,
        help="offline: replay recorded delays (realtime) or send at once (fast). Default: "
        f"$QUICKSTART_PACING, else {default}",
    )


def _mode_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=[m for m in settings.MODES if m != "record"],
        default="auto",
        help="live, offline, or auto (live when a key is found; $QUICKSTART_MODE overrides)",
    )


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def _jobs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        "-j",
        type=_positive_int,
        default=None,
        metavar="N",
        help="notebooks to run at once, each in its own kernel (default: $QUICKSTART_JOBS, "
        f"else {settings.JOBS_PER_CPU} per CPU)",
    )


def _cell_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default: 600)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _upstream_option(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--upstream",
        default=None,
        help=f"server to {verb} (default: $QUICKSTART_UPSTREAM, else {settings.DEFAULT_UPSTREAM})",
    )


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Make SIGTERM (process managers, ``kill``) and SIGHUP (a closed terminal) stop the
    command as Ctrl-C does, and SIGINT too in a job started with ``&`` (which starts with
    it ignored): ``KeyboardInterrupt`` shuts the kernels down and deletes the temporary
    files. The previous handlers come back afterwards. Outside the main thread, where
    handlers cannot be set, nothing changes."""
    import signal
    import threading

    signals = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        signals = []
    saved = {s: signal.signal(s, signal.default_int_handler) for s in signals}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _cmd_run(args: argparse.Namespace) -> int:
    _skip_the_iri_grammar()
    from ._runner import find_notebooks, format_summary, run_notebooks
    from .client import resolve_mode
    from .errors import MissingApiKeyError

    try:
        # Full speed unless asked: a run checks notebooks, nobody watches it stream.
        env_pacing = settings.pacing() if settings.get("QUICKSTART_PACING") else None
        args.pacing = args.pacing or env_pacing or "fast"
        jobs = args.jobs or settings.jobs()
        mode = resolve_mode(args.mode)
        if mode == "live":
            from .env import load_api_key

            load_api_key(required=True)
        notebooks = find_notebooks(args.notebooks)
    except (MissingApiKeyError, FileNotFoundError, ValueError) as exc:
        print(f"quickstart run: {exc}", file=sys.stderr)
        return 2
    output_root = Path(args.output)
    jobs = min(jobs, len(notebooks))
    print(
        f"Running {len(notebooks)} notebook(s) in {mode} mode"
        + (f" ({args.pacing} pacing)" if mode == "offline" else "")
        + (f", {jobs} at a time" if jobs > 1 else "")
        + f"; executed copies and outputs go to {output_root}/",
        flush=True,
    )
    try:
        with _signals_interrupt():
            results = run_notebooks(
                notebooks,
                output_root=output_root,
                executed_in=output_root,
                mode=mode,
                pacing=args.pacing,
                jobs=jobs,
                timeout=args.timeout,
                progress=not args.no_progress,
                on_result=_report_failure,
            )
    except ValueError as exc:  # not a notebook, or two notebooks with one name
        print(f"quickstart run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nquickstart run: interrupted; the kernels were shut down.", file=sys.stderr)
        return 130
    print()
    print(format_summary(results))
    return 0 if all(r.ok for r in results) else 1


def _report_failure(result: Any) -> None:
    """Print where a notebook failed and where its executed copy is (to stderr)."""
    if result.ok:
        return
    path = result.notebook
    print(
        f"FAILED: {path} cell {result.failed_cell}: {result.error}\n"
        f"  The executed copy with the traceback is {result.executed}",
        file=sys.stderr,
        flush=True,
    )


def _cmd_refresh(args: argparse.Namespace) -> int:
    import tempfile

    _skip_the_iri_grammar()
    from ._runner import find_notebooks, run_notebooks

    try:
        notebooks = find_notebooks(args.notebooks)
        jobs = args.jobs or settings.jobs()
    except (FileNotFoundError, ValueError) as exc:
        print(f"quickstart refresh: {exc}", file=sys.stderr)
        return 2

    def report(result: Any) -> None:
        state = "refreshed" if result.ok else f"FAILED at cell {result.failed_cell}: {result.error}"
        print(f"{result.notebook}: {state}", flush=True)

    try:
        with _signals_interrupt(), tempfile.TemporaryDirectory(prefix="quickstart-refresh-") as tmp:
            results = run_notebooks(
                notebooks,
                output_root=Path(tmp),
                mode="offline",
                pacing="fast",
                jobs=min(jobs, len(notebooks)),
                on_result=report,
            )
    except ValueError as exc:
        print(f"quickstart refresh: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nquickstart refresh: interrupted; the kernels were shut down.", file=sys.stderr)
        return 130
    return 0 if all(r.ok for r in results) else 1


def _cmd_record(args: argparse.Namespace) -> int:
    import tempfile

    _skip_the_iri_grammar()
    from ._runner import find_notebooks, format_summary
    from .env import load_api_key
    from .errors import CassetteError, MissingApiKeyError

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
        with _signals_interrupt(), tempfile.TemporaryDirectory(prefix="quickstart-record-") as tmp:
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
    from ._runner import execute_notebook, notebook_cassette_dir, recording_kernel_env
    from .emulator import recording_emulator

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
            timeout=args.timeout,
            progress=not args.no_progress,
            env=env,
        )
    finally:
        proxy.stop()
    assert proxy.recorder is not None
    print(f"  wrote {len(proxy.recorder.written)} cassette(s)")
    for failure in proxy.recorder.failures:
        print(f"  not recorded: {failure}", file=sys.stderr)
    _report_failure(result)
    return result


def _cmd_verify(args: argparse.Namespace) -> int:
    from .env import load_api_key
    from .errors import CassetteError, MissingApiKeyError

    try:
        key = load_api_key(required=True)
        folders = [Path(f) for f in args.folders] or settings.extra_cassette_dirs()
        if not folders:
            raise ValueError("Name the cassette folders to check (or set QUICKSTART_CASSETTES).")
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing:
            raise ValueError(f"No such folder: {', '.join(missing)}")
        from .emulator import verify_cassettes

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
    import json

    from .emulator import CassetteStore, cassette_listing, recordings_text
    from .errors import CassetteError

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


def _cmd_emulator(args: argparse.Namespace) -> int:
    import gc
    import threading

    from .emulator import Emulator

    with _signals_interrupt():  # `finally` cleans up on each of them
        try:
            pacing = args.pacing or settings.pacing()
            emulator = Emulator(pacing=pacing, port=args.port).start()
        except (ValueError, RuntimeError) as exc:
            print(f"quickstart emulator: {exc}", file=sys.stderr)
            return 2
        try:
            print("# The Gemini API emulator is serving. In another shell, run:")
            print(emulator.shell_exports())
            print(
                "# then any unmodified genai.Client() program (Python or Node), or curl, talks\n"
                "# to it. Ctrl-C (or SIGTERM) stops it and deletes its certificate.",
                flush=True,
            )
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            emulator.stop()
            gc.freeze()  # exit without collecting every object at shutdown (0.4 s or more)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import threading

    from .client import make_client, resolve_mode
    from .errors import MissingApiKeyError
    from .web import SAMPLE_QUESTION, ChatServer

    try:
        mode = resolve_mode(args.mode)
        client = make_client(mode, pacing=args.pacing or settings.pacing())
        default_model = (
            settings.INTERACTIONS_MODEL if args.api == "interactions" else settings.text_model()
        )
        server = ChatServer(
            client, model=args.model or default_model, port=args.port, api=args.api
        ).start()
    except (MissingApiKeyError, ValueError, RuntimeError) as exc:
        print(f"quickstart serve: {exc}", file=sys.stderr)
        if isinstance(exc, RuntimeError):
            print("Pick another port with --port, or --port 0 for a free one.", file=sys.stderr)
        return 2
    with _signals_interrupt():  # `finally` sends the final events on each of them
        try:
            if mode == "offline":
                print(f'Offline, only recorded questions have answers; try "{SAMPLE_QUESTION}"')
            print(f"The chat page is at {server.url} (Ctrl-C stops the server).", flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``quickstart`` command."""
    parser = argparse.ArgumentParser(
        prog="quickstart",
        description="Gemini streaming quickstarts: run notebooks, live or offline.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="execute notebooks headless (live with a key, else offline)",
        description="Execute notebooks with nbclient. Executed copies and the files they "
        "produce go under --output. Live when GEMINI_API_KEY is found, else offline.",
    )
    run.add_argument("notebooks", nargs="*", help="notebooks or folders (default: notebooks/)")
    _mode_option(run)
    _pacing_option(run, default="fast")
    run.add_argument("--output", default="build/run", help="output folder (default: build/run)")
    _jobs_option(run)
    _cell_options(run)
    run.set_defaults(func=_cmd_run)

    refresh = sub.add_parser(
        "refresh",
        help="re-execute notebooks offline and store the outputs in place",
        description="Re-execute notebooks offline with fast pacing and write them back, so the "
        "stored outputs are the canonical offline ones that nbval compares against.",
    )
    refresh.add_argument("notebooks", nargs="*", help="notebooks or folders (default: notebooks/)")
    _jobs_option(refresh)
    refresh.set_defaults(func=_cmd_refresh)

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
        default=None,
        help="cassette folder (default: cassettes/<notebook name>/ beside each notebook)",
    )
    record.add_argument(
        "--record-mode",
        choices=list(settings.RECORD_MODES),
        default="once",
        help="once (default: only into a folder without cassettes), new_episodes (record "
        "what is not recorded yet), all (record everything again), none (replay only)",
    )
    _upstream_option(record, "record")
    record.add_argument(
        "--output", default="build/record", help="executed copies (default: build/record)"
    )
    _cell_options(record)
    record.set_defaults(func=_cmd_record)

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
    _upstream_option(verify, "ask")
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

    emulator = sub.add_parser(
        "emulator",
        help="run the Gemini API emulator standalone",
        description="Serve the emulator on 127.0.0.1 and print the shell exports that point "
        "any unmodified genai.Client() program at it.",
    )
    emulator.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    _pacing_option(emulator)
    emulator.set_defaults(func=_cmd_emulator)

    serve = sub.add_parser(
        "serve",
        help="serve the streaming web chat page (SSE) on 127.0.0.1",
        description="Serve the web chat: a page whose EventSource shows the model's answer "
        "chunk by chunk. Live when GEMINI_API_KEY is found, else offline with the emulator.",
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000; 0: free)")
    _mode_option(serve)
    _pacing_option(serve)
    serve.add_argument(
        "--model",
        default=None,
        help=f"model to ask (default: $QUICKSTART_TEXT_MODEL, else {settings.DEFAULT_TEXT_MODEL}; "
        f"with --api interactions, {settings.INTERACTIONS_MODEL})",
    )
    serve.add_argument(
        "--api",
        choices=("generate", "interactions"),
        default="generate",
        help="what the relay asks: generate_content_stream (default) or the Interactions API "
        "(streams resume after a dropped connection)",
    )
    serve.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``quickstart`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

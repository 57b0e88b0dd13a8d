"""``quickstart emulator`` and ``quickstart serve``: servers that run until stopped."""

from __future__ import annotations

import argparse
import gc
import sys
import threading
from typing import Any

from quickstart_helpers import settings

from ._common import mode_option, pacing_option, signals_interrupt


def add_parsers(sub: Any) -> None:
    """Add the ``emulator`` and ``serve`` commands to the subparsers ``sub``."""
    emulator = sub.add_parser(
        "emulator",
        help="run the Gemini API emulator standalone",
        description="Serve the emulator on 127.0.0.1 and print the shell exports that point "
        "any unmodified genai.Client() program at it.",
    )
    emulator.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    pacing_option(emulator)
    emulator.set_defaults(func=_cmd_emulator)

    serve = sub.add_parser(
        "serve",
        help="serve the streaming web chat page (SSE) on 127.0.0.1",
        description="Serve the web chat: a page whose EventSource shows the model's answer "
        "chunk by chunk. Live when GEMINI_API_KEY is found, else offline with the emulator.",
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000; 0: free)")
    mode_option(serve)
    pacing_option(serve)
    serve.add_argument(
        "--model",
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


def _cmd_emulator(args: argparse.Namespace) -> int:
    from quickstart_helpers.emulator import Emulator

    with signals_interrupt():  # `finally` cleans up on each of them
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
    from quickstart_helpers.errors import MissingApiKeyError
    from quickstart_helpers.web import SAMPLE_QUESTION, ChatServer

    from ._client import make_client, resolve_mode

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
    with signals_interrupt():  # `finally` sends the final events on each of them
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

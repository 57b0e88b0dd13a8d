"""The embedded Gemini API emulator: replays cassettes over the API's real wire protocol (HTTPS +
SSE, the Live API's WebSocket, Interactions), so the real SDKs stream with no key and no network;
docs/offline.md, "What the emulator serves", lists every route. Run it with :class:`Emulator` or
:func:`get_emulator`, read and write recordings with :class:`CassetteStore` and the cassette models,
record with :func:`recording_emulator`."""

from ._cassette import (
    FORMAT,
    Chunk,
    CountTokensCassette,
    GenerateCassette,
    InteractionsCassette,
    LiveCassette,
    ModelsCassette,
)
from ._cassette_io import dump_cassette, load_cassette, parse_cassette
from ._protocol import RequestLog
from ._record import Recorder, recording_emulator, upstream_ssl_context
from ._server import Emulator, get_emulator
from ._store import CassetteStore, cassette_dirs, recordings_text, shipped_cassette_dir
from ._store import listing as cassette_listing
from ._verify import verify_cassettes

__all__ = [
    "FORMAT",
    "CassetteStore",
    "Chunk",
    "CountTokensCassette",
    "Emulator",
    "GenerateCassette",
    "InteractionsCassette",
    "LiveCassette",
    "ModelsCassette",
    "Recorder",
    "RequestLog",
    "cassette_dirs",
    "cassette_listing",
    "dump_cassette",
    "get_emulator",
    "load_cassette",
    "parse_cassette",
    "recording_emulator",
    "recordings_text",
    "shipped_cassette_dir",
    "upstream_ssl_context",
    "verify_cassettes",
]

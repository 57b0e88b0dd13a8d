"""The embedded Gemini API emulator: replays cassettes over the API's real wire protocol.

An HTTPS server on 127.0.0.1 (aiohttp, a certificate made at start) that serves
``generateContent``, ``streamGenerateContent`` (SSE), the Interactions API
(``/interactions``, SSE) and the Live API's WebSocket from recorded cassettes, so
the real SDK streams for real with no key and no network.

Public surface:

- :class:`Emulator`, :func:`get_emulator`, :func:`stop_emulator`: run it;
- :class:`CassetteStore` and the cassette models (:data:`Cassette`,
  :class:`GenerateCassette`, :class:`LiveCassette`, ...), :func:`load_cassette`,
  :func:`request_key`: read and match recordings;
- :data:`INVALID_KEY_ERROR`: the live API's answer to a bad key, which the emulator
  sends for the key ``invalid``.

Everything in ``_``-prefixed modules is internal.
"""

from ._cassettes import (
    FORMAT,
    Cassette,
    CassetteStore,
    Chunk,
    GenerateCassette,
    InteractionEvent,
    InteractionsCassette,
    LiveAudio,
    LiveCassette,
    LiveMessage,
    LiveTurn,
    cassette_dirs,
    interactions_request_key,
    load_cassette,
    normalize_contents,
    parse_cassette,
    request_key,
    shipped_cassette_dir,
)
from ._http import merge_chunks
from ._protocol import IMAGE_OUTPUT_MODELS, INVALID_KEY_ERROR, ReceivedRequest
from ._server import Emulator, get_emulator, stop_emulator

__all__ = [
    "FORMAT",
    "IMAGE_OUTPUT_MODELS",
    "INVALID_KEY_ERROR",
    "Cassette",
    "CassetteStore",
    "Chunk",
    "Emulator",
    "GenerateCassette",
    "InteractionEvent",
    "InteractionsCassette",
    "LiveAudio",
    "LiveCassette",
    "LiveMessage",
    "LiveTurn",
    "ReceivedRequest",
    "cassette_dirs",
    "get_emulator",
    "interactions_request_key",
    "load_cassette",
    "merge_chunks",
    "normalize_contents",
    "parse_cassette",
    "request_key",
    "shipped_cassette_dir",
    "stop_emulator",
]

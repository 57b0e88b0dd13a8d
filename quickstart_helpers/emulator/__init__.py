"""The embedded Gemini API emulator: replays cassettes over the API's real wire protocol.

An HTTPS server on 127.0.0.1 (aiohttp, a certificate made at start) that serves
``generateContent``, ``streamGenerateContent`` (SSE or a JSON array), ``countTokens``,
``models.list``/``models.get``, ephemeral ``auth_tokens``, the Interactions API
(``/interactions``: create as SSE or JSON, get with resume, cancel, delete) and the
Live API's WebSocket (plain and constrained, with session resumption) from recorded
cassettes, so the real
SDKs (Python and JavaScript) stream for real with no key and no network. Requests are
validated against the SDK's own types and every error is the API's JSON; the README's
"What the emulator serves" lists every route.

Public surface:

- :class:`Emulator`, :func:`get_emulator`, :func:`stop_emulator`: run it;
- :class:`CassetteStore` and the cassette models (:data:`Cassette`,
  :class:`GenerateCassette`, :class:`LiveCassette`, the fault directives
  :data:`Fault` ...), :func:`load_cassette`, :func:`parse_cassette`,
  :func:`dump_cassette`, :func:`request_key`: read, write and match recordings
  (``quickstart cassettes`` lists them);
- :class:`Recorder`, :func:`recording_emulator`: record mode, a recording proxy in front
  of the live API (or any upstream);
- :data:`INVALID_KEY_ERROR`: the live API's answer to a bad key, which the emulator
  sends for the key ``invalid``.

Everything in ``_``-prefixed modules is internal.
"""

from ._cassette import (
    FORMAT,
    Cassette,
    Chunk,
    CountTokensCassette,
    Fault,
    GenerateCassette,
    InteractionsCassette,
    LiveCassette,
    ModelsCassette,
)
from ._cassette_io import cassette_json, dump_cassette, load_cassette, parse_cassette
from ._http import merge_chunks
from ._matching import cassette_key, normalize_contents, request_key
from ._protocol import IMAGE_OUTPUT_MODELS, INVALID_KEY_ERROR, ReceivedRequest, RequestLog
from ._record import Recorder, recording_emulator, upstream_ssl_context
from ._server import Emulator, get_emulator, stop_emulator
from ._store import CassetteStore, cassette_dirs, recordings_text, shipped_cassette_dir
from ._store import listing as cassette_listing
from ._verify import Drift, verify_cassettes

__all__ = [
    "FORMAT",
    "IMAGE_OUTPUT_MODELS",
    "INVALID_KEY_ERROR",
    "Cassette",
    "CassetteStore",
    "Chunk",
    "CountTokensCassette",
    "Drift",
    "Emulator",
    "Fault",
    "GenerateCassette",
    "InteractionsCassette",
    "LiveCassette",
    "ModelsCassette",
    "ReceivedRequest",
    "RequestLog",
    "Recorder",
    "cassette_dirs",
    "cassette_json",
    "cassette_key",
    "cassette_listing",
    "dump_cassette",
    "get_emulator",
    "load_cassette",
    "merge_chunks",
    "normalize_contents",
    "parse_cassette",
    "recording_emulator",
    "recordings_text",
    "request_key",
    "shipped_cassette_dir",
    "stop_emulator",
    "upstream_ssl_context",
    "verify_cassettes",
]

"""``%load_ext quickstart_helpers`` (:func:`setup` in scripts): live with your key, else the
offline emulator. Like ``%load_ext dotenv`` it changes the process's environment and nothing
else, so each later ``genai.Client()`` is the one a learner writes against the live API.

A key (Colab secret, ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``, the nearest ``.env``) goes to
``GEMINI_API_KEY``. Without one the emulator starts and the SDK's own variables point at it:
``GOOGLE_GEMINI_BASE_URL`` (read when ``http_options.base_url`` is unset), a placeholder key,
and ``SSL_CERT_FILE``: certifi's roots plus the emulator's authority. The SDK builds the SSL
contexts of REST and SSE (httpx, aiohttp) and of the Live API's WebSocket from it
(``_api_client.py``) and the Interactions API shares those clients, so all verify the
emulator while ``%pip`` and other HTTPS verify everyone else as before.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from . import settings
from ._api_errors import advice, code_and_message, status
from .env import load_api_key

#: The key sent to the emulator (the SDK insists on one; the emulator refuses only "invalid").
OFFLINE_KEY = "offline-emulator"


LIVE_LINE = "Mode: live. Requests go to {where} with your key."
OFFLINE_LINE = (
    "Mode: offline. No API key found, so a local emulator replays recorded responses; "
    "set GEMINI_API_KEY to go live."
)


def _trust_bundle(ca_pem: bytes) -> Path:
    """A PEM file of certifi's roots plus ``ca_pem`` (certificates only), deleted at exit."""
    import certifi

    folder = Path(tempfile.mkdtemp(prefix="quickstart-ca-"))
    bundle = folder / "ca-bundle.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca_pem)
    atexit.register(lambda: (bundle.unlink(missing_ok=True), folder.rmdir()))
    return bundle


def _point_sdk_at(server: Any, key: str) -> None:
    os.environ.pop("GOOGLE_API_KEY", None)  # the SDK prefers it to GEMINI_API_KEY
    os.environ.update(
        GOOGLE_GEMINI_BASE_URL=server.base_url,
        GEMINI_API_KEY=key,
        SSL_CERT_FILE=str(_trust_bundle(server.certificate.ca_pem)),
    )


def setup() -> Literal["live", "offline", "record"]:
    """Choose the mode for this process; print one line saying which (never the key).

    ``QUICKSTART_MODE=record`` (with ``QUICKSTART_CASSETTES=DIR`` and a key) instead points
    the SDK at a local recording proxy: what the cassettes in ``DIR`` do not answer goes to
    the live API and is recorded there (with ``QUICKSTART_RECORD_MODE=once``, for example).
    """
    mode = settings.mode()
    key = None if mode == "offline" else load_api_key(required=mode in ("live", "record"))
    if mode == "record":
        from .emulator import recording_emulator

        folders = settings.extra_cassette_dirs()
        if not folders:
            raise ValueError("QUICKSTART_MODE=record needs QUICKSTART_CASSETTES=DIR.")
        chosen = settings.record_mode()
        _point_sdk_at(recording_emulator(folders[0], mode=chosen), key)
        print(f"Mode: record ({chosen}). What {folders[0]} does not answer is recorded there.")
        return "record"
    if key:
        if os.environ.get("GOOGLE_API_KEY") != key:  # the SDK prefers GOOGLE_API_KEY
            os.environ.pop("GOOGLE_API_KEY", None)
            os.environ["GEMINI_API_KEY"] = key
        where = os.environ.get("GOOGLE_GEMINI_BASE_URL") or "the Gemini API"
        print(LIVE_LINE.format(where=where))
        return "live"
    from .emulator import get_emulator

    _point_sdk_at(get_emulator(), OFFLINE_KEY)
    print(OFFLINE_LINE)
    return "offline"


def show_api_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset=None):
    """IPython custom exception handler: the API's message once, then one line of advice."""
    code, message = code_and_message(value)
    what = " ".join(str(w) for w in (code, status(value)) if w)
    lines = [f"{etype.__name__}: {what}: {message or value}", advice(value)]
    shell._showtraceback(etype, value, lines)  # an error output, as for any failed cell
    return lines


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext quickstart_helpers``: :func:`setup`, and short API errors in cells."""
    from google.genai.errors import APIError

    setup()
    ipython.set_custom_exc((APIError,), show_api_error)

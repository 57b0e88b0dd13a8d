"""``%load_ext quickstart_helpers``: live with your key, else the offline emulator.

It changes the process's environment and nothing else, the way ``%load_ext dotenv`` does,
so every later ``genai.Client()`` is the one a learner writes against the live API:

- a key (the Colab secret ``GEMINI_API_KEY``, then ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``
  in the environment, then the nearest ``.env``) goes to ``GEMINI_API_KEY``: live;
- without one (or with ``QUICKSTART_MODE=offline``) the emulator starts and the SDK's own
  variables point at it: ``GOOGLE_GEMINI_BASE_URL`` (read when ``http_options.base_url`` is
  unset), ``GEMINI_API_KEY`` (a placeholder it accepts) and ``SSL_CERT_FILE``: certifi's
  roots plus the emulator's certificate authority, so REST, SSE, the Live API's WebSocket
  and the Interactions API verify the emulator while ``%pip`` and other HTTPS still verify
  the rest of the world.

It also shows an API error raised in a cell as its message and one line of advice.
Scripts call :func:`setup` for the same switch.
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


def _trust_bundle(ca_pem: bytes) -> Path:
    """A PEM file of certifi's roots plus ``ca_pem``, deleted at exit (certificates only)."""
    import certifi

    folder = Path(tempfile.mkdtemp(prefix="quickstart-ca-"))
    bundle = folder / "ca-bundle.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca_pem)

    def remove() -> None:
        bundle.unlink(missing_ok=True)
        folder.rmdir()

    atexit.register(remove)
    return bundle


def setup() -> Literal["live", "offline"]:
    """Choose live or offline for this process, print one line saying which, return it.

    The key is never printed. Offline, the shared emulator starts (stopped at exit).
    """
    key = None if settings.mode() == "offline" else load_api_key()
    if key:
        os.environ["GEMINI_API_KEY"] = key  # from Colab or .env; the SDK reads the environment
        where = os.environ.get("GOOGLE_GEMINI_BASE_URL") or "the Gemini API"
        print(f"Mode: live. Requests go to {where} with your key.")
        return "live"
    from .emulator import get_emulator

    emulator = get_emulator()
    os.environ.pop("GOOGLE_API_KEY", None)  # the SDK prefers it to GEMINI_API_KEY
    os.environ.update(
        GOOGLE_GEMINI_BASE_URL=emulator.base_url,
        GEMINI_API_KEY=OFFLINE_KEY,
        SSL_CERT_FILE=str(_trust_bundle(emulator.certificate.ca_pem)),
    )
    print(
        "Mode: offline. No API key found, so a local emulator replays recorded responses; "
        "set GEMINI_API_KEY to go live."
    )
    return "offline"


def show_api_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset=None):
    """IPython custom exception handler: the API's message once, then one line of advice."""
    code, message = code_and_message(value)
    what = " ".join(str(w) for w in (code, status(value)) if w)
    lines = [f"{etype.__name__}: {what}: {message or value}", advice(value)]
    shell._showtraceback(etype, value, lines)
    return lines


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext quickstart_helpers``: :func:`setup`, and short API errors in cells."""
    from google.genai.errors import APIError

    setup()
    ipython.set_custom_exc((APIError,), show_api_error)

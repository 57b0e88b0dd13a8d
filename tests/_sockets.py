"""Socket helpers shared by the emulator's and the web relay's tests."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.request
from typing import Any


def closed_within(sock: ssl.SSLSocket | socket.socket, seconds: float) -> bytes | None:
    """Read until the server closes the socket; return what it sent, None if it did not."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return None
    except (ConnectionResetError, ssl.SSLError):
        pass
    return data


def raw_generate_stream(emu: Any, model: str, prompt: str, *, sse: bool = True) -> bytes:
    """POST one user turn to the emulator's streamGenerateContent with urllib (no SDK);
    return the response body's bytes exactly as sent (SSE, or a JSON array when
    ``sse`` is False). Raises urllib's HTTPError for an error status."""
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": prompt}]}]}).encode()
    query = "?alt=sse" if sse else ""
    request = urllib.request.Request(
        f"{emu.base_url}/v1beta/models/{model}:streamGenerateContent{query}",
        data=body,
        headers={"x-goog-api-key": "k", "Content-Type": "application/json"},
    )
    ctx = ssl.create_default_context(cafile=str(emu.certificate.cert_file))
    with urllib.request.urlopen(request, context=ctx) as response:
        if sse:
            assert response.headers["Content-Type"].startswith("text/event-stream")
        return response.read()

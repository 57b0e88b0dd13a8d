"""Socket helpers shared by the hardening tests of the emulator and of the web relay."""

from __future__ import annotations

import socket
import ssl


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

"""The emulator's front door (issue 23): an Origin with userinfo and a request without Host."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from quickstart_helpers.emulator import Emulator
from tests._sockets import closed_within


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(pacing="fast") as emulator:
        yield emulator


def get_models(emu: Emulator, **headers: str) -> httpx.Response:
    with httpx.Client(verify=emu.certificate.client_context(), timeout=30) as http:
        return http.get(f"{emu.base_url}/v1beta/models", headers={"x-goog-api-key": "k", **headers})


@pytest.mark.parametrize(
    "origin", ["http://evil.com@127.0.0.1", "http://evil.com:pw@localhost:3000", "http://@[::1]"]
)
def test_an_origin_with_userinfo_is_refused_and_not_echoed(emu: Emulator, origin: str) -> None:
    response = get_models(emu, Origin=origin)
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
    assert "access-control-allow-origin" not in response.headers


def test_a_local_origin_is_still_echoed(emu: Emulator) -> None:
    response = get_models(emu, Origin="http://localhost:3000")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


def raw_get(emu: Emulator, head: bytes) -> bytes:
    ctx = emu.certificate.client_context()
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /v1beta/models HTTP/1.0\r\nx-goog-api-key: k\r\n" + head + b"\r\n")
            raw = closed_within(tls, 10)
    assert raw is not None
    return raw


def test_an_http_1_0_request_without_host_is_refused(emu: Emulator) -> None:
    raw = raw_get(emu, b"")
    assert raw.startswith(b"HTTP/1.0 403")
    assert json.loads(raw.partition(b"\r\n\r\n")[2])["error"]["status"] == "PERMISSION_DENIED"
    assert raw_get(emu, f"Host: 127.0.0.1:{emu.port}\r\n".encode()).startswith(b"HTTP/1.0 200")

"""`quickstart emulator` as a real process: what it prints is all a client needs, and a
signal stops it with nothing left on disk.

Each test starts ``python -m quickstart_cli emulator`` and reads the ``export``
lines it prints. The JavaScript SDK and curl then run with those variables
and ``PATH`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psutil
import pytest

from .conformance import TEXT, chunk_texts, last_prompt
from .test_conformance_rest import parse_sse, texts_of
from .test_js_sdk import install_sdk

COMMAND = [sys.executable, "-m", "quickstart_cli", "emulator", "--pacing", "fast"]
EXPORTS = {
    "GOOGLE_GEMINI_BASE_URL",
    "GEMINI_API_KEY",
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "CURL_CA_BUNDLE",
}


def read_exports(stdout) -> dict[str, str]:
    """Read the ``export NAME=value`` lines it prints; check they are :data:`EXPORTS`."""
    exports: dict[str, str] = {}
    for line in stdout:
        match = re.fullmatch(r"export (\w+)=(.*)", line.strip())
        if match:
            exports[match[1]] = match[2]
        elif exports:
            break
    assert set(exports) == EXPORTS
    return exports


def stopped(process: subprocess.Popen, sig: int) -> int:
    """Send ``sig`` to ``process``; return its exit code."""
    os.kill(process.pid, sig)
    return process.wait(timeout=30)


@contextlib.contextmanager
def emulator(*options: str) -> Iterator[tuple[subprocess.Popen, dict[str, str]]]:
    """`quickstart emulator` as a process, and what it printed plus ``PATH`` (the process
    is killed if the test leaves it running)."""
    process = subprocess.Popen([*COMMAND, *options], stdout=subprocess.PIPE, text=True)
    try:
        yield process, {"PATH": os.environ["PATH"], **read_exports(process.stdout)}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def printed() -> Iterator[dict[str, str]]:
    """A running `quickstart emulator`: only what it printed, plus ``PATH``."""
    with emulator() as (process, env):
        yield env
        stopped(process, signal.SIGTERM)


def test_it_prints_one_certificate_authority_for_python_node_and_curl(printed) -> None:
    ca = {printed[name] for name in ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE")}
    assert len(ca) == 1
    text = Path(ca.pop()).read_text()
    assert text.count("BEGIN CERTIFICATE") == 1 and "PRIVATE KEY" not in text


def _curl(env: dict[str, str]) -> subprocess.CompletedProcess:
    """A user's curl command, reading the base URL and key from the environment."""
    script = (
        'curl -sS --no-buffer "$GOOGLE_GEMINI_BASE_URL/v1beta/models/$MODEL'
        ':streamGenerateContent?alt=sse" -H "x-goog-api-key: $GEMINI_API_KEY" '
        '-H "Content-Type: application/json" -d "$BODY"'
    )
    extra = {"MODEL": TEXT.model, "BODY": json.dumps(TEXT.request)}
    return subprocess.run(
        ["bash", "-c", script], env={**env, **extra}, capture_output=True, timeout=60
    )


def test_curl_streams_a_recording_with_the_printed_exports(printed) -> None:
    done = _curl(printed)
    assert done.returncode == 0, done.stderr
    assert texts_of(parse_sse(done.stdout)) == chunk_texts(TEXT)


def test_curl_without_the_ca_bundle_refuses_the_emulator(printed) -> None:
    env = {k: v for k, v in printed.items() if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    done = _curl(env)
    assert done.returncode == 60, done.stderr  # CURLE_PEER_FAILED_VERIFICATION
    assert done.stdout == b""


def _node(env: dict[str, str]) -> subprocess.CompletedProcess:
    folder = install_sdk()
    argv = ["node", "exports.mjs", TEXT.model, last_prompt(TEXT)]
    return subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_the_javascript_sdk_streams_a_recording_with_the_printed_exports(printed) -> None:
    done = _node(printed)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == chunk_texts(TEXT)


def test_the_javascript_sdk_without_node_extra_ca_certs_refuses_the_emulator(printed) -> None:
    done = _node({k: v for k, v in printed.items() if k != "NODE_EXTRA_CA_CERTS"})
    assert done.returncode != 0 and done.stdout == ""
    assert "certificate" in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=str)
def test_a_signal_stops_it_and_deletes_its_certificate(sig: signal.Signals) -> None:
    with emulator() as (process, env):
        folder = Path(env["SSL_CERT_FILE"]).parent
        assert folder.is_dir() and folder.name.startswith("gemini-emulator-")
        code = stopped(process, sig)
    assert code == 0
    assert not folder.exists()


def test_sigint_stops_a_background_job_of_a_script() -> None:
    """A non-interactive shell starts `cmd &` with SIGINT ignored; the emulator still stops."""
    script = '"$@" & echo "pid $!"; wait $!; echo "exit $?"'
    shell = subprocess.Popen(
        ["bash", "-c", script, "bash", *COMMAND], stdout=subprocess.PIPE, text=True
    )
    pid = int(shell.stdout.readline().removeprefix("pid "))
    try:
        folder = Path(read_exports(shell.stdout)["SSL_CERT_FILE"]).parent
        os.kill(pid, signal.SIGINT)
        assert shell.wait(timeout=30) == 0
    finally:
        if shell.poll() is None:  # still serving: SIGINT was ignored
            os.kill(pid, signal.SIGTERM)
            shell.wait(timeout=30)
    assert shell.stdout.read().endswith("exit 0\n")  # the emulator's exit code
    assert not folder.exists()


def test_sigterm_during_a_stream_stops_it_and_deletes_its_certificate() -> None:
    """A client still streaming (realtime pacing) does not hold the emulator up."""
    with emulator("--pacing", "realtime") as (process, env):
        curl = subprocess.Popen(
            [
                "bash",
                "-c",
                'curl -sS -N "$URL" -H "x-goog-api-key: k" -H "Content-Type: $TYPE" -d "$BODY"',
            ],
            env={
                **env,
                "URL": f"{env['GOOGLE_GEMINI_BASE_URL']}/v1beta/models/{TEXT.model}"
                ":streamGenerateContent?alt=sse",
                "BODY": json.dumps(TEXT.request),
                "TYPE": "application/json",
            },
            stdout=subprocess.PIPE,
        )
        assert curl.stdout.readline().startswith(b"data: ")  # the stream has begun
        code = stopped(process, signal.SIGTERM)
        curl.wait(timeout=30)
    assert code == 0
    assert not Path(env["SSL_CERT_FILE"]).parent.exists()


async def _burst(env: dict[str, str], parts: int, text: str) -> None:
    """Six generate bodies of ``parts`` text parts (``text`` and the part's number) at once,
    on new connections, closed after."""
    url = f"{env['GOOGLE_GEMINI_BASE_URL']}/v1beta/models/{TEXT.model}:generateContent"
    texts = [{"text": f"{text}{i}"} for i in range(parts)]
    body = json.dumps({"contents": [{"parts": texts}]})
    headers = {"x-goog-api-key": "k", "Content-Type": "application/json"}
    context = ssl.create_default_context(cafile=env["SSL_CERT_FILE"])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:

        async def send() -> int:
            async with session.post(url, data=body, headers=headers) as response:
                return response.status

        assert await asyncio.gather(*(send() for _ in range(6))) == [404] * 6


@pytest.mark.parametrize(
    ("parts", "text", "most"),
    [(8_000, "word " * 25, 12), (20_000, "w", 20)],  # 1.1 MB; 0.4 MB, kept in the request log
    ids=["1.1 MB", "0.4 MB"],
)
def test_memory_comes_back_after_each_burst_of_large_requests(parts, text, most) -> None:
    """Under glibc's allocator, with one collection and trim a second after a burst, it held
    4-7 MiB over its start after each of 4 bursts (0.4 MB: 5 to 13, the log keeping 2.4 MB a
    burst). With Python's allocator: 21-27 and 26-44 MiB, growing; with the give-back after
    bodies over 1 MiB only, 94-132 MiB for 0.4 MB bodies (docs/performance.md)."""
    with emulator() as (process, env):
        server = psutil.Process(process.pid)
        before, grown = server.memory_info().rss, []
        for _ in range(4):
            asyncio.run(_burst(env, parts, text))
            time.sleep(1.5)  # memory is given back 1 s after the last large request
            grown.append((server.memory_info().rss - before) / 2**20)
    assert max(grown) < most, grown  # MiB

"""No secret outlives ``quickstart record`` or ``quickstart run`` (issue 23).

Each test starts the command as a user does (a real process, a real kernel, the real
recording proxy in front of an upstream emulator on 127.0.0.1) with ``TMPDIR`` and
``JUPYTER_RUNTIME_DIR`` in a fresh folder, waits until the notebook's last cell writes a
marker (the kernel is running; for record, the proxy has served a TLS stream and written its
cassette), then stops the command:

- SIGKILL: nothing can clean up, so nothing secret may be on disk while it runs: no
  private key, no kernel connection file with its HMAC key, not the API key;
- SIGTERM, SIGHUP and SIGINT (Ctrl-C): the command stops as Ctrl-C stops it (exit 130),
  shuts the kernel down and leaves its temporary folder empty.

And the runner's kernel connection file itself: in memory on Linux, else deleted before
the first cell runs; the pytest plugin's CA bundle for nbval deleted after the notebook.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from quickstart_cli._runner import execute_notebook
from quickstart_helpers.emulator import CassetteStore, Emulator
from tests.test_record import FAKE_KEY, STORY, scan_for_key, write_upstream
from tests.test_record_workflow import _user_notebook

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    folder = tmp_path_factory.mktemp("upstream")
    write_upstream(folder)
    with Emulator(store=CassetteStore([folder]), pacing="fast") as emulator:
        yield emulator


def secrets_under(folder: Path) -> list[str]:
    """What under ``folder`` is secret: PEM private keys, kernel connection files holding
    an HMAC key, files holding the API key."""
    found = [f"{path}: the API key" for path in scan_for_key(folder)]
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"PRIVATE KEY" in data:
            found.append(f"{path}: a private key")
        try:
            info = json.loads(data)
        except ValueError:
            continue
        if isinstance(info, dict) and info.get("key") and "signature_scheme" in info:
            found.append(f"{path}: a kernel connection file")
    return found


def write_notebook(path: Path, marker: Path, *, stream: bool) -> Path:
    """A notebook that (with ``stream``) streams a recorded story through the proxy, then
    writes ``marker`` ("<pid of the command> <pid of the kernel>") and waits forever."""
    cells = []
    if stream:
        cells.append(
            "%load_ext quickstart_helpers\n"
            "from google import genai\n\n"
            "client = genai.Client()\n"
            f'for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", '
            f"contents={STORY!r}):\n"
            '    print(chunk.text, end="")'
        )
    partial = marker.with_suffix(".partial")
    cells.append(
        "import os\nimport threading\n\n"
        f"with open({str(partial)!r}, 'w') as out:\n"
        "    out.write(f\"{os.environ['JPY_PARENT_PID']} {os.getpid()}\")\n"
        f"os.replace({str(partial)!r}, {str(marker)!r})\n"
        "threading.Event().wait()  # until the test stops the command"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


class Run:
    """``quickstart record`` (or ``run``) on a notebook, started in ``tmp_path``."""

    def __init__(self, tmp_path: Path, command: str, upstream: Emulator) -> None:
        self.tmp = tmp_path / "tmp"
        self.tmp.mkdir()
        self.marker = tmp_path / "marker"
        notebook = write_notebook(tmp_path / "mine.ipynb", self.marker, stream=command == "record")
        self.cassettes = tmp_path / "cassettes" / "mine"
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("QUICKSTART_") and name != "GOOGLE_API_KEY"
        }
        env.update(
            TMPDIR=str(self.tmp),
            JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
            GEMINI_API_KEY=FAKE_KEY,
            QUICKSTART_UPSTREAM_CA=str(upstream.certificate.cert_file),
        )
        args = ["--upstream", upstream.base_url] if command == "record" else ["--mode", "offline"]
        argv = ["-m", "quickstart_cli", command, str(notebook), *args]
        # Files, not pipes: a kernel left running after SIGKILL would hold a pipe open.
        self.stderr = tmp_path / "stderr.txt"
        with self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, *argv, "--no-progress", "--output", str(tmp_path / "out")],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.command_pid = self.kernel_pid = 0

    def wait_for_the_last_cell(self) -> None:
        """Wait until the notebook's last cell writes the marker; note both processes."""
        deadline = time.monotonic() + 180  # a guard against a hang, not a measure
        while not self.marker.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the command ended or hung before the last cell:\n{self.err()}")
            time.sleep(0.05)
        self.command_pid, self.kernel_pid = map(int, self.marker.read_text().split())

    def stop(self, signum: int) -> tuple[int, str]:
        """Send ``signum`` to the command's own process; return its exit code and stderr."""
        os.kill(self.command_pid, signum)
        return self.process.wait(timeout=120), self.err()

    def err(self) -> str:
        return self.stderr.read_text("utf-8", "replace")

    def end(self) -> None:
        """End what is left: the command, and a kernel whose command was killed."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        if self.kernel_pid and alive(self.kernel_pid):
            os.kill(self.kernel_pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("command", ["record", "run"])
def test_sigkill_leaves_no_secret_in_the_temporary_folder(
    tmp_path: Path, upstream: Emulator, command: str
) -> None:
    run = Run(tmp_path, command, upstream)
    try:
        run.wait_for_the_last_cell()
        if command == "record":  # the proxy (TLS) served the stream and recorded it
            assert len(list(run.cassettes.glob("*.json"))) == 1
        code, _ = run.stop(signal.SIGKILL)
    finally:
        run.end()
    assert code == -signal.SIGKILL
    assert secrets_under(tmp_path) == []
    # Left behind: only record's CA bundle, public certificates (no proxy certificate folder).
    left = [path.name for path in run.tmp.rglob("*") if path.is_file()]
    assert left == (["ca.pem"] if command == "record" else [])


@pytest.mark.parametrize(
    ("command", "signum"),
    [
        ("record", signal.SIGTERM),
        ("record", signal.SIGHUP),
        ("record", signal.SIGINT),
        ("run", signal.SIGTERM),
    ],
    ids=["record-SIGTERM", "record-SIGHUP", "record-SIGINT", "run-SIGTERM"],
)
def test_a_stopping_signal_shuts_the_kernel_down_and_empties_the_temporary_folder(
    tmp_path: Path, upstream: Emulator, command: str, signum: int
) -> None:
    run = Run(tmp_path, command, upstream)
    try:
        run.wait_for_the_last_cell()
        code, err = run.stop(signum)
    finally:
        run.end()
    assert code == 130, err
    assert f"quickstart {command}: interrupted" in err
    assert not alive(run.kernel_pid)
    assert list(run.tmp.iterdir()) == []
    assert secrets_under(tmp_path) == []
    if command == "record":
        assert len(list(run.cassettes.glob("*.json"))) == 1


CONNECTION_FILE = (
    "import os, sys\npath = sys.argv[sys.argv.index('-f') + 1]\nprint(path, os.path.exists(path))"
)


def connection_file_seen_by_the_first_cell(tmp_path: Path) -> tuple[str, bool]:
    """Execute a notebook whose cell prints the connection file the kernel was given, and
    whether it still exists."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CONNECTION_FILE)]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    out = tmp_path / "out"
    executed, result = execute_notebook(
        tmp_path / "nb.ipynb", out / "nb.ipynb", mode="offline", pacing="fast", output_root=out
    )
    assert result.ok, result.error
    path, exists = executed.cells[0].outputs[0]["text"].split()
    return path, exists == "True"


def test_on_linux_the_connection_file_is_in_memory(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path, exists = connection_file_seen_by_the_first_cell(tmp_path)
    assert path.startswith(f"/proc/{os.getpid()}/fd/")  # a memfd of this process
    assert not exists  # closed once the kernel answered
    assert list((tmp_path / "tmp").iterdir()) == []


def test_without_an_in_memory_file_the_connection_file_is_deleted_before_the_first_cell(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.delattr(os, "memfd_create")
    path, exists = connection_file_seen_by_the_first_cell(tmp_path)
    assert Path(path).parent == tmp_path / "tmp"  # where jupyter_client writes it
    assert not exists


def test_nbval_recording_deletes_its_ca_bundle(pytester, upstream, monkeypatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("QUICKSTART_UPSTREAM_CA", str(upstream.certificate.cert_file))
    for name in ("GOOGLE_API_KEY", "QUICKSTART_CASSETTES", "QUICKSTART_MODE"):
        monkeypatch.delenv(name, raising=False)
    tmp = pytester.path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    notebook = _user_notebook(pytester.path / "mine.ipynb")
    nb = nbformat.read(notebook, as_version=4)
    for count, cell in enumerate(nb.cells, 1):
        cell.execution_count = count  # as a top-to-bottom run stores it (outputs: --nbval-lax)
    nbformat.write(nb, notebook)
    result = pytester.runpytest_inprocess(
        "--nbval-lax",
        "--nbval-current-env",
        "mine.ipynb",
        "--gemini-record-mode=once",
        f"--gemini-upstream={upstream.base_url}",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=2)
    assert len(list((pytester.path / "cassettes" / "mine").glob("*.json"))) == 1
    assert list(tmp.glob("quickstart-nbval-*")) == []
    assert secrets_under(pytester.path) == []

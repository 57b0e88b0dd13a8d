"""Notebook 04's audio players in JupyterLab, in headless Chromium driven by Playwright.

JupyterLab runs as a real server on loopback (a random port, a token, its config, data,
runtime, settings and workspace folders in a temporary folder, so nothing reaches the
user's Jupyter set-up), started once with ``notebooks/`` as its root and once with the
folder above it, as learners start it. Chromium opens notebook 04 and checks every
player: the label above the ``<audio>`` element, the element's audio loads (metadata
read, a positive duration), and the full-file link, when there is one, answers 200 with
WAV bytes from the Jupyter server (requested with the page's cookies).

Two notebooks are opened:

- the stored one, ``notebooks/04_audio_streaming.ipynb`` of this repository (its players
  embed the preview and link no file: ``quickstart refresh`` wrote the audio elsewhere);
  the test checks the file is left as it was and nothing is added beside it;
- a copy executed in a Jupyter kernel from its own folder, as a learner runs it: its
  WAV files go to ``output/04_audio_streaming/`` next to it and each player links its file.

The browser is found by ``tests/_browser.py``; without one these tests are skipped with
a line saying how to enable them, and fail under ``CI=true``. Every request the page
makes beyond loopback is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from playwright.sync_api import Browser, Page, Route

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "04_audio_streaming.ipynb"
#: The files notebook 04 shows with ``wav_player``.
PLAYED = [f"audio_response_{i}.wav" for i in range(1, 6)]

#: Seconds JupyterLab may take to answer after it starts.
SERVER_START = 90
#: Milliseconds the page may take to show the players, and the players to load.
PAGE_TIMEOUT = 60_000
LOAD_TIMEOUT = 20_000

#: JupyterLab settings for the test: no autosave (the stored notebook is opened, never
#: written), every cell in the page (no windowing), no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab server.

    Attributes:
        url: Its base URL, ending in ``/``.
        token: The token that logs in.
        root: The folder it serves.
    """

    url: str
    token: str
    root: Path

    def tree_url(self, notebook: Path) -> str:
        """The page that opens ``notebook`` (a path under :attr:`root`), logging in."""
        relative = notebook.resolve().relative_to(self.root.resolve()).as_posix()
        return f"{self.url}lab/tree/{relative}?token={self.token}"


def _lab_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    folders = {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "settings",
        "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
        "IPYTHONDIR": "ipython",
    }
    for name, folder in folders.items():
        (home / folder).mkdir(parents=True, exist_ok=True)
        env[name] = str(home / folder)
    for plugin, values in LAB_SETTINGS.items():
        path = home / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), "utf-8")
    return env


def _wait_for_lab(process: subprocess.Popen[bytes], runtime: Path, token: str, log: Path) -> str:
    """Return the server's base URL once it answers; fail if it exits or takes too long."""
    deadline = time.monotonic() + SERVER_START
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        if url is None:
            for info in runtime.glob(f"jpserver-{process.pid}.json"):
                url = json.loads(info.read_text("utf-8"))["url"]
        if url is not None:
            request = urllib.request.Request(
                f"{url}api/status", headers={"Authorization": f"token {token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return url
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.25)
    pytest.fail(f"JupyterLab did not answer in {SERVER_START} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server (it shuts its kernels down), then anything left in its group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # kernels it may have left behind
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=10)


@pytest.fixture()
def start_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Start JupyterLab serving a folder; every server is stopped when the test ends."""
    started: list[subprocess.Popen[bytes]] = []

    def start(root: Path) -> Lab:
        home = tmp_path_factory.mktemp("jupyter")
        token = os.urandom(16).hex()
        log = home / "lab.log"
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            f"--IdentityProvider.token={token}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}",
            # The checkpoint JupyterLab makes when it opens a notebook goes here, not
            # into .ipynb_checkpoints/ beside the notebook.
            f"--FileCheckpoints.root_dir={home / 'checkpoints'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command,
                env=_lab_env(home),
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        url = _wait_for_lab(process, home / "runtime", token, log)
        return Lab(url=url, token=token, root=root)

    yield start
    for process in started:
        _stop(process)


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()

    def loopback_only(route: Route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()  # e.g. the Open-in-Colab badge

    context.route("**/*", loopback_only)
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT)
    yield page
    context.close()


@pytest.fixture(scope="module")
def executed_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Notebook 04 copied into ``<tmp>/checkout/notebooks/`` and executed in a Jupyter
    kernel started in that folder, with no output folder chosen: as in JupyterLab."""
    folder = tmp_path_factory.mktemp("checkout") / "notebooks"
    folder.mkdir()
    notebook = folder / NOTEBOOK
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, notebook)
    nb = nbformat.read(notebook, as_version=4)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("QUICKSTART_OUTPUT_ROOT", "QUICKSTART_NOTEBOOK_DIR", "QUICKSTART_ERROR_LOG")
    }
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute(env=env)
    nbformat.write(nb, notebook)
    return notebook


def players(page: Page, lab: Lab, notebook: Path) -> list[dict]:
    """Open ``notebook`` and return, for each ``<audio>`` in its outputs once its
    metadata loaded (or failed, or the time ran out): its state, label and link."""
    page.goto(lab.tree_url(notebook))
    page.wait_for_function(
        "n => document.querySelectorAll('.jp-OutputArea-output audio').length >= n",
        arg=len(PLAYED),
    )
    return page.evaluate(
        """async timeout => {
          const audios = [...document.querySelectorAll('.jp-OutputArea-output audio')];
          const loaded = a => a.readyState >= 1 || a.error ? Promise.resolve() :
            new Promise(resolve => {
              a.addEventListener('loadedmetadata', resolve, { once: true });
              a.addEventListener('error', resolve, { once: true });
            });
          await Promise.race([
            Promise.all(audios.map(loaded)),
            new Promise(resolve => setTimeout(resolve, timeout)),
          ]);
          return audios.map(a => {
            const box = a.parentElement;
            const label = box.querySelector('code');
            const link = box.querySelector('a');
            return {
              readyState: a.readyState,
              duration: a.duration,
              error: a.error ? a.error.code : null,
              label: label ? label.textContent : null,
              labelBottom: label ? label.getBoundingClientRect().bottom : null,
              labelHeight: label ? label.getBoundingClientRect().height : 0,
              audioTop: a.getBoundingClientRect().top,
              audioHeight: a.getBoundingClientRect().height,
              text: box.textContent,
              href: link ? link.href : null,
              linkText: link ? link.textContent : null,
            };
          });
        }""",
        LOAD_TIMEOUT,
    )


def check_players(found: list[dict]) -> None:
    """Each player plays its preview and has its label above it."""
    assert [p["label"] for p in found] == PLAYED
    for player in found:
        name = player["label"]
        assert player["error"] is None, f"{name}: media error {player['error']}"
        assert player["readyState"] >= 1, f"{name}: no metadata loaded"
        assert player["duration"] > 0, f"{name}: duration {player['duration']}"
        assert player["labelHeight"] > 0 and player["audioHeight"] > 0, player
        assert player["labelBottom"] <= player["audioTop"], f"{name}: label not above player"


ROOTS = ["notebooks", "repository root"]


def _root(kind: str, notebook: Path) -> Path:
    return notebook.parent if kind == "notebooks" else notebook.parent.parent


@pytest.mark.parametrize("root", ROOTS)
def test_stored_players_play(start_lab, page: Page, root: str) -> None:
    notebook = ROOT / "notebooks" / NOTEBOOK
    before = notebook.read_bytes()
    listing = sorted(p.name for p in notebook.parent.iterdir())
    lab = start_lab(_root(root, notebook))
    found = players(page, lab, notebook)
    check_players(found)
    for player in found:
        # The stored run wrote its audio outside the notebook's folder: no link, the name.
        assert player["href"] is None
        assert f"full file: {player['label']} in the output folder" in player["text"]
    assert notebook.read_bytes() == before, "opening the notebook changed it"
    assert sorted(p.name for p in notebook.parent.iterdir()) == listing, "files left behind"


@pytest.mark.parametrize("root", ROOTS)
def test_players_of_a_run_link_the_full_files(
    start_lab, page: Page, executed_copy: Path, root: str
) -> None:
    output = executed_copy.parent / "output" / "04_audio_streaming"
    lab = start_lab(_root(root, executed_copy))
    found = players(page, lab, executed_copy)
    check_players(found)
    for player in found:
        name = player["label"]
        assert player["linkText"] == name
        assert player["href"] is not None and player["href"].startswith(lab.url), player
        response = page.request.get(player["href"])
        assert response.status == 200, f"{name}: {response.status} from {player['href']}"
        assert "wav" in response.headers["content-type"], response.headers
        assert response.body() == (output / name).read_bytes()

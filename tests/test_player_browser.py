"""Notebook 04's audio players in JupyterLab, in headless Chromium driven by Playwright.

JupyterLab runs as a real server on loopback (a random port, a token, its config, data,
runtime, settings and workspace folders in a temporary folder, so nothing reaches the
user's Jupyter set-up), started once with a checkout's ``notebooks/`` as its root and
once with the folder above it, as learners start it. The two servers start at the same
time, are shared by the module's tests (one xdist worker), and start no kernels: the
players are outputs, nothing runs in the page. Chromium loads JupyterLab once per server
(loading the app is most of these tests' cost) at the first notebook's URL, opens the
second in the same page as the file browser does (JupyterLab's ``docmanager:open``
command, the app exposed as ``window.jupyterapp``), and checks every player of the
notebook shown: the label above the ``<audio>`` element, and the element's audio loads
with the whole file's duration (within 0.1 s: the embedded Ogg Opus is the whole reply).

Two notebooks are opened:

- the stored one, ``notebooks/04_audio_streaming.ipynb`` of this repository, copied byte
  for byte into ``notebooks/stored/`` of the checkout (``quickstart refresh`` wrote the
  audio elsewhere); the test checks the file is left as it was and nothing is added
  beside it;
- a copy executed in a Jupyter kernel from the checkout's ``notebooks/``, as a learner
  runs it: its WAV files go to ``output/04_audio_streaming/`` next to it, and each
  player's duration is compared with its file's. It executes in a thread while the stored
  players are checked (the notebook speaks its question at the pace of speech, twice).

The browser is found by ``tests/_browser.py``; without one these tests are skipped with
a line saying how to enable them, and fail under ``CI=true``. Every request the page
makes beyond loopback is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import psutil
import pytest
import soundfile
from nbclient import NotebookClient

from quickstart_helpers.audio import SPOKEN_QUESTION

if TYPE_CHECKING:  # Playwright is imported by the fixtures that start a browser
    from playwright.sync_api import Browser, BrowserContext, Page

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "04_audio_streaming.ipynb"
#: The two folders JupyterLab is started from: a checkout's notebooks/, and the checkout.
ROOTS = ["notebooks", "repository root"]
#: A kernel spec name that matches none: JupyterLab lists no kernel and starts none.
NO_KERNEL = "no-kernel-for-this-test"


#: The files notebook 04 shows with ``Player``.
PLAYED = [f"audio_response_{i}.wav" for i in range(1, 6)] + ["question.wav", "answer.wav"]

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

#: Server extensions installed beside JupyterLab that the players do not use, turned off:
#: each costs start-up time (jupyter_lsp looks for language servers, running npm).
SERVER_EXTENSIONS = {
    "jupyter_lsp": False,
    "jupyter_server_terminals": False,
    "notebook_shim": False,
}

#: JupyterLab's page options. No build check: by default each page load asks the server
#: whether JupyterLab needs a rebuild, which runs ``yarn config`` (node) on the server.
#: Without the two plugins that list nbconvert's export formats (the File > Save and
#: Export menu, the raw cell format form): the listing imports nbconvert in the server,
#: most of the server's time for the page. Nothing else of JupyterLab is turned off.
PAGE_CONFIG = {
    "buildCheck": False,
    "buildAvailable": False,
    "disabledExtensions": {
        "@jupyterlab/notebook-extension:export": True,
        "@jupyterlab/notebook-extension:update-raw-mimetype": True,
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
        # `reset`: a fresh workspace, not the one the previous test left open.
        return f"{self.url}lab/tree/{relative}?reset&token={self.token}"


def _lab_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Only the environment's own commands: no Node.js, as for a learner who installed
    # JupyterLab with pip. (With node on PATH, JupyterLab runs `yarn config` at start-up to
    # read an npm registry setting it only uses to build extensions.)
    env["PATH"] = str(Path(sys.executable).parent)
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
    # Server and page configuration in the test's own config folder (read first).
    (home / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": SERVER_EXTENSIONS}}), "utf-8"
    )
    (home / "config" / "labconfig").mkdir(exist_ok=True)
    (home / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps(PAGE_CONFIG), "utf-8"
    )
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
                try:
                    url = json.loads(info.read_text("utf-8"))["url"]
                except (json.JSONDecodeError, KeyError):
                    pass  # the server is still writing it
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
        time.sleep(0.1)
    pytest.fail(f"JupyterLab did not answer in {SERVER_START} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and anything it started (it starts no kernels, but be sure)."""
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
    except psutil.NoSuchProcess:
        tree = []
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(tree, timeout=3)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    process.wait(timeout=10)


def _start_lab(root: Path, home: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start JupyterLab serving ``root``; return the process, its token and its log."""
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
        # `window.jupyterapp`, to open the second notebook in the loaded app.
        "--LabApp.expose_app_in_browser=True",
        # No kernel spec, so opening a notebook starts no kernel (the page only shows
        # stored outputs); JupyterLab says "No Kernel" in its status bar.
        f"--KernelSpecManager.allowed_kernelspecs={NO_KERNEL}",
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
    return process, token, log


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as a checkout: ``notebooks/`` and the folder above it."""
    folder = tmp_path_factory.mktemp("checkout") / "notebooks"
    (folder / "stored").mkdir(parents=True)
    return folder


@pytest.fixture(scope="module")
def execution(checkout: Path) -> Iterator[Future[None]]:
    """Notebook 04 executing into the checkout (:func:`_execute_copy`) in a thread, from
    the module's first test on; :func:`executed_copy` waits for it."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(_execute_copy, checkout)


@pytest.fixture(scope="module")
def labs(
    checkout: Path, execution: Future[None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Lab]]:
    """JupyterLab started from the checkout's ``notebooks/`` and from the folder above it,
    both at once (and notebook 04 executing meanwhile); keyed by :data:`ROOTS`."""
    started = {}
    try:
        for kind in ROOTS:
            root = checkout if kind == "notebooks" else checkout.parent
            home = tmp_path_factory.mktemp("jupyter")
            started[kind] = (root, home, *_start_lab(root, home))
        yield {
            kind: Lab(
                url=_wait_for_lab(process, home / "runtime", token, log), token=token, root=root
            )
            for kind, (root, home, process, token, log) in started.items()
        }
    finally:
        for _, _, process, _, _ in started.values():
            _stop(process)


@pytest.fixture(scope="module")
def stored(checkout: Path) -> Path:
    """The repository's notebook 04, byte for byte, in ``notebooks/stored/``."""
    notebook = checkout / "stored" / NOTEBOOK
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, notebook)
    return notebook


@pytest.fixture(scope="module")
def context(browser: Browser) -> Iterator[BrowserContext]:
    """One browser context for the module; every request beyond loopback is refused.

    Its proxy is a loopback port bound and never listened on (held for the module), and
    only 127.0.0.1 bypasses it (Chromium never proxies loopback): a request elsewhere,
    e.g. the Open-in-Colab badge, fails to connect to the proxy. (Routing every request
    through Playwright to check its URL instead costs about a second of CPU.)
    """
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
        context = browser.new_context(
            proxy={"server": f"http://127.0.0.1:{port}", "bypass": "127.0.0.1"}
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def pages(context: BrowserContext) -> Iterator[dict[str, Page]]:
    """The JupyterLab page of each server, keyed by its URL: opened by the first test
    that needs it (:func:`players`), whichever runs first, and shared by the module's
    tests."""
    opened: dict[str, Page] = {}
    yield opened
    for page in opened.values():
        page.close()


@pytest.fixture(scope="module")
def executed_copy(checkout: Path, execution: Future[None]) -> Path:
    """Notebook 04 executed into the checkout's ``notebooks/`` (by ``execution``)."""
    execution.result()
    return checkout / NOTEBOOK


def _execute_copy(checkout: Path) -> None:
    """Copy notebook 04 into the checkout's ``notebooks/`` and execute it in a Jupyter
    kernel started in that folder, with no output folder chosen: as in JupyterLab."""
    notebook = checkout / NOTEBOOK
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, notebook)
    nb = nbformat.read(notebook, as_version=4)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("QUICKSTART_OUTPUT_ROOT", "QUICKSTART_NOTEBOOK_DIR", "QUICKSTART_ERROR_LOG")
    }
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(checkout)}}
    ).execute(env=env)
    nbformat.write(nb, notebook)


def players(
    context: BrowserContext, pages: dict[str, Page], lab: Lab, notebook: Path
) -> list[dict]:
    """Open ``notebook`` in ``lab`` and return, for each ``<audio>`` in its outputs once
    its metadata loaded (or failed, or the time ran out): its state, label and link.

    The first notebook opened on a server loads JupyterLab at the notebook's URL (the
    page is kept in ``pages``); later ones are opened in that page with JupyterLab's
    ``docmanager:open`` command, as the file browser does. Only the notebook opened, in
    the tab shown, is looked at.
    """
    path = notebook.resolve().relative_to(lab.root.resolve()).as_posix()
    page = pages.get(lab.url)
    if page is None:
        page = pages[lab.url] = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT)
        page.goto(lab.tree_url(notebook))
    else:
        page.evaluate(
            # (Returns nothing: Playwright would serialize the widget the command returns.)
            "path => { window.jupyterapp.commands.execute('docmanager:open', { path }); }",
            path,
        )
    # The notebook's element once JupyterLab shows it (not in a hidden tab) with its
    # players: queries go through it, so they see only that notebook's outputs.
    notebook_element = page.wait_for_function(
        """([path, n]) => {
          const app = window.jupyterapp;  // --LabApp.expose_app_in_browser
          const widget = app && [...app.shell.widgets('main')].find(
            w => w.context && w.context.path === path);
          return widget && widget.isVisible &&
            widget.node.querySelectorAll('.jp-OutputArea-output audio').length >= n &&
            widget.node;
        }""",
        arg=[path, len(PLAYED)],
    )
    return page.evaluate(
        """async ([notebook, timeout]) => {
          const audios = [...notebook.querySelectorAll('.jp-OutputArea-output audio')];
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
        [notebook_element, LOAD_TIMEOUT],
    )


def check_players(found: list[dict]) -> None:
    """Each player plays its whole file (the duration its label gives, within 0.1 s) and
    has its label above it."""
    assert [p["label"] for p in found] == PLAYED
    for player in found:
        name = player["label"]
        assert player["error"] is None, f"{name}: media error {player['error']}"
        assert player["readyState"] >= 1, f"{name}: no metadata loaded"
        labelled = float(player["text"].split(": ")[1].removesuffix(" s"))
        assert abs(player["duration"] - labelled) <= 0.1, f"{name}: {player['duration']} s"
        assert player["labelHeight"] > 0 and player["audioHeight"] > 0, player
        assert player["labelBottom"] <= player["audioTop"], f"{name}: label not above player"


@pytest.mark.parametrize("root", ROOTS)
def test_stored_players_play(
    labs: dict[str, Lab],
    context: BrowserContext,
    pages: dict[str, Page],
    stored: Path,
    root: str,
) -> None:
    before = stored.read_bytes()
    listing = sorted(p.name for p in stored.parent.iterdir())
    found = players(context, pages, labs[root], stored)
    check_players(found)
    assert stored.read_bytes() == before, "opening the notebook changed it"
    assert sorted(p.name for p in stored.parent.iterdir()) == listing, "files left behind"


@pytest.mark.parametrize("root", ROOTS)
def test_players_of_a_run_play_their_whole_files(
    labs: dict[str, Lab],
    context: BrowserContext,
    pages: dict[str, Page],
    executed_copy: Path,
    root: str,
) -> None:
    output = executed_copy.parent / "output" / "04_audio_streaming"
    found = players(context, pages, labs[root], executed_copy)
    check_players(found)
    for player in found:
        name = player["label"]
        path = output / name if (output / name).exists() else SPOKEN_QUESTION
        assert abs(player["duration"] - soundfile.info(path).duration) <= 0.1, name
        assert player["href"] is None  # the whole file is in the page, nothing to fetch

"""A pytest plugin: your own tests and notebooks against recorded Gemini API answers.

Registered through the ``pytest11`` entry point, so installing the package is enough.
It does nothing until a test asks for its fixtures or an option is given, and loads
neither the SDK nor the emulator before that.

Fixtures:

- ``gemini_emulator`` (session): the emulator in record mode, one per session.
- ``gemini_cassette_dir``: the test's cassette folder, by default
  ``<test module's folder>/cassettes/<module name>/<test name>/``;
  ``@pytest.mark.gemini_cassette("name")`` uses ``.../<module name>/name/`` instead
  (tests that share a name share their cassettes), ``folder=PATH`` any folder
  (relative to the test module's folder).
- ``gemini_client``: a ``genai.Client`` on the emulator, replaying and (by the record
  mode) recording in the test's folder.

Options: ``--gemini-record-mode=none|once|new_episodes|all`` (default
``$QUICKSTART_RECORD_MODE``, else ``none``: replay only, so CI needs no key) and
``--gemini-upstream=URL`` (default ``$QUICKSTART_UPSTREAM``, else the live API).
Recording needs ``GEMINI_API_KEY``.

Notebooks run by nbval (``pytest --nbval NOTEBOOK``) replay from the notebook's own
folder ``<its folder>/cassettes/<notebook name>/`` when it exists: the kernel gets it
through ``QUICKSTART_CASSETTES``. With a record mode other than ``none`` the kernel's
clients go through a recording proxy writing there.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quickstart_helpers import settings

__all__ = ["gemini_cassette_dir", "gemini_client", "gemini_emulator"]

#: The key sent when nothing is recorded (the emulator needs some key).
_PLACEHOLDER_KEY = "offline-emulator"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gemini", "Gemini API cassettes (quickstart_helpers)")
    group.addoption(
        "--gemini-record-mode",
        choices=list(settings.RECORD_MODES),
        default=None,
        help="none: replay only (default); once: record a test's cassettes when its folder "
        "has none; new_episodes: record what is not recorded; all: record everything again",
    )
    group.addoption(
        "--gemini-upstream",
        default=None,
        help="server to record (default: $QUICKSTART_UPSTREAM, else the live Gemini API)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gemini_cassette(name=None, *, folder=None): the cassette folder of a test using "
        "gemini_client (a name under cassettes/<module>/, or any folder)",
    )


def _record_mode(config: pytest.Config) -> str:
    return config.getoption("--gemini-record-mode") or settings.record_mode()


def _upstream(config: pytest.Config) -> str:
    return (config.getoption("--gemini-upstream") or settings.upstream()).rstrip("/")


def _api_key(mode: str) -> str:
    from quickstart_helpers.env import load_api_key

    if mode == "none":
        return _PLACEHOLDER_KEY
    key = load_api_key()
    if not key:
        raise pytest.UsageError(
            f"--gemini-record-mode={mode} records from the live API and needs GEMINI_API_KEY; "
            "without a key use --gemini-record-mode=none (replay only)."
        )
    return key


@pytest.fixture(scope="session")
def gemini_emulator(pytestconfig: pytest.Config) -> Iterator[Any]:
    """The Gemini API emulator for this session, fast pacing (record mode per test)."""
    from quickstart_helpers.emulator import CassetteStore, Emulator

    emulator = Emulator(store=CassetteStore([]), pacing="fast").start()
    try:
        yield emulator
    finally:
        emulator.stop()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "test"


@pytest.fixture
def gemini_cassette_dir(request: pytest.FixtureRequest) -> Path:
    """The test's cassette folder (see the module docstring); it may not exist yet."""
    module = Path(str(request.node.path))
    root = module.parent / "cassettes" / module.stem
    marker = request.node.get_closest_marker("gemini_cassette")
    if marker is not None:
        folder = marker.kwargs.get("folder")
        if folder is not None:
            return (module.parent / folder).resolve()
        name = marker.kwargs.get("name") or (marker.args[0] if marker.args else None)
        if name:
            return root / _safe(str(name))
    return root / _safe(request.node.name)


@pytest.fixture
def gemini_client(
    gemini_emulator: Any, gemini_cassette_dir: Path, pytestconfig: pytest.Config
) -> Iterator[Any]:
    """A ``genai.Client`` replaying (and recording, by the record mode) the test's cassettes."""
    from google import genai

    from quickstart_helpers.emulator import CassetteStore, Recorder, upstream_ssl_context

    mode = _record_mode(pytestconfig)
    key = _api_key(mode)
    ca = settings.upstream_ca()
    gemini_emulator.store = CassetteStore([gemini_cassette_dir])
    gemini_emulator.recorder = Recorder(
        gemini_cassette_dir,
        mode,  # type: ignore[arg-type]
        _upstream(pytestconfig),
        upstream_ssl_context(ca) if ca else None,
    )
    client = genai.Client(api_key=key, http_options=gemini_emulator.http_options())
    try:
        yield client
    finally:
        client.close()
        gemini_emulator.recorder = None


# -- nbval ------------------------------------------------------------------------------------

_saved_env: dict[str, str | None] = {}
_proxies: list[Any] = []
#: The kernel's CA bundle folder, public (see ``recording_kernel_env``): deleted with the proxy.
_bundles: list[tempfile.TemporaryDirectory[str]] = []


def _is_notebook_cell(item: pytest.Item) -> bool:
    return type(item.parent).__name__ == "IPyNbFile"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a notebook's kernel starts, give it the notebook's cassette folder."""
    if not _is_notebook_cell(item) or _saved_env:
        return
    notebook = Path(str(item.parent.path))  # type: ignore[union-attr]
    folder = notebook.parent / "cassettes" / notebook.stem
    mode = item.config.getoption("--gemini-record-mode")
    if mode is None and not folder.is_dir():
        return  # not ours: nothing asked for, nothing recorded
    env: dict[str, str] = {}
    listed = [str(p) for p in settings.extra_cassette_dirs()]
    env["QUICKSTART_CASSETTES"] = os.pathsep.join([*listed, str(folder.resolve())])
    if mode not in (None, "none"):
        from quickstart_helpers.emulator import recording_emulator

        from ._kernel import recording_kernel_env

        key = _api_key(mode)
        proxy = recording_emulator(
            folder, mode=mode, upstream=_upstream(item.config), pacing="fast", shared=False
        )
        _proxies.append(proxy)
        _bundles.append(tempfile.TemporaryDirectory(prefix="quickstart-nbval-"))
        bundle = Path(_bundles[-1].name) / "ca.pem"
        env.update(recording_kernel_env(proxy.base_url, proxy.certificate.ca_pem, key, bundle))
    for name, value in env.items():
        _saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After a notebook's last cell, put the environment back and stop its proxy."""
    if not _is_notebook_cell(item) or not _saved_env:
        return
    if nextitem is not None and nextitem.parent is item.parent:
        return
    for name, value in _saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved_env.clear()
    while _proxies:
        _proxies.pop().stop()
    while _bundles:
        _bundles.pop().cleanup()

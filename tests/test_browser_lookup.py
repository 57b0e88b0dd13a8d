"""Unit tests of tests/_browser.py: the order in which the browser tests look for Chromium,
and skip versus fail when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import _browser
from ._browser import SYSTEM_BROWSERS, Chromium, NoBrowser, chromium_or_skip, find_chromium

BUNDLED = "/home/u/.cache/ms-playwright/chromium-1/chrome-linux/chrome"


class Machine:
    """A fake machine: which files are executables, what is on PATH, what install does."""

    def __init__(self, executables=(), on_path=None, install_result=None, install_adds=()):
        self.executables = set(executables)
        self.on_path = dict(on_path or {})
        self.install_result = install_result
        self.install_adds = set(install_adds)
        self.installs = 0
        self.looked_up: list[str] = []

    def which(self, name: str) -> str | None:
        self.looked_up.append(name)
        return self.on_path.get(name)

    def install(self) -> str | None:
        self.installs += 1
        self.executables |= self.install_adds
        return self.install_result

    def find(self, env=None) -> Chromium:
        return find_chromium(
            env=env or {},
            which=self.which,
            playwright_executable=lambda: BUNDLED,
            install=self.install,
            is_executable=self.executables.__contains__,
        )


def test_quickstart_chromium_comes_first() -> None:
    machine = Machine(executables={"/opt/my/chrome", BUNDLED}, on_path={"chromium": "/usr/bin/x"})
    found = machine.find({"QUICKSTART_CHROMIUM": "/opt/my/chrome"})
    assert found == Chromium("/opt/my/chrome", "QUICKSTART_CHROMIUM")
    assert machine.looked_up == [] and machine.installs == 0


def test_a_quickstart_chromium_that_is_not_executable_is_an_error_not_a_fallback() -> None:
    machine = Machine(on_path={"chromium": "/usr/bin/chromium"})
    with pytest.raises(NoBrowser, match="QUICKSTART_CHROMIUM='/nope' is not an executable") as err:
        machine.find({"QUICKSTART_CHROMIUM": "/nope"})
    assert err.value.misconfigured
    assert machine.looked_up == []


def test_system_browsers_are_tried_in_order() -> None:
    machine = Machine(
        on_path={"google-chrome": "/usr/bin/google-chrome", "chromium-browser": "/snap/cb"},
        executables={BUNDLED},
    )
    assert machine.find() == Chromium("/snap/cb", "system")
    assert machine.looked_up == ["/usr/bin/chromium", "chromium", "chromium-browser"]
    assert SYSTEM_BROWSERS[:5] == (
        "/usr/bin/chromium",
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    )
    debian = Machine(on_path={"/usr/bin/chromium": "/usr/bin/chromium", "chromium": "/x"})
    assert debian.find() == Chromium("/usr/bin/chromium", "system")


def test_playwrights_browser_when_no_system_browser_without_reinstalling() -> None:
    machine = Machine(executables={BUNDLED})
    assert machine.find() == Chromium(BUNDLED, "playwright")
    assert machine.looked_up == list(SYSTEM_BROWSERS)
    assert machine.installs == 0


def test_playwrights_browser_is_installed_when_missing() -> None:
    machine = Machine(install_adds={BUNDLED})
    assert machine.find() == Chromium(BUNDLED, "playwright")
    assert machine.installs == 1


def test_no_browser_and_no_network_says_how_to_enable_in_one_line() -> None:
    machine = Machine(install_result="`playwright install chromium` failed: getaddrinfo ENOTFOUND")
    with pytest.raises(NoBrowser) as err:
        machine.find()
    message = str(err.value)
    assert not err.value.misconfigured
    assert "\n" not in message
    assert "getaddrinfo ENOTFOUND" in message
    assert "apt-get install chromium" in message
    assert "playwright install chromium" in message
    assert "QUICKSTART_CHROMIUM" in message
    assert machine.installs == 1


def test_an_install_that_reports_success_but_leaves_no_browser() -> None:
    with pytest.raises(NoBrowser, match=f"left no browser at {BUNDLED}"):
        Machine().find()


NOWHERE = {"which": lambda name: None, "install": lambda: "no network"}


@pytest.mark.parametrize("ci", ["", "false", "0"])
def test_outside_ci_a_missing_browser_skips(ci: str) -> None:
    with pytest.raises(pytest.skip.Exception, match="To enable them, install Chromium"):
        chromium_or_skip(lambda: "/nowhere/chrome", env={"CI": ci}, **NOWHERE)


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_under_ci_a_missing_browser_fails(ci: str) -> None:
    with pytest.raises(pytest.fail.Exception, match="Browser tests need Chromium"):
        chromium_or_skip(lambda: "/nowhere/chrome", env={"CI": ci}, **NOWHERE)


def test_a_misconfigured_quickstart_chromium_fails_also_outside_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="QUICKSTART_CHROMIUM='/nope'"):
        chromium_or_skip(lambda: "/nowhere/chrome", env={"QUICKSTART_CHROMIUM": "/nope"})


def test_install_failure_is_reported_not_raised(tmp_path: Path, monkeypatch) -> None:
    # A stand-in for `python -m playwright` that fails the way it does offline.
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'Downloading Chrome for Testing'\n"
        "echo 'Failed to install browsers' >&2\n"
        "echo 'Error: Download failure, code=1' >&2\n"
        "echo '    at ChildProcess.emit (node:events:514:20)' >&2\n"
        "echo 'Error: getaddrinfo EAI_AGAIN' >&2\n"
        "echo '  errno: -3001,' >&2\n"
        "echo '}' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(_browser.sys, "executable", str(fake))
    assert _browser.install_playwright_chromium() == (
        "`playwright install chromium` failed: Error: getaddrinfo EAI_AGAIN"
    )
    monkeypatch.setattr(_browser.sys, "executable", str(tmp_path / "missing"))
    assert "could not run" in _browser.install_playwright_chromium()


_NEEDS_BROWSER = """
import pytest
from tests._browser import chromium_or_skip

@pytest.fixture(scope="module")
def browser():
    return chromium_or_skip(
        lambda: "/nowhere/chrome", which=lambda name: None, install=lambda: "no network"
    )

def test_a(browser): pass
def test_b(browser): pass
"""


@pytest.mark.parametrize(("ci", "status"), [("", 0), ("true", 1)])
def test_pytest_reports_a_missing_browser_in_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, status: int
):
    """Through pytest with the project's options: one SKIPPED line, or a failure under CI."""
    root = Path(__file__).parent.parent
    pytester.makepyfile(test_needs_browser=_NEEDS_BROWSER)
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PYTHONPATH", str(root))  # the xdist worker imports tests._browser
    # The project's options, but one xdist worker (-n auto would start several for two
    # tests); the skip reasons still travel from the worker to the summary.
    result = pytester.runpytest_inprocess(
        "-c", root / "pyproject.toml", "--rootdir", pytester.path, "-p", "tests._browser", "-n", "1"
    )

    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == status, output
    skipped = [line for line in result.outlines if line.startswith("SKIPPED")]
    if status == 0:
        assert skipped == [
            "SKIPPED 2 test(s): Browser tests need Chromium: none found and no network. To enable "
            "them, install Chromium (apt-get install chromium), or run `python3 -m uv run "
            "playwright install chromium` with network access, or set QUICKSTART_CHROMIUM to a "
            "Chromium or Chrome binary."
        ], output
    else:
        assert not skipped
        assert "Browser tests need Chromium" in output

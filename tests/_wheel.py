"""The built wheel, installed in a fresh environment outside the checkout, once per pytest run.

nbval runs the repository's notebooks with it (each notebook alone in a folder of its own,
see conftest.py), and ``tests/test_install.py`` checks what it carries: each notebook is
executed once, in the environment a user who installs the package gets.

The first pytest process builds it in a background thread (:class:`Builder`), while the
xdist workers start; every process of the run finds it through :data:`FOLDER_ENV` and waits
for it with :func:`wait`. A zygote of the fresh environment's Python (``tests/_zygote.py``)
forks its kernels and commands.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import _zygote

#: Environment variable holding the folder of the run's wheel environment.
FOLDER_ENV = "PYTEST_QUICKSTART_WHEEL"

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WheelEnv:
    """The built wheel and the fresh environment it is installed in.

    Attributes:
        wheel: The wheel file.
        venv: The virtual environment's folder.
        python: Its Python.
        env: Environment for its processes: the suite's own settings and the checkout's
            Python left out, its ``bin`` first on ``PATH``, its zygote named.
        folder: A folder outside the checkout for its processes to start in.
    """

    wheel: Path
    venv: Path
    python: str
    env: dict[str, str]
    folder: Path


def clean_env(venv: Path) -> dict[str, str]:
    """This process's environment without the settings and Python of the suite and checkout
    (``QUICKSTART_*``, keys, ``PYTHON*``, ``VIRTUAL_ENV``, ``UV*``, the suite's kernel
    zygote), with ``venv``'s ``bin`` first on ``PATH``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUICKSTART_", "GEMINI_", "GOOGLE_", "PYTHON", "VIRTUAL_ENV", "UV"))
        and k not in ("JUPYTER_PATH", _zygote.SOCKET_ENV, FOLDER_ENV)
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def needed(args: list[str], invocation_dir: Path) -> bool:
    """Whether a run of ``args`` (pytest's, after ``testpaths``) reaches the notebooks or the
    wheel test."""
    wanted = [ROOT / "notebooks", ROOT / "tests" / "test_install.py"]
    for arg in args:
        path = (invocation_dir / arg.split("::", 1)[0]).resolve()
        for target in wanted:
            if target == path or path in target.parents or target in path.parents:
                return True
    return False


class Builder:
    """Builds the wheel environment in ``folder`` in a background thread; :meth:`stop`
    waits for it and stops its zygote. The outcome goes to ``folder/ready.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._zygote: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._build, name="wheel environment")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.ident is not None:
            self._thread.join()
        if self._zygote is not None:
            self._zygote.terminate()
            self._zygote.wait()

    def _build(self) -> None:
        try:
            ready = self._install()
        except Exception as exc:  # noqa: BLE001 - reported to every process that waits
            ready = {"error": f"{type(exc).__name__}: {exc}"}
        part = self.folder / "ready.json.part"
        part.write_text(json.dumps(ready), "utf-8")
        os.replace(part, self.folder / "ready.json")

    def _install(self) -> dict[str, str]:
        uv = os.environ.get("UV") or shutil.which("uv")
        if not uv:
            raise RuntimeError(
                "uv is needed to build the wheel: run the tests with `python3 -m uv run pytest`."
            )
        dist, venv = self.folder / "dist", self.folder / "venv"
        python = str(venv / "bin" / "python")
        _run([uv, "build", "--wheel", "--out-dir", str(dist), str(ROOT)])
        (wheel,) = dist.glob("*.whl")
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
        # No bytecode compiled at install (--no-config: not the project's tool.uv setting):
        # compiling the whole environment costs six times what the kernels import (they
        # write that bytecode once, in the zygote).
        _run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--no-config",
                "--python",
                python,
                str(wheel),
            ],
            env={k: v for k, v in os.environ.items() if k != "UV_COMPILE_BYTECODE"},
        )
        self._zygote, socket_path = _zygote.start(python, env=clean_env(venv))
        _zygote.warm(socket_path)  # compiles and imports while the workers run other tests
        return {"wheel": str(wheel), "venv": str(venv), "python": python, "socket": socket_path}


def _run(args: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def wait(timeout: float = 600) -> WheelEnv:
    """The run's wheel environment, once built (by the first pytest process).

    Raises:
        RuntimeError: No process of this run builds one, or its build failed (the
            message says why), or it took longer than ``timeout`` seconds.
    """
    folder = os.environ.get(FOLDER_ENV)
    if not folder:
        raise RuntimeError(f"no wheel environment in this run ({FOLDER_ENV} is not set)")
    ready = Path(folder) / "ready.json"
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the wheel environment took longer than {timeout:g} s")
        time.sleep(0.1)
    info = json.loads(ready.read_text("utf-8"))
    if "error" in info:
        raise RuntimeError(f"the wheel environment could not be built: {info['error']}")
    venv = Path(info["venv"])
    work = Path(folder) / "work"
    work.mkdir(exist_ok=True)
    env = {**clean_env(venv), _zygote.SOCKET_ENV: info["socket"]}
    return WheelEnv(Path(info["wheel"]), venv, info["python"], env, work)

"""Settings: the only place that reads the ``QUICKSTART_*`` environment variables.

Every setting has one default, and an empty value counts as unset, so
``QUICKSTART_PACING=`` behaves exactly like no ``QUICKSTART_PACING`` at all.

- ``QUICKSTART_MODE``: ``auto``, ``live``, ``offline`` or ``record``. Default ``auto``.
- ``QUICKSTART_RECORD_MODE``: in record mode, ``none`` (replay only), ``once``,
  ``new_episodes`` or ``all`` (see :data:`RECORD_MODES`). Default ``none``.
- ``QUICKSTART_UPSTREAM``: where record mode forwards what no cassette answers.
  Default :data:`DEFAULT_UPSTREAM` (the live API).
- ``QUICKSTART_UPSTREAM_CA``: a PEM file of certificates to trust for the upstream
  (for a local test server). Default: the system's certificates.
- ``QUICKSTART_PACING``: offline replay, ``realtime`` or ``fast``. Default ``fast`` when
  ``CI`` is set, else ``realtime``.
- ``QUICKSTART_CASSETTES``: extra cassette folders (``os.pathsep``-separated), searched
  after the shipped ones. Default: none.
- ``QUICKSTART_OUTPUT_ROOT``: where notebooks write their files. Default: in a Jupyter
  kernel, ``output/`` next to the notebook; else a source checkout's ``build/run``, else
  ``./build/run`` (see :func:`quickstart_helpers.paths.output_dir`).
- ``QUICKSTART_NOTEBOOK_DIR``: folder of the executed notebook copy (``quickstart run``
  sets it). Default: the current folder.
- ``QUICKSTART_ERROR_LOG``: the file where handled API errors are recorded (``quickstart
  run`` sets it per notebook). Default: none.
- ``QUICKSTART_JOBS``: how many notebooks ``quickstart run`` and ``quickstart refresh``
  execute at once, each in its own kernel. Default: four per CPU this process may use
  (see :func:`jobs`).
- ``QUICKSTART_TEXT_MODEL``, ``QUICKSTART_IMAGE_MODEL``, ``QUICKSTART_LIVE_MODEL``: the
  models of the text/chat, text-and-image and Live API examples. Defaults:
  :data:`DEFAULT_TEXT_MODEL`, :data:`DEFAULT_IMAGE_MODEL`, :data:`DEFAULT_LIVE_MODEL`.
  The Interactions API and thinking examples name their Gemini 3 models with the
  constants :data:`INTERACTIONS_MODEL`, :data:`INTERACTIONS_IMAGE_MODEL` and
  :data:`THINKING_MODEL` (their cassettes are recorded with them).

Functions here read the environment each time they are called (a test or a notebook
may change it), and raise ``ValueError`` naming the variable for a value that is not
allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, cast

__all__ = [
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_LIVE_MODEL",
    "DEFAULT_TEXT_MODEL",
    "ERROR_LOG_ENV",
    "INTERACTIONS_IMAGE_MODEL",
    "INTERACTIONS_MODEL",
    "JOBS_PER_CPU",
    "MODES",
    "DEFAULT_UPSTREAM",
    "PACINGS",
    "RECORD_MODES",
    "THINKING_MODEL",
    "Mode",
    "Pacing",
    "error_log",
    "RecordMode",
    "extra_cassette_dirs",
    "get",
    "image_model",
    "jobs",
    "live_model",
    "mode",
    "notebook_dir",
    "output_root",
    "pacing",
    "record_mode",
    "text_model",
    "upstream",
    "upstream_ca",
]

Mode = Literal["auto", "live", "offline", "record"]
Pacing = Literal["realtime", "fast"]
RecordMode = Literal["none", "once", "new_episodes", "all"]

#: The accepted values of ``QUICKSTART_MODE`` and of ``make_client(mode=...)``.
MODES: tuple[str, ...] = ("auto", "live", "offline", "record")
#: Record modes, named as in vcrpy and pytest-recording: ``none`` replays only (an
#: unmatched request is an error); ``once`` records into a cassette folder only while
#: it holds no cassette; ``new_episodes`` records what no cassette answers and replays
#: the rest; ``all`` records everything again.
RECORD_MODES: tuple[str, ...] = ("none", "once", "new_episodes", "all")
#: Where record mode forwards requests by default: the live Gemini API.
DEFAULT_UPSTREAM = "https://generativelanguage.googleapis.com"
#: The accepted values of ``QUICKSTART_PACING`` and of ``--pacing``.
PACINGS: tuple[str, ...] = ("realtime", "fast")

#: Default notebooks run at once per CPU (``QUICKSTART_JOBS``, ``quickstart run --jobs``).
JOBS_PER_CPU = 4

#: Environment variable naming the file of handled API errors (see :func:`error_log`).
ERROR_LOG_ENV = "QUICKSTART_ERROR_LOG"

#: Model of the text and chat notebooks (and of ``quickstart serve``).
DEFAULT_TEXT_MODEL = "gemini-3.8-flash"
#: Model of the interleaved text-and-image notebook.
DEFAULT_IMAGE_MODEL = "gemini-3.1-flash-lite-image"
#: Model of the Live API (audio) notebook.
DEFAULT_LIVE_MODEL = "gemini-3.1-flash-live-preview"
#: Model of the Interactions API examples (notebook 06, ``quickstart serve --api
#: interactions``) and their cassettes: the current text model.
INTERACTIONS_MODEL = DEFAULT_TEXT_MODEL
#: Image model of the Interactions API's text-and-image example (notebook 06).
INTERACTIONS_IMAGE_MODEL = DEFAULT_IMAGE_MODEL
#: Model of the thinking examples (notebook 01's last section): ``thinking_level``
#: needs a Gemini 3 model.
THINKING_MODEL = INTERACTIONS_MODEL


def get(name: str) -> str | None:
    """Return the stripped value of environment variable ``name``, or None if unset or empty."""
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = get(name)
    if value is None:
        return default
    if value not in allowed:
        raise ValueError(
            f"{name}={value!r} is not allowed; use one of {', '.join(allowed)} (or leave it unset)."
        )
    return value


def mode() -> Mode:
    """Return ``$QUICKSTART_MODE`` (``auto``, ``live``, ``offline``, ``record``); default ``auto``.

    Raises:
        ValueError: The variable holds another value.
    """
    return cast(Mode, _choice("QUICKSTART_MODE", MODES, "auto"))


def pacing() -> Pacing:
    """Return ``$QUICKSTART_PACING``; default ``fast`` when ``$CI`` is set, else ``realtime``.

    Raises:
        ValueError: The variable holds a value other than ``realtime`` or ``fast``.
    """
    default = "fast" if get("CI") else "realtime"
    return cast(Pacing, _choice("QUICKSTART_PACING", PACINGS, default))


def record_mode() -> RecordMode:
    """Return ``$QUICKSTART_RECORD_MODE`` (one of :data:`RECORD_MODES`); default ``none``.

    Raises:
        ValueError: The variable holds another value.
    """
    return cast(RecordMode, _choice("QUICKSTART_RECORD_MODE", RECORD_MODES, "none"))


def upstream() -> str:
    """Return ``$QUICKSTART_UPSTREAM`` without a trailing ``/``, else :data:`DEFAULT_UPSTREAM`.

    Raises:
        ValueError: The value is not an ``http://`` or ``https://`` URL.
    """
    value = get("QUICKSTART_UPSTREAM") or DEFAULT_UPSTREAM
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"QUICKSTART_UPSTREAM={value!r} is not an http(s):// URL.")
    return value.rstrip("/")


def upstream_ca() -> Path | None:
    """Return ``$QUICKSTART_UPSTREAM_CA`` (a PEM file to trust for the upstream), or None."""
    value = get("QUICKSTART_UPSTREAM_CA")
    return Path(value).expanduser() if value else None


def extra_cassette_dirs() -> list[Path]:
    """Return the folders listed in ``$QUICKSTART_CASSETTES`` (``os.pathsep``-separated).

    They are searched after the cassettes shipped with the package. Empty entries are
    ignored; an empty or unset variable gives an empty list.
    """
    value = get("QUICKSTART_CASSETTES")
    if value is None:
        return []
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def output_root() -> Path | None:
    """Return ``$QUICKSTART_OUTPUT_ROOT`` as a path, or None when unset."""
    value = get("QUICKSTART_OUTPUT_ROOT")
    return Path(value) if value else None


def notebook_dir() -> Path | None:
    """Return ``$QUICKSTART_NOTEBOOK_DIR`` (the executed notebook's folder), or None."""
    value = get("QUICKSTART_NOTEBOOK_DIR")
    return Path(value) if value else None


def error_log() -> Path | None:
    """Return ``$QUICKSTART_ERROR_LOG``: the file where handled API errors are recorded.

    ``quickstart run`` sets it for each notebook's kernel; None when unset.
    """
    value = get(ERROR_LOG_ENV)
    return Path(value) if value else None


def jobs() -> int:
    """Return ``$QUICKSTART_JOBS``, else :data:`JOBS_PER_CPU` per CPU this process may use.

    More notebooks than CPUs run at once because a notebook spends much of its time
    waiting (for its kernel, for replayed delays, for retries' backoff): on a busy 2-CPU
    machine the eight notebooks took 11-13 s at 8 at once, 13-14 s at 4 and 15-17 s at 2.

    Raises:
        ValueError: The variable is not a whole number of at least 1.
    """
    value = get("QUICKSTART_JOBS")
    if value is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
        return JOBS_PER_CPU * max(1, cpus)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"QUICKSTART_JOBS={value!r} is not allowed; use a whole number >= 1.")
    return int(value)


def text_model() -> str:
    """Return ``$QUICKSTART_TEXT_MODEL``, else :data:`DEFAULT_TEXT_MODEL`."""
    return get("QUICKSTART_TEXT_MODEL") or DEFAULT_TEXT_MODEL


def image_model() -> str:
    """Return ``$QUICKSTART_IMAGE_MODEL``, else :data:`DEFAULT_IMAGE_MODEL`."""
    return get("QUICKSTART_IMAGE_MODEL") or DEFAULT_IMAGE_MODEL


def live_model() -> str:
    """Return ``$QUICKSTART_LIVE_MODEL``, else :data:`DEFAULT_LIVE_MODEL`."""
    return get("QUICKSTART_LIVE_MODEL") or DEFAULT_LIVE_MODEL

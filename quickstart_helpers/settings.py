"""Settings: the only reader of ``QUICKSTART_*`` variables. One default each; empty means unset;
read at each call; a value not allowed raises ``ValueError`` naming the variable.

``QUICKSTART_MODE`` (``auto``: live with a key, else offline; ``live``; ``offline``; ``record``),
``QUICKSTART_RECORD_MODE`` (:data:`RECORD_MODES`, default ``none``), ``QUICKSTART_UPSTREAM``
(what record mode records, default the live API) and ``QUICKSTART_UPSTREAM_CA`` (a PEM file to
trust for it), ``QUICKSTART_PACING`` (``realtime``, or ``fast`` when ``CI`` is set),
``QUICKSTART_CASSETTES`` (extra cassette folders, ``os.pathsep``-separated, after the shipped
ones), ``QUICKSTART_OUTPUT_ROOT`` (where notebooks write files), ``QUICKSTART_NOTEBOOK_DIR``
and ``QUICKSTART_ERROR_LOG`` (set by ``quickstart run`` for its kernels), ``QUICKSTART_JOBS``
(notebooks run at once, default four per CPU), ``QUICKSTART_TEXT_MODEL`` (the web chat's).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, cast

Mode = Literal["auto", "live", "offline", "record"]
Pacing = Literal["realtime", "fast"]
RecordMode = Literal["none", "once", "new_episodes", "all"]

MODES: tuple[str, ...] = ("auto", "live", "offline", "record")
#: Record modes, named as in vcrpy and pytest-recording: ``none`` replays only (an
#: unmatched request is an error); ``once`` records into a cassette folder only while
#: it holds no cassette; ``new_episodes`` records what no cassette answers and replays
#: the rest; ``all`` records everything again.
RECORD_MODES: tuple[str, ...] = ("none", "once", "new_episodes", "all")
PACINGS: tuple[str, ...] = ("realtime", "fast")
DEFAULT_UPSTREAM = "https://generativelanguage.googleapis.com"
#: Notebooks run at once per CPU: a notebook spends much of its time waiting (its kernel,
#: replayed delays, backoff); on a busy 2-CPU machine eight took 11-13 s at 8 at once,
#: 13-14 s at 4 and 15-17 s at 2.
JOBS_PER_CPU = 4
ERROR_LOG_ENV = "QUICKSTART_ERROR_LOG"

#: The models the shipped recordings were made with (text and chat, images, Live API).
DEFAULT_TEXT_MODEL = "gemini-3.8-flash"
DEFAULT_IMAGE_MODEL = "gemini-3.1-flash-lite-image"
DEFAULT_LIVE_MODEL = "gemini-3.1-flash-live-preview"
#: The Interactions API's and the thinking examples' recordings (Gemini 3 models); the
#: authoring script names these constants in ``scripts/recordings/*.toml``.
INTERACTIONS_MODEL = THINKING_MODEL = DEFAULT_TEXT_MODEL
INTERACTIONS_IMAGE_MODEL = DEFAULT_IMAGE_MODEL


def get(name: str) -> str | None:
    """Return the stripped value of environment variable ``name``, or None if unset or empty."""
    value = (os.environ.get(name) or "").strip()
    return value or None


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = get(name)
    if value is not None and value not in allowed:
        raise ValueError(
            f"{name}={value!r} is not allowed; use one of {', '.join(allowed)} (or leave it unset)."
        )
    return value or default


def mode() -> Mode:
    """``$QUICKSTART_MODE``; default ``auto``."""
    return cast(Mode, _choice("QUICKSTART_MODE", MODES, "auto"))


def pacing() -> Pacing:
    """``$QUICKSTART_PACING``; default ``fast`` when ``$CI`` is set, else ``realtime``."""
    return cast(Pacing, _choice("QUICKSTART_PACING", PACINGS, "fast" if get("CI") else "realtime"))


def record_mode() -> RecordMode:
    """``$QUICKSTART_RECORD_MODE``; default ``none``."""
    return cast(RecordMode, _choice("QUICKSTART_RECORD_MODE", RECORD_MODES, "none"))


def upstream() -> str:
    """``$QUICKSTART_UPSTREAM`` without a trailing ``/``, else :data:`DEFAULT_UPSTREAM`."""
    value = get("QUICKSTART_UPSTREAM") or DEFAULT_UPSTREAM
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"QUICKSTART_UPSTREAM={value!r} is not an http(s):// URL.")
    return value.rstrip("/")


def _path(name: str) -> Path | None:
    value = get(name)
    return Path(value).expanduser() if value else None


def upstream_ca() -> Path | None:
    return _path("QUICKSTART_UPSTREAM_CA")


def output_root() -> Path | None:
    return _path("QUICKSTART_OUTPUT_ROOT")


def notebook_dir() -> Path | None:
    return _path("QUICKSTART_NOTEBOOK_DIR")


def error_log() -> Path | None:
    return _path(ERROR_LOG_ENV)


def extra_cassette_dirs() -> list[Path]:
    """The folders listed in ``$QUICKSTART_CASSETTES``; empty entries are ignored."""
    value = get("QUICKSTART_CASSETTES") or ""
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def jobs() -> int:
    """``$QUICKSTART_JOBS``, else :data:`JOBS_PER_CPU` per CPU this process may use."""
    value = get("QUICKSTART_JOBS")
    if value is None:  # the CPUs this process may use (sched_getaffinity: Linux only)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return JOBS_PER_CPU * max(1, cpus or 1)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"QUICKSTART_JOBS={value!r} is not allowed; use a whole number >= 1.")
    return int(value)


def text_model() -> str:
    """``$QUICKSTART_TEXT_MODEL``, else :data:`DEFAULT_TEXT_MODEL`."""
    return get("QUICKSTART_TEXT_MODEL") or DEFAULT_TEXT_MODEL

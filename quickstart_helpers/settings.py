"""Settings: the only place that reads the ``QUICKSTART_*`` environment variables.

Every setting has one default, and an empty value counts as unset, so
``QUICKSTART_PACING=`` behaves exactly like no ``QUICKSTART_PACING`` at all.

- ``QUICKSTART_MODE``: ``auto``, ``live`` or ``offline``. Default ``auto``.
- ``QUICKSTART_PACING``: offline replay, ``realtime`` or ``fast``. Default ``fast`` when
  ``CI`` is set, else ``realtime``.
- ``QUICKSTART_CASSETTES``: extra cassette folders (``os.pathsep``-separated), searched
  after the shipped ones. Default: none.
- ``QUICKSTART_OUTPUT_ROOT``: where notebooks write their files. Default: a source
  checkout's ``build/run``, else ``./build/run``.
- ``QUICKSTART_NOTEBOOK_DIR``: folder of the executed notebook copy (``quickstart run``
  sets it). Default: the current folder.
- ``QUICKSTART_TEXT_MODEL``, ``QUICKSTART_IMAGE_MODEL``, ``QUICKSTART_LIVE_MODEL``: the
  models of the text/chat, text-and-image and Live API examples. Defaults:
  :data:`DEFAULT_TEXT_MODEL`, :data:`DEFAULT_IMAGE_MODEL`, :data:`DEFAULT_LIVE_MODEL`.

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
    "MODES",
    "PACINGS",
    "Mode",
    "Pacing",
    "extra_cassette_dirs",
    "get",
    "image_model",
    "live_model",
    "mode",
    "notebook_dir",
    "output_root",
    "pacing",
    "text_model",
]

Mode = Literal["auto", "live", "offline"]
Pacing = Literal["realtime", "fast"]

#: The accepted values of ``QUICKSTART_MODE`` and of ``make_client(mode=...)``.
MODES: tuple[str, ...] = ("auto", "live", "offline")
#: The accepted values of ``QUICKSTART_PACING`` and of ``--pacing``.
PACINGS: tuple[str, ...] = ("realtime", "fast")

#: Model of the text and chat notebooks (and of ``quickstart serve``).
DEFAULT_TEXT_MODEL = "gemini-3.8-flash"
#: Model of the interleaved text-and-image notebook.
DEFAULT_IMAGE_MODEL = "gemini-3.1-flash-lite-image"
#: Model of the Live API (audio) notebook.
DEFAULT_LIVE_MODEL = "gemini-3.1-flash-live-preview"


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
    """Return ``$QUICKSTART_MODE`` (``auto``, ``live`` or ``offline``); default ``auto``.

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


def text_model() -> str:
    """Return ``$QUICKSTART_TEXT_MODEL``, else :data:`DEFAULT_TEXT_MODEL`."""
    return get("QUICKSTART_TEXT_MODEL") or DEFAULT_TEXT_MODEL


def image_model() -> str:
    """Return ``$QUICKSTART_IMAGE_MODEL``, else :data:`DEFAULT_IMAGE_MODEL`."""
    return get("QUICKSTART_IMAGE_MODEL") or DEFAULT_IMAGE_MODEL


def live_model() -> str:
    """Return ``$QUICKSTART_LIVE_MODEL``, else :data:`DEFAULT_LIVE_MODEL`."""
    return get("QUICKSTART_LIVE_MODEL") or DEFAULT_LIVE_MODEL

"""docs/offline.md's "What the emulator serves" table lists exactly the emulator's routes."""

from __future__ import annotations

import re
from pathlib import Path

from quickstart_helpers.emulator import Emulator
from quickstart_helpers.emulator._http import METHODS

OFFLINE_DOC = Path(__file__).resolve().parent.parent / "docs" / "offline.md"


def table_endpoints() -> set[str]:
    text = OFFLINE_DOC.read_text("utf-8")
    section = text.split("### What the emulator serves", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {re.match(r"\| `([^`]+)`", row).group(1) for row in rows}


def app_endpoints() -> set[str]:
    app = Emulator().build_app()
    endpoints = {"OPTIONS *"}  # CORS preflight, answered by the middleware for any path
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD to every GET
            continue
        path = route.resource.canonical
        if path.endswith("/{model_method}"):
            base = path.removesuffix("{model_method}")
            endpoints |= {f"{route.method} {base}{{model}}:{m}" for m in METHODS}
        else:
            endpoints.add(f"{route.method} {path}")
    return endpoints


def test_the_docs_table_lists_every_route_and_nothing_else():
    assert table_endpoints() == app_endpoints()

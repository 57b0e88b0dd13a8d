"""Lesson cells are what a learner writes against the live API.

After the install cell and the one set-up line (``%load_ext quickstart_helpers``), no code
cell points the client at the emulator itself (its base URL or certificate,
``get_emulator``, ``resolve_mode``, ``make_client``), imports a private module (ours or the
SDK's), or imports our helpers from a submodule instead of the root. ``http_options`` for
retries is SDK code and stays.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: KNOWN EXCEPTIONS, for the lead to empty: notebooks whose set-up the lead converts after
#: merging (by number). A listed notebook must still break a rule, so the set cannot go stale.
LEAD_CONVERTS: set[str] = set()

SETUP_LINE = "%load_ext quickstart_helpers"

#: (what is wrong, pattern) for a lesson cell.
RULES = [
    (
        "points the client at the emulator",
        re.compile(
            r"get_emulator|resolve_mode|make_client|load_api_key|\bemulator\.|base_url\s*=(?!.*/openai/)"
            r"|\.certificate\b|client_context|quickstart_helpers\.emulator"
        ),
    ),
    (
        "imports a private module",
        re.compile(
            r"^\s*(from\s+[\w.]*\._\w+|import\s+[\w.]*\._\w+|from\s+[\w.]+\s+import\s+.*\b_[a-z]\w*)",
            re.M,
        ),
    ),
    ("uses a private attribute", re.compile(r"\w\._[a-z]\w*")),
    (
        "imports our helpers from a submodule",
        re.compile(r"^\s*(from\s+quickstart_helpers\.\w+|import\s+quickstart_helpers\.\w+)", re.M),
    ),
]


def problems(source: str) -> list[str]:
    """What is wrong with one lesson cell's code."""
    return [what for what, pattern in RULES if pattern.search(source)]


def lesson_problems(path: Path) -> list[str]:
    """Every problem of a notebook's lesson cells (after its install and set-up cells)."""
    code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    found = []
    if len(code) < 2 or code[1].strip() != SETUP_LINE:
        found.append(f"its second code cell is not {SETUP_LINE!r}")
    for number, source in enumerate(code[2:], start=3):
        found += [f"code cell {number} {what}" for what in problems(source)]
    return found


def test_the_rules_catch_what_they_look_for():
    assert problems("client = genai.Client(http_options=get_emulator().http_options())")
    assert problems("URL = f'{emulator.base_url}/v1beta'")
    assert problems("ctx = emulator.certificate.client_context()")
    assert problems("from quickstart_cli._client import resolve_mode")
    assert problems("client = OpenAI(base_url=emu_url)")
    assert problems("port = site._server.sockets[0].getsockname()[1]")
    # Gemini's OpenAI-compatible endpoint is live code (notebook 08).
    assert not problems('client = OpenAI(api_key=KEY, base_url=GEMINI + "/v1beta/openai/")')
    assert problems("from google.genai import _interactions")
    assert problems("import google.genai._interactions as i")
    assert problems("from quickstart_helpers._background import start_background_server")
    assert problems("from quickstart_helpers.display import stream_markdown")
    assert problems("from quickstart_helpers.emulator import get_emulator")


def test_the_rules_leave_live_code_alone():
    live = (
        "import os\nfrom google import genai\nfrom google.genai import errors, types\n"
        "from quickstart_helpers import resume_stream, stream_markdown\n\n"
        "client = genai.Client()\n"
        "RETRY = types.GenerateContentConfig(http_options=types.HttpOptions(\n"
        "    retry_options=types.HttpRetryOptions(attempts=3)))\n"
        'BASE_URL = os.environ.get("GOOGLE_GEMINI_BASE_URL", "https://example")\n'
        "for chunk in client.models.generate_content_stream(model=MODEL, contents=P):\n"
        "    print(chunk.text)\n"
    )
    assert problems(live) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_cells_are_live_api_code(path):
    found = lesson_problems(path)
    if path.name[:2] in LEAD_CONVERTS:
        assert found, f"{path.name} is clean: remove {path.name[:2]!r} from LEAD_CONVERTS"
    else:
        assert not found, f"{path.name}:\n" + "\n".join(found)

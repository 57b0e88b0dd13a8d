"""The README stays a landing page and the docs hold together: its size, every relative link
(files and #anchors) of README.md and docs/*.md, every page reachable from the README, and
each page opening with what the reader can do after it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]

MAX_README_BYTES = 10_240

_FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def prose(markdown: str) -> str:
    """The text outside code blocks, code spans and HTML comments."""
    for pattern in (_FENCE, _COMMENT, _CODE_SPAN):
        markdown = pattern.sub("", markdown)
    return markdown


def links(markdown: str) -> list[str]:
    """Every link and image target of a Markdown text, outside code."""
    return _LINK.findall(prose(markdown))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors of a Markdown text's headings (a repeated one gets -1, -2, ...)."""
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", markdown)):
        base, n = slug(heading), 0
        name = base
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links of a page whose file or #anchor does not exist."""
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto: ...: not ours to check
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file.read_text("utf-8"))):
            broken.append(f"{target} (no such heading)")
    return broken


def test_the_readme_is_a_landing_page_of_at_most_10_kb():
    size = len(README.read_bytes())
    assert size <= MAX_README_BYTES, f"README.md is {size} bytes: move details to docs/"


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Its `first` section!\n", "utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#its-first-section) [self](#a-title) [web](https://example.com/x)\n"
        "`[in code](gone.md)`\n```\n[in a block](gone.md)\n```\n"
        "[missing file](gone.md) [missing anchor](other.md#nowhere)\n\n# A title\n",
        "utf-8",
    )
    assert broken_links(page) == [
        "gone.md (no such file)",
        "other.md#nowhere (no such heading)",
    ]


def test_anchors_follow_github():
    text = "# Run the tests\n## `quickstart run` options\n## Run the tests\n```\n# code\n```"
    assert anchors(text) == {"run-the-tests", "quickstart-run-options", "run-the-tests-1"}


def test_every_docs_page_is_linked_from_the_readme():
    targets = {t.partition("#")[0] for t in links(README.read_text(encoding="utf-8"))}
    assert {f"docs/{page.name}" for page in DOCS} <= targets


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_each_docs_page_opens_with_what_the_reader_can_do_after_it(page):
    title, first_paragraph = page.read_text(encoding="utf-8").split("\n\n", 2)[:2]
    assert title.startswith("# ")
    assert first_paragraph.startswith("After reading this page you "), first_paragraph

"""Every link between the Markdown pages points at a file that exists, and at a section that exists.

Sphinx checks the links inside docs/ when it builds them; the README and the changelog are not built, so
this test reads all of them the same way: a relative link must name an existing file (or folder), and a
``#section`` must be the anchor of one of that page's headings, as myst-parser makes them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The page without its code blocks (a link there is an example, not a link)."""
    return _FENCE.sub("", text)


def anchor(heading: str) -> str:
    """The anchor myst-parser gives a heading (GitHub's rule): lower case, punctuation dropped."""
    words = heading.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", words).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings."""
    return {anchor(heading) for heading in _HEADING.findall(_prose(page.read_text()))}


def links(page: Path) -> list[str]:
    """The relative links of a page (not to other sites)."""
    prose = _CODE.sub("", _prose(page.read_text()))
    return [target for target in _LINK.findall(prose) if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def test_anchor_follows_myst() -> None:
    assert anchor("Redis: TCP, a Unix socket, or Sentinel") == "redis-tcp-a-unix-socket-or-sentinel"
    assert anchor("What `tests/support` gives a test") == "what-testssupport-gives-a-test"
    assert anchor("Bounded buffers and back-pressure") == "bounded-buffers-and-back-pressure"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_links_point_at_existing_pages_and_sections(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, section = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif section and linked.suffix == ".md" and section not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)

"""The documentation's links hold: every relative link and image in README.md and docs/*.md names
a file that exists (and, for a Markdown file, a heading that exists when it names one), and every
screenshot in docs/img is shown by some document — so a refreshed or renamed shot cannot leave a
broken picture or a stale file behind (scripts/screenshots.py writes them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
IMG = ROOT / "docs" / "img"
# [text](target) and ![alt](target); the target ends at whitespace or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE)


def _text(path: Path) -> str:
    """The document without its fenced code blocks (their brackets are code, not links)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def _anchors(path: Path) -> set[str]:
    """The heading anchors GitHub gives a document: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered -1, -2 …"""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(_text(path)):
        words = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", words.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(path: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(_text(path))
        # http:, https:, mailto: … and the app's own addresses (/api/docs/) are not files
        if not re.match(r"^([a-z][a-z0-9+.-]*:|/)", target)
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_images_resolve(doc: Path) -> None:
    broken = []
    for target in _links(doc):
        file_part, _, anchor = target.partition("#")
        target_path = (doc.parent / file_part).resolve() if file_part else doc
        if not target_path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and target_path.suffix == ".md" and anchor not in _anchors(target_path):
            broken.append(f"{target}: no heading #{anchor} in {target_path.name}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_screenshot_is_shown_by_a_document() -> None:
    shown = {
        (doc.parent / target.partition("#")[0]).resolve()
        for doc in DOCS
        for target in _links(doc)
        if target.endswith(".png")
    }
    images = sorted(IMG.glob("*.png"))
    assert images, "docs/img holds no screenshots"
    unused = [image.name for image in images if image.resolve() not in shown]
    assert not unused, f"docs/img files no document shows: {unused}"


def test_the_user_guide_shows_the_daily_pages() -> None:
    guide = _text(ROOT / "docs" / "user-guide.md")
    for name in ("my-work", "cockpit", "cockpit-phone", "plan-document", "history", "team-admin"):
        assert re.search(rf"!\[[^\]]+\]\(img/{name}\.png\)", guide), f"{name}.png, with alt text"

"""Guards over every template: times go through the one time helper (``{% load ui %}``), and
pages link to the app's own help instead of repository files.

Machine formats stay where machines read them and are not templates: the REST API, webhook
payloads, CSV exports and the deployment gate write ISO 8601 / UTC from Python
(``accounts.events.iso``, ``decisions.services.gate``), and ``<time datetime="…">`` gets its
value from ``{% when %}`` or ``|iso``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    p
    for p in ROOT.rglob("*.html")
    if "templates" in p.parts and not {".venv", "node_modules", "htmlcov"} & set(p.parts)
)

# Django's own date filters and tags: each picks its own format and zone (the server's), so a
# page using one shows a time unlike every other page's.
BYPASSES_THE_TIME_HELPER = re.compile(
    r"\|\s*(date|time|timesince|timeuntil|naturaltime|naturalday)\b|\{%\s*(timezone|localtime|now)\b"
)
# Repository files and hosts instead of the app's own help pages.
REPOSITORY_LINK = re.compile(r"""href=["'][^"']*(\.md\b|github\.com|gitlab\.com|/docs/|README)""")


def test_there_are_templates_to_check():
    assert len(TEMPLATES) > 50


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_formats_a_time_itself(path: Path):
    found = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if BYPASSES_THE_TIME_HELPER.search(line)
    ]
    hint = "use {% when %} / |local_time / |local_date from {% load ui %}:\n"
    assert not found, hint + "\n".join(found)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_links_to_repository_files(path: Path):
    found = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if REPOSITORY_LINK.search(line)
    ]
    assert not found, "link to the app's help pages instead:\n" + "\n".join(found)

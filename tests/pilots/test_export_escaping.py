"""The Markdown export is inert: HTML people typed is escaped, and only http(s) links stay links
(finding 6 of issue #10: raw HTML and ``javascript:`` links reached the file)."""

from __future__ import annotations

import datetime as dt

import pytest

from pilots.export import plan_markdown
from pilots.models import Dashboard, PilotPlan, ScopeItem, Section
from pilots.selectors import plan_detail_queryset
from pilots.services import plan_create_from_template
from tests.factories import section_edit as edit

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(team, po, sm, developer, devops, stakeholder) -> PilotPlan:
    return plan_create_from_template(team=team, author=po, today=dt.date(2026, 3, 4))


def markdown(plan: PilotPlan) -> str:
    return plan_markdown(plan_detail_queryset().get(pk=plan.pk))


def test_html_people_typed_is_escaped(plan, po):
    PilotPlan.objects.filter(pk=plan.pk).update(title="<img src=x onerror=alert(1)> pilot")
    ScopeItem.objects.filter(plan=plan, reference="US-145").update(title="<script>x()</script>")
    edit(plan, Section.CHANGE_CONTROL, po, change_control="Line one\n<iframe src=evil></iframe>")

    text = markdown(plan)

    assert "<img" not in text and "<script>" not in text and "<iframe" not in text
    assert text.startswith("# &lt;img src=x onerror=alert(1)> pilot\n")
    assert "| US-145 | &lt;script>x()&lt;/script> |" in text
    assert "  &lt;iframe src=evil>&lt;/iframe>" in text


def test_markdown_links_written_as_text_do_not_become_links(plan, po):
    ScopeItem.objects.filter(plan=plan, reference="US-145").update(
        title="[click me](javascript:alert(1))"
    )

    text = markdown(plan)

    assert r"| US-145 | \[click me\](javascript:alert(1)) |" in text
    assert "[click me](javascript:" not in text


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>", "vbscript:msgbox"],
)
def test_non_http_links_are_neutralised(plan, url):
    # Stored rows may predate validation, or come from the admin: the export checks again.
    Dashboard.objects.filter(plan=plan).update(url=url)

    text = markdown(plan)

    assert f"<{url}>" not in text and f"]({url}" not in text
    lower = text.lower()
    assert "(javascript:" not in lower and "<javascript:" not in lower
    assert "<data:" not in lower and "<vbscript:" not in lower


def test_http_links_stay_links(plan):
    Dashboard.objects.filter(plan=plan).update(url="https://dash.example.com/a b)(<x>")

    text = markdown(plan)

    assert "<https://dash.example.com/a%20b%29%28%3Cx%3E>" in text or (
        "](https://dash.example.com/a%20b%29%28%3Cx%3E)" in text
    )

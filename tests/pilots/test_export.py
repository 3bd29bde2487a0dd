"""Export: the printable page and the Markdown file of a whole plan."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from pilots.export import plan_document, plan_markdown, plan_markdown_filename
from pilots.models import OnCallShift, PilotPlan, Risk, ScopeItem, Section
from pilots.selectors import plan_detail_queryset
from pilots.services import (
    environment_set_compliance,
    plan_create,
    plan_create_from_template,
    section_update,
    section_versions,
)
from tests.factories import row_append as add
from tests.factories import section_edit as edit

pytestmark = pytest.mark.django_db

WEDNESDAY = dt.date(2026, 3, 4)
HEADINGS = [f"## {label}" for label in Section.labels]


@pytest.fixture
def plan(team, po, sm, developer, devops, stakeholder) -> PilotPlan:
    return plan_create_from_template(team=team, author=po, today=WEDNESDAY)


def load(plan: PilotPlan) -> PilotPlan:
    return plan_detail_queryset().get(pk=plan.pk)


def complete(plan: PilotPlan, po, sm, devops) -> None:  # type: ignore[no-untyped-def]
    edit(plan, Section.COHORT, po, consent_recorded=True, feedback_channel="#pilot-feedback")
    edit(
        plan,
        Section.ENVIRONMENT,
        devops,
        environment="pilot-eu-1",
        uses_real_data=True,
        masking_rules="Card numbers masked",
    )
    environment_set_compliance(
        plan=plan,
        user=sm,
        validated=True,
        expected_version=section_versions(plan=plan)[Section.ENVIRONMENT],
    )
    add(plan, "on-call", devops, person=devops, starts_on=plan.start_date, ends_on=plan.end_date)
    add(plan, "rehearsals", devops, rehearsed_on=WEDNESDAY, outcome="passed", notes="12 min")


# --- the document ------------------------------------------------------------------------------


def test_markdown_has_every_section_in_order_and_open_gaps_last(plan):
    text = plan_markdown(load(plan))

    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [*HEADINGS, "## Open gaps"]
    assert text.startswith("# Saved cards pilot (from template)\n")


def test_markdown_carries_the_template_values(plan):
    text = plan_markdown(load(plan))

    for expected in [
        "| US-145 | Save a card at checkout |",
        "| US-152 | Pay with a saved card |",
        "Payment gateways",
        "External payment gateways stay out of the pilot",
        "- **Target size:** 200",
        "- **Opt-in required:** Yes",
        "Region A",
        "| 100 % |",
        "| P1 defects total = 0 defects |",
        "| CSAT mean ≥ 4.2 / 5 |",
        "| Error rate mean ≤ 0.5 % |",
        "| P2 defects rate per 1,000 sessions < 2 |",
        "| p95 latency percentile 95 < 300 ms |",
        "| P1 defects > 0 (any occurrence) | Any P1 defect |",
        "| p95 latency > 300 ms for 30 minutes | p95 latency above 300 ms for 30 minutes |",
        "- **Time-box:** 10 business days",
        "- **Start:** Mon 9 Mar 2026",
        "- **End:** Fri 20 Mar 2026",
        "10:00, 16:00 (Europe/Berlin)",
        "Switch the saved-cards feature flag off for the cohort",
        "<https://dashboards.example.com/P-01>",
        "| P1 | 15 min |",
        "Cohort not representative (internal only)",
        "- **Decides at exit:** ",
    ]:
        assert expected in text, expected


def test_markdown_lists_the_open_gaps_with_their_sections(plan):
    text = plan_markdown(load(plan))

    gaps = text.split("## Open gaps\n", 1)[1]
    assert "- **Cohort:** Cohort consent is not recorded." in gaps
    assert "- **Rollback and contingency:** Rollback never rehearsed." in gaps
    assert "- **Monitoring and support:** On-call coverage misses 10 business days" in gaps


def test_a_complete_plan_exports_without_gaps(plan, po, sm, devops):
    complete(plan, po, sm, devops)

    text = plan_markdown(load(plan))

    assert text.split("## Open gaps\n", 1)[1].strip() == "None: every section is complete."
    assert "- **Compliance and masking validated:** Yes, by " in text
    assert "| Passed | 12 min |" in text
    assert "- **Consent recorded:** Yes" in text


def test_an_empty_plan_exports_every_section_saying_what_is_missing(team, po):
    plan = plan_create(team=team, author=po, title="Empty plan")

    text = plan_markdown(load(plan))

    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [*HEADINGS, "## Open gaps"]
    for note in [
        "_No exit criteria._",
        "_No rollback triggers._",
        "_Never rehearsed._",
        "_No risks recorded._",
        "- **Start:** —",
    ]:
        assert note in text


def test_markdown_keeps_table_cells_on_one_line(plan, po):
    ScopeItem.objects.filter(plan=plan, reference="US-145").update(
        title="Save a card | or two\nat checkout"
    )
    section_update(
        plan=plan,
        key=Section.CHANGE_CONTROL,
        user=po,
        expected_version=section_versions(plan=plan)[Section.CHANGE_CONTROL],
        values={"change_control": "Triage daily.\n\nRe-prioritise weekly."},
    )

    text = plan_markdown(load(plan))

    assert r"| US-145 | Save a card \| or two at checkout |" in text
    assert (
        "- **How learnings reach the backlog:**\n\n  Triage daily.\n\n  Re-prioritise weekly."
        in (text)
    )


def test_exit_criterion_without_threshold_says_so(plan):
    plan.exit_criteria.filter(metric__key="csat").update(threshold=None)

    text = plan_markdown(load(plan))

    assert "| CSAT mean ≥ (no threshold yet) |" in text
    assert "Exit criterion “CSAT” has no numeric threshold." in text


def test_document_reads_only_what_is_loaded(plan, po, sm, devops, django_assert_num_queries):
    complete(plan, po, sm, devops)
    loaded = load(plan)

    with django_assert_num_queries(0):
        document = plan_document(loaded)
        plan_markdown(loaded)

    assert [s.key for s in document.sections] == Section.values


def test_markdown_filename_is_a_slug(team, po):
    assert plan_markdown_filename(PilotPlan(pk=7, title="Saved cards: Region A / 2026!")) == (
        "saved-cards-region-a-2026.md"
    )
    assert plan_markdown_filename(PilotPlan(pk=7, title="¿?")) == "pilot-plan-7.md"


# --- the views ---------------------------------------------------------------------------------


def print_url(plan: PilotPlan) -> str:
    return reverse("pilots:plan_print", args=[plan.pk])


def markdown_url(plan: PilotPlan) -> str:
    return reverse("pilots:plan_markdown", args=[plan.pk])


def test_urls():
    assert reverse("pilots:plan_print", args=[7]) == "/plans/7/print"
    assert reverse("pilots:plan_markdown", args=[7]) == "/plans/7/export.md"


def test_print_page_shows_the_whole_plan(client_for, plan, po):
    response = client_for(po).get(print_url(plan))

    assert response.status_code == 200
    html = response.content.decode()
    for key, label in Section.choices:
        assert f'id="section-{key}"' in html
        assert f"<h2>{label}</h2>" in html
    assert "<h2>Open gaps</h2>" in html
    assert "US-145" in html and "Payment gateways" in html
    assert "≥ 4.2 / 5" in html
    assert '<a href="https://dashboards.example.com/P-01">' in html
    assert '<a href="#section-cohort">Cohort</a>: Cohort consent is not recorded.' in html
    assert "css/print.css" in html
    assert markdown_url(plan) in html
    assert reverse("pilots:plan_detail", args=[plan.pk]) in html


def test_print_page_escapes_what_people_typed(client_for, plan, po):
    Risk.objects.filter(plan=plan).update(description="<script>alert(1)</script>")

    html = client_for(po).get(print_url(plan)).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_markdown_download(client_for, plan, po):
    response = client_for(po).get(markdown_url(plan))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="saved-cards-pilot-from-template.md"'
    )
    assert response.content.decode() == plan_markdown(load(plan))


@pytest.mark.parametrize("role", ["po", "sm", "developer", "devops", "stakeholder"])
@pytest.mark.parametrize("url", [print_url, markdown_url], ids=["print", "markdown"])
def test_every_team_member_may_export(client_for, plan, role, url, request):
    user = request.getfixturevalue(role)

    assert client_for(user).get(url(plan)).status_code == 200


@pytest.mark.parametrize("url", [print_url, markdown_url], ids=["print", "markdown"])
def test_an_outsider_gets_404(client_for, plan, outsider, url):
    assert client_for(outsider).get(url(plan)).status_code == 404


@pytest.mark.parametrize("url", [print_url, markdown_url], ids=["print", "markdown"])
def test_anonymous_is_sent_to_log_in(client, plan, url):
    response = client.get(url(plan))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", [print_url, markdown_url], ids=["print", "markdown"])
def test_a_missing_plan_is_404(client_for, po, url):
    assert client_for(po).get(url(PilotPlan(pk=987654))).status_code == 404


@pytest.mark.parametrize("url", [print_url, markdown_url], ids=["print", "markdown"])
def test_export_is_read_only(client_for, plan, po, url):
    assert client_for(po).post(url(plan)).status_code == 405


# Session, user, membership (role), the plan with its one-to-one sections, and one query per
# prefetched list (sections, scope, segments, entry criteria (who confirmed joined in), exit
# criteria, dashboards, on-call, SLAs, triggers, steps, rehearsals, risks, team holidays).
QUERIES = 17


@pytest.mark.parametrize("url", [print_url, markdown_url], ids=["print", "markdown"])
def test_export_query_count_does_not_grow_with_the_plan(
    client_for, plan, po, sm, devops, url, django_assert_num_queries
):
    complete(plan, po, sm, devops)
    plan.entry_criteria.filter(position=1).update(
        status="met",
        evidence_url="https://ci.example.com/1",
        confirmed_by=sm,
        confirmed_at=dt.datetime.now(dt.UTC),
    )
    client = client_for(po)
    client.get(url(plan))  # warm up what is cached per process (content types, templates)

    with django_assert_num_queries(QUERIES):
        assert client.get(url(plan)).status_code == 200

    for day in range(3):
        OnCallShift.objects.create(
            plan=plan,
            person=devops,
            starts_on=WEDNESDAY,
            ends_on=WEDNESDAY + dt.timedelta(days=day),
        )
        add(plan, "risks", po, description=f"Risk {day}", likelihood="low", impact="low", owner=sm)
        add(
            plan,
            "segments",
            po,
            dimension="audience",
            value=f"Group {day}",
            intended_share=Decimal("10"),
        )
    plan.entry_criteria.update(
        status="met",
        evidence_note="Seen in the demo",
        confirmed_by=po,
        confirmed_at=dt.datetime.now(dt.UTC),
    )

    with django_assert_num_queries(QUERIES):
        assert client.get(url(plan)).status_code == 200


def test_markdown_is_valid_enough_to_render(plan):
    """Every table row has as many cells as its header."""
    text = plan_markdown(load(plan))
    blocks = re.findall(r"((?:^\|.*\|\n)+)", text, flags=re.MULTILINE)

    assert len(blocks) >= 8
    for block in blocks:
        rows = [re.split(r"(?<!\\)\|", line)[1:-1] for line in block.strip().splitlines()]
        assert len({len(r) for r in rows}) == 1, block

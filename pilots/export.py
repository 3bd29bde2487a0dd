"""The whole plan as one document: the printable page and the Markdown export read the same
structure, so both show every section with the same words and values.

``plan_document`` turns a plan loaded with ``selectors.plan_detail_queryset`` into sections of
labelled values and tables (plain strings, ready to print); it reads only what is loaded, like
plan health. ``plan_markdown`` writes that document as Markdown.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.text import slugify

from accounts.ui import day_text, local_time
from pilots import wording
from pilots.health import Gap, plan_health
from pilots.models import (
    EntryCriterion,
    PilotPlan,
    ScopeItem,
    Section,
)

EMPTY = "—"


@dataclass(frozen=True)
class Cell:
    text: str
    href: str = ""  # a link (evidence, dashboard): printed as a link in both formats


@dataclass(frozen=True)
class Table:
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    empty: str  # what to say when there are no rows


@dataclass(frozen=True)
class Fact:
    label: str
    value: Cell
    long: bool = False  # free text that may span paragraphs


@dataclass(frozen=True)
class DocumentSection:
    key: str  # a Section value; the printable page uses it for the anchor #section-<key>
    label: str
    facts: list[Fact] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass(frozen=True)
class PlanDocument:
    title: str
    subtitle: str  # team · status · version
    sections: list[DocumentSection]
    gaps: list[Gap]


# --- values ------------------------------------------------------------------------------------


def _text(value: object) -> Cell:
    if value is None:
        return Cell(EMPTY)
    text = str(value).strip()
    return Cell(text or EMPTY)


def _person(user: object) -> Cell:
    return Cell(user.display_name) if user is not None else Cell(EMPTY)  # type: ignore[attr-defined]


def _yes_no(value: bool) -> Cell:
    return Cell("Yes" if value else "No")


def _date(value: dt.date | None) -> Cell:
    return Cell(day_text(value)) if value else Cell(EMPTY)


def _moment(value: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> str:
    """An instant on the plan's clock, labelled: "Mon 6 Dec 2026, 14:32 CET"."""
    return local_time(value, tz) if value else EMPTY


def _number(value: Decimal | int | None) -> str:
    if value is None:
        return EMPTY
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 0.5000 → 0.5, 300.0000 → 300
    return str(value)


def _link(url: str) -> Cell:
    return Cell(url, href=url) if url else Cell(EMPTY)


def _window(hours: int | None) -> str:
    return f"last {hours} h" if hours else "whole pilot"


# --- sections ----------------------------------------------------------------------------------


def _overview(plan: PilotPlan) -> DocumentSection:
    return DocumentSection(Section.OVERVIEW, Section.OVERVIEW.label, facts=[
        Fact("Title", _text(plan.title)),
        Fact("Summary", _text(plan.summary), long=True),
        Fact("Release / increment", _text(plan.release_ref)),
        Fact("Team", _text(plan.team.name)),
        Fact("Status", _text(plan.get_status_display())),
    ])  # fmt: skip


def _scope(plan: PilotPlan) -> DocumentSection:
    items = sorted(plan.scope_items.all(), key=lambda i: i.position)
    included = [i for i in items if i.kind == ScopeItem.Kind.INCLUDED]
    excluded = [i for i in items if i.kind == ScopeItem.Kind.EXCLUDED]
    return DocumentSection(Section.SCOPE, Section.SCOPE.label, tables=[
        Table("Included", ["Reference", "Title"],
              [[_text(i.reference), _text(i.title)] for i in included],
              "No story or epic slice is included yet."),
        Table("Excluded", ["Reference", "Title", "Reason"],
              [[_text(i.reference), _text(i.title), _text(i.reason)] for i in excluded],
              "Nothing is explicitly excluded."),
    ])  # fmt: skip


def _cohort(plan: PilotPlan) -> DocumentSection:
    cohort = plan.cohort
    segments = sorted(plan.segments.all(), key=lambda s: s.position)
    return DocumentSection(Section.COHORT, Section.COHORT.label, facts=[
        Fact("Description", _text(cohort.description), long=True),
        Fact("Target size", _text(cohort.target_size)),
        Fact("Opt-in required", _yes_no(cohort.opt_in_required)),
        Fact("Consent recorded", _yes_no(cohort.consent_recorded)),
        Fact("Feedback channel", _text(cohort.feedback_channel)),
    ], tables=[
        Table("Segments", ["Dimension", "Segment", "Intended share"],
              [[_text(s.get_dimension_display()), _text(s.value),
                Cell(f"{_number(s.intended_share)} %")] for s in segments],
              "No segments."),
    ])  # fmt: skip


def _environment(plan: PilotPlan, tz: zoneinfo.ZoneInfo) -> DocumentSection:
    env = plan.environment
    if env.compliance_validated_at:
        validated = Cell(
            f"Yes, by {_person(env.compliance_validated_by).text} "
            f"on {_moment(env.compliance_validated_at, tz)}"
        )
    else:
        validated = Cell("No")
    return DocumentSection(Section.ENVIRONMENT, Section.ENVIRONMENT.label, facts=[
        Fact("Environment", _text(env.environment)),
        Fact("Uses real data", _yes_no(env.uses_real_data)),
        Fact("Data migration rules", _text(env.data_migration_rules), long=True),
        Fact("Privacy / compliance constraints", _text(env.privacy_constraints), long=True),
        Fact("Masking rules", _text(env.masking_rules), long=True),
        Fact("Compliance and masking validated", validated),
    ])  # fmt: skip


def _entry_criteria(plan: PilotPlan, tz: zoneinfo.ZoneInfo) -> DocumentSection:
    def confirmed(c: EntryCriterion) -> Cell:
        if c.status == EntryCriterion.Status.PENDING:
            return Cell(EMPTY)
        return Cell(f"{_person(c.confirmed_by).text}, {_moment(c.confirmed_at, tz)}")

    def status(c: EntryCriterion) -> Cell:
        if c.status == EntryCriterion.Status.WAIVED:
            return Cell(f"Waived: {c.waiver_reason.strip()}")
        return Cell(c.get_status_display())

    criteria = sorted(plan.entry_criteria.all(), key=lambda c: c.position)
    return DocumentSection(Section.ENTRY_CRITERIA, Section.ENTRY_CRITERIA.label, tables=[
        Table("", ["#", "Criterion", "Kind", "Status", "Evidence", "Confirmed by"],
              [[Cell(str(c.position)), _text(c.text), _text(c.get_kind_display()), status(c),
                _link(c.evidence_url) if c.evidence_url else _text(c.evidence_note),
                confirmed(c)] for c in criteria],
              "No entry criteria."),
    ])  # fmt: skip


def _exit_criteria(plan: PilotPlan) -> DocumentSection:
    criteria = sorted(plan.exit_criteria.all(), key=lambda c: c.position)
    return DocumentSection(Section.EXIT_CRITERIA, Section.EXIT_CRITERIA.label, tables=[
        Table("", ["#", "Criterion", "Window", "Minimum sample", "Decides"],
              [[Cell(str(c.position)), Cell(wording.criterion_text(c)),
                Cell(_window(c.window_hours)), Cell(_number(c.min_sample_size)),
                Cell("Blocking" if c.blocking else "Advisory")] for c in criteria],
              "No exit criteria."),
    ])  # fmt: skip


def _monitoring(plan: PilotPlan) -> DocumentSection:
    monitoring = plan.monitoring
    dashboards = sorted(plan.dashboards.all(), key=lambda d: d.position)
    shifts = sorted(plan.on_call.all(), key=lambda s: (s.starts_on, s.ends_on))
    slas = sorted(plan.response_slas.all(), key=lambda s: s.severity)
    return DocumentSection(Section.MONITORING, Section.MONITORING.label, facts=[
        Fact("Daily checks", Cell(_check_times(plan))),
        Fact("Communication cadence", _text(monitoring.communication_cadence), long=True),
        Fact("Training done", _yes_no(monitoring.training_done)),
        Fact("Training notes", _text(monitoring.training_notes), long=True),
    ], tables=[
        Table("Dashboards", ["Dashboard", "Link"],
              [[_text(d.name), _link(d.url)] for d in dashboards], "No dashboards."),
        Table("On-call coverage", ["Who", "From", "To"],
              [[_text(s.person.display_name if s.person else s.person_name), _date(s.starts_on),
                _date(s.ends_on)] for s in shifts], "No on-call coverage."),
        Table("Response SLAs", ["Severity", "Respond within"],
              [[_text(s.get_severity_display()), Cell(f"{s.response_minutes} min")]
               for s in slas], "No response SLAs."),
    ])  # fmt: skip


def _rollback_triggers(plan: PilotPlan) -> DocumentSection:
    triggers = sorted(plan.rollback_triggers.all(), key=lambda t: t.position)
    return DocumentSection(Section.ROLLBACK_TRIGGERS, Section.ROLLBACK_TRIGGERS.label, tables=[
        Table("", ["#", "Trigger", "Description"],
              [[Cell(str(t.position)), Cell(wording.trigger_text(t)), _text(t.description)]
               for t in triggers],
              "No rollback triggers."),
    ])  # fmt: skip


def _rollback_plan(plan: PilotPlan) -> DocumentSection:
    rollback = plan.rollback_plan
    steps = sorted(plan.rollback_steps.all(), key=lambda s: s.position)
    rehearsals = sorted(plan.rollback_rehearsals.all(), key=lambda r: r.rehearsed_on, reverse=True)
    return DocumentSection(Section.ROLLBACK_PLAN, Section.ROLLBACK_PLAN.label, facts=[
        Fact("Approves a rollback", _person(rollback.approver)),
        Fact("Executes a rollback", _person(plan.rollback_executor)),
        Fact("Data considerations", _text(rollback.data_considerations), long=True),
        Fact("Communication plan", _text(rollback.communication_plan), long=True),
    ], tables=[
        Table("Steps", ["#", "Action", "Owner", "Expected duration"],
              [[Cell(str(s.position)), _text(s.action), _person(s.owner),
                Cell(f"{s.expected_minutes} min" if s.expected_minutes else EMPTY)]
               for s in steps], "No rollback steps."),
        Table("Rehearsals", ["Date", "Outcome", "Notes"],
              [[_date(r.rehearsed_on), _text(r.get_outcome_display()), _text(r.notes)]
               for r in rehearsals], "Never rehearsed."),
    ])  # fmt: skip


def _check_times(plan: PilotPlan) -> str:
    times = ", ".join(t.strftime("%H:%M") for t in plan.check_times)
    return f"{times} ({plan.time_zone})" if times else EMPTY


def _timeline(plan: PilotPlan) -> DocumentSection:
    return DocumentSection(Section.TIMELINE, Section.TIMELINE.label, facts=[
        Fact("Start", _date(plan.start_date)),
        Fact("Time-box", Cell(f"{plan.business_days} business days")),
        Fact("End", _date(plan.end_date)),
        Fact("Time zone", _text(plan.time_zone)),
        Fact("Daily checks", Cell(_check_times(plan))),
        Fact("Minimum observation", Cell(f"{plan.minimum_observation_days} business days")),
    ])  # fmt: skip


def _ownership(plan: PilotPlan) -> DocumentSection:
    return DocumentSection(Section.OWNERSHIP, Section.OWNERSHIP.label, facts=[
        Fact("Owner (Product Owner)", _person(plan.owner)),
        Fact("Scrum Master", _person(plan.scrum_master)),
        Fact("Decides at exit", _person(plan.decision_owner)),
        Fact("Executes a rollback", _person(plan.rollback_executor)),
    ])  # fmt: skip


def _change_control(plan: PilotPlan) -> DocumentSection:
    return DocumentSection(Section.CHANGE_CONTROL, Section.CHANGE_CONTROL.label, facts=[
        Fact("How learnings reach the backlog", _text(plan.change_control), long=True),
    ])  # fmt: skip


def _risks(plan: PilotPlan) -> DocumentSection:
    risks = sorted(plan.risks.all(), key=lambda r: r.position)
    return DocumentSection(Section.RISKS, Section.RISKS.label, tables=[
        Table("", ["#", "Risk", "Likelihood", "Impact", "Mitigation", "Owner"],
              [[Cell(str(r.position)), _text(r.description), _text(r.get_likelihood_display()),
                _text(r.get_impact_display()), _text(r.mitigation), _person(r.owner)]
               for r in risks], "No risks recorded."),
    ])  # fmt: skip


def plan_document(plan: PilotPlan) -> PlanDocument:
    """Every section of ``plan`` (loaded with ``plan_detail_queryset``), in the plan's order."""
    tz = zoneinfo.ZoneInfo(plan.time_zone)
    sections = {
        Section.OVERVIEW: _overview(plan),
        Section.SCOPE: _scope(plan),
        Section.COHORT: _cohort(plan),
        Section.ENVIRONMENT: _environment(plan, tz),
        Section.ENTRY_CRITERIA: _entry_criteria(plan, tz),
        Section.EXIT_CRITERIA: _exit_criteria(plan),
        Section.MONITORING: _monitoring(plan),
        Section.ROLLBACK_TRIGGERS: _rollback_triggers(plan),
        Section.ROLLBACK_PLAN: _rollback_plan(plan),
        Section.TIMELINE: _timeline(plan),
        Section.OWNERSHIP: _ownership(plan),
        Section.CHANGE_CONTROL: _change_control(plan),
        Section.RISKS: _risks(plan),
    }
    return PlanDocument(
        title=plan.title,
        subtitle=f"{plan.team.name} · {plan.get_status_display()} · version {plan.version}",
        sections=[sections[Section(key)] for key in Section.values],
        gaps=plan_health(plan),
    )


# --- Markdown ----------------------------------------------------------------------------------


# "<" followed by these opens raw HTML or an autolink in CommonMark.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
# Only these link schemes become links; ``javascript:``, ``data:``, ``vbscript:``… stay text.
SAFE_LINK_SCHEMES = ("http://", "https://")


def _md_text(text: str) -> str:
    """User text as inert Markdown: every ``<`` that could open a tag, a comment or an autolink
    is escaped (a comparator such as "< 2" stays readable), and brackets are escaped, so text
    cannot write its own ``[label](javascript:…)`` link."""
    text = _TAG_START.sub("&lt;", text.replace("&", "&amp;"))
    return text.replace("[", r"\[").replace("]", r"\]")


def _md_href(href: str) -> str | None:
    """A link target safe to print, or None when it is not an http(s) address."""
    href = href.strip()
    if not href.lower().startswith(SAFE_LINK_SCHEMES):
        return None
    # Characters that could end the link syntax early are percent-encoded.
    for char, code in (("<", "%3C"), (">", "%3E"), ("(", "%28"), (")", "%29"), (" ", "%20")):
        href = href.replace(char, code)
    return "".join(href.split())


def _md_cell(cell: Cell) -> str:
    # A table cell is one line; a pipe would end it.
    text = _md_text(" ".join(cell.text.split())).replace("|", r"\|")
    href = _md_href(cell.href) if cell.href else None
    if href:
        return f"<{href}>" if cell.text == cell.href else f"[{text}]({href})"
    return text


def _md_table(table: Table) -> list[str]:
    lines = [f"### {table.title}", ""] if table.title else []
    if not table.rows:
        return [*lines, f"_{table.empty}_", ""]
    lines.append("| " + " | ".join(table.headers) + " |")
    lines.append("|" + "|".join(" --- " for _ in table.headers) + "|")
    lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows)
    return [*lines, ""]


def _md_fact(fact: Fact) -> list[str]:
    if fact.long and "\n" in fact.value.text:
        # A paragraph (or several) under the label, indented so it stays in the list item.
        body = [f"  {_md_text(line)}".rstrip() for line in fact.value.text.splitlines()]
        return [f"- **{fact.label}:**", "", *body, ""]
    return [f"- **{fact.label}:** {_md_cell(fact.value)}"]


def plan_markdown(plan: PilotPlan) -> str:
    """The whole plan as Markdown: a heading per section, tables for lists, open gaps last."""
    document = plan_document(plan)
    lines = [f"# {_md_text(document.title)}", "", f"_{_md_text(document.subtitle)}_", ""]
    for section in document.sections:
        lines += [f"## {section.label}", ""]
        if section.facts:
            for fact in section.facts:
                lines += _md_fact(fact)
            lines.append("")
        for table in section.tables:
            lines += _md_table(table)
    lines += ["## Open gaps", ""]
    if document.gaps:
        lines += [f"- **{gap.section_label}:** {_md_text(gap.message)}" for gap in document.gaps]
    else:
        lines.append("None: every section is complete.")
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


def plan_markdown_filename(plan: PilotPlan) -> str:
    return f"{slugify(plan.title)[:80].strip('-') or f'pilot-plan-{plan.pk}'}.md"

"""Display helpers for the rows of list sections (``pilots/rows/list.html``): the table of a
list as headers and cells, ready for the template to print."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django import template
from django.db import models
from django.template.defaulttags import CsrfTokenNode
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst

from accounts.ui import day_text, local_time
from pilots import wording
from pilots.models import PilotPlan
from pilots.row_forms import RowForm, row_form
from pilots.selectors import ALL_LISTS, ROWS_SHOWN, ROWS_TOTAL, row_groups
from pilots.services import RowKind

register = template.Library()

EMPTY = "—"
__all__ = ["ALL_LISTS", "ROWS_SHOWN", "register"]


@dataclass(frozen=True)
class Cell:
    text: str
    href: str = ""


@dataclass(frozen=True)
class Line:
    row: Any
    cells: list[Cell]
    first: bool  # first of its list (or group): cannot move up
    last: bool
    headers: list[str]
    list_url: str = ""  # the list's URL (``pilots:row_list``); the row's actions live under it
    slug: str = ""  # the list's kind

    @property
    def dom_id(self) -> str:
        """The row's element id, ``row-<list>-<row id>``: one string, not a number the template
        would localise on every row."""
        return f"row-{self.slug}-{self.row.pk}"

    # The row's actions, "<list_url><row id>/<action>" as pilots/views/rows.py routes them: one
    # reverse() per list rather than three per row (a long list's rows were mostly URL work).
    @property
    def edit_url(self) -> str:
        return f"{self.list_url}{self.row.pk}/edit"

    @property
    def move_url(self) -> str:
        return f"{self.list_url}{self.row.pk}/move"

    @property
    def remove_url(self) -> str:
        return f"{self.list_url}{self.row.pk}/remove"

    @property
    def labelled(self) -> list[tuple[str, Cell]]:
        return list(zip(self.headers, self.cells, strict=True))

    @property
    def summary(self) -> str:
        """The row in one line, for confirmations: "US-145 · Checkout with saved cards"."""
        return " · ".join(c.text for c in self.cells if c.text != EMPTY)

    @property
    def short_summary(self) -> str:
        """``summary`` cut to 80 characters, for the remove confirmation."""
        summary = self.summary
        return summary if len(summary) <= 80 else summary[:79] + "…"


@dataclass(frozen=True)
class Table:
    headers: list[str]
    lines: list[Line]  # the rows shown: the first ROWS_SHOWN unless the list is expanded
    total: int = 0  # rows in the list, shown or not

    @property
    def hidden(self) -> int:
        return self.total - len(self.lines)

    @property
    def span(self) -> int:
        """Columns with the actions column: an inline edit form spans them all."""
        return len(self.headers) + 1


def _cell(row: models.Model, field: models.Field) -> Cell:
    if getattr(row, field.attname) in (None, ""):  # checked on the id: no query for an empty FK
        return Cell(EMPTY)
    if field.choices:
        return Cell(str(getattr(row, f"get_{field.name}_display")()))
    value = getattr(row, field.name)
    if isinstance(value, bool):
        return Cell("Yes" if value else "No")
    if isinstance(value, Decimal):
        return Cell(format(value.normalize(), "f"))  # 0.5000 → 0.5, 300.0000 → 300
    if isinstance(value, dt.date):
        return Cell(day_text(value))
    if isinstance(field, models.URLField):
        return Cell(value, href=value)
    return Cell(str(value))


# A column shows one field, or several read as one phrase: (field, text before, text after).
Part = tuple[str, str, str]


@dataclass(frozen=True)
class Worded:
    """A column that reads several fields the way every page does (``pilots.wording``)."""

    text: Callable[[Any], str]
    fields: tuple[str, ...]


def _confirmation(row: Any) -> str:
    """Who confirmed an entry criterion and when: "Sam Scrum, 3 Dec 2026 14:05"."""
    if row.confirmed_at is None:
        return EMPTY
    who = row.confirmed_by.display_name if row.confirmed_by else "someone"
    # On the plan's clock when the row came with its plan (the plan page's prefetch), else UTC;
    # either way labelled with its zone.
    plan = row._state.fields_cache.get("plan")
    return f"{who}, {local_time(row.confirmed_at, plan)}"


# Lists with many fields read better as a few phrases than as a column per field (an exit
# criterion has eleven). The others get a column per field, headed by its verbose name.
COLUMNS: dict[str, tuple[tuple[str, tuple[Part, ...] | Worded], ...]] = {
    "entry-criteria": (
        ("Criterion", (("text", "", ""),)),
        ("Kind", (("kind", "", ""),)),
        ("Status", (("status", "", ""),)),
        ("Evidence", (("evidence_url", "", ""),)),
        ("Evidence note", (("evidence_note", "", ""),)),
        ("Waiver reason", (("waiver_reason", "", ""),)),
        ("Confirmed by", Worded(_confirmation, ("confirmed_at",))),
    ),
    "exit-criteria": (
        ("Criterion", Worded(wording.criterion_text, (
            "metric", "aggregation", "percentile", "per_n", "denominator", "comparator",
            "threshold", "unit"))),
        ("Window", (("window_hours", "", " h"),)),
        ("Min. sample", (("min_sample_size", "", ""),)),
        ("Blocking", (("blocking", "", ""),)),
    ),
    "rollback-triggers": (
        ("Trigger", Worded(wording.trigger_text, (
            "metric", "comparator", "threshold", "mode", "sustained_minutes"))),
        ("Description", (("description", "", ""),)),
    ),
}  # fmt: skip


def _columns(kind: RowKind) -> tuple[tuple[str, tuple[Part, ...] | Worded], ...]:
    if kind.slug in COLUMNS:
        return COLUMNS[kind.slug]
    return tuple(
        (capfirst(str(_field(kind.model, name).verbose_name)), ((name, "", ""),))
        for name in kind.fields
    )


def _column_fields(parts: tuple[Part, ...] | Worded) -> tuple[str, ...]:
    return parts.fields if isinstance(parts, Worded) else tuple(name for name, _b, _a in parts)


def _column_has_value(row: models.Model, parts: tuple[Part, ...] | Worded) -> bool:
    """Whether the row's cell in this column is not empty, from the stored values alone (the
    same test ``_cell`` starts with), so hidden rows cost no formatting."""
    return any(
        getattr(row, _field(type(row), name).attname) not in (None, "")
        for name in _column_fields(parts)
    )


def _column_cell(row: models.Model, parts: tuple[Part, ...] | Worded) -> Cell:
    if isinstance(parts, Worded):
        return Cell(parts.text(row))
    cells = [(before, _cell(row, _field(type(row), name)), after) for name, before, after in parts]
    shown = [(before, cell, after) for before, cell, after in cells if cell.text != EMPTY]
    if not shown:
        return Cell(EMPTY)
    if len(parts) == 1:
        before, cell, after = shown[0]
        return Cell(f"{before}{cell.text}{after}", href=cell.href)
    return Cell(" ".join(f"{before}{cell.text}{after}" for before, cell, after in shown))


def _field(model: type[models.Model], name: str) -> models.Field:
    return cast(models.Field, model._meta.get_field(name))  # the kinds' fields are concrete


def _group_key(row: models.Model, names: tuple[str, ...]) -> tuple[Any, ...]:
    key = []
    for name in names:
        field = _field(type(row), name)
        value = getattr(row, field.attname)
        choices = [c[0] for c in field.flatchoices] if field.choices else []
        key.append(choices.index(value) if value in choices else value)
    return tuple(key)


@register.simple_tag
def row_table(kind: RowKind, rows: Iterable[models.Model], expanded: str = ALL_LISTS) -> Table:
    """The rows as a table, leaving out columns no row has a value for. Unless ``expanded``
    names this list (its slug) or every list (``ALL_LISTS``), only the first ``ROWS_SHOWN``
    rows get lines; ``total`` counts them all. ``rows`` may be the first rows of a longer list
    (``selectors.plan_page``: one more than shown, each with the list's total)."""
    rows = list(rows)
    total = getattr(rows[0], ROWS_TOTAL, len(rows)) if rows else 0
    groups = row_groups(kind.model)
    if groups:
        rows.sort(key=lambda r: (_group_key(r, groups), r.position))  # type: ignore[attr-defined]
    visible = rows if expanded in (ALL_LISTS, kind.slug) else rows[:ROWS_SHOWN]
    columns = _columns(kind)
    shown = [
        i for i, (_header, parts) in enumerate(columns)
        if any(_column_has_value(row, parts) for row in visible)
    ]  # fmt: skip
    headers = [columns[i][0] for i in shown]
    keys = [_group_key(r, groups) for r in rows]
    list_url = reverse("pilots:row_list", args=[rows[0].plan_id, kind.slug]) if rows else ""
    lines = [
        Line(
            row=row,
            cells=[_column_cell(row, columns[i][1]) for i in shown],
            first=n == 0 or keys[n - 1] != keys[n],
            last=n == len(rows) - 1 or keys[n + 1] != keys[n],
            headers=headers,
            list_url=list_url,
            slug=kind.slug,
        )
        for n, row in enumerate(visible)
    ]
    return Table(headers=headers, lines=lines, total=total)


@register.simple_tag
def row_add_form(kind: RowKind, plan: PilotPlan, form: RowForm | None = None) -> RowForm:
    """The add form given by the view (with errors or typed values), else an empty one."""
    return form or row_form(kind, plan)


@register.filter
def row_plural(kind: RowKind) -> str:
    """``exit criterion`` → ``exit criteria``; ``risk`` → ``risks``."""
    if kind.label.endswith("criterion"):
        return kind.label[: -len("criterion")] + "criteria"
    return kind.label + "s"


@register.filter
def field_rows(form: RowForm, size: int) -> list[list[Any]]:
    """The form's fields in rows of ``size`` (each row a Pico ``.grid``)."""
    fields = list(form)
    return [fields[i : i + size] for i in range(0, len(fields), size)]


# One shown row of a list (``pilots/rows/list.html``), written here rather than as a template:
# the plan page shows up to eleven rows in each of its eleven lists, and the template engine's
# per-row variable lookups, tags and escaping were a third of the page's rendering time. Plain
# f-strings with every value escaped (``_e``): ``format_html`` costs most of what it saves.
_SAVED_NOW = (
    '<td class="row-actions"><small data-testid="row-saved-now">'
    "Saved now; your version is below.</small></td>"
)
_CSRF_TOKEN = CsrfTokenNode()


def _e(value: Any) -> str:
    """``value`` escaped for HTML text and attributes, as ``{{ value }}`` does."""
    return value if isinstance(value, SafeString) else html.escape(str(value))


@register.simple_tag(takes_context=True)
def display_row(context: template.Context, line: Line) -> SafeString:
    """``<tr>`` of ``line`` with its actions. Reads from the list's context: ``kind``,
    ``version``, ``can_edit``, ``ordered``, ``editing`` and ``conflict`` (the row being edited
    shows "Saved now" instead of its actions after a conflict) and the CSRF token."""
    link = '<td><a href="{}" rel="noopener noreferrer" target="_blank">{}</a></td>'
    cells = "".join(
        link.format(_e(c.href), _e(c.text)) if c.href else f"<td>{_e(c.text)}</td>"
        for c in line.cells
    )
    if not context.get("can_edit"):
        actions = ""
    elif context.get("conflict") and line.row.pk == context.get("editing"):
        actions = _SAVED_NOW
    else:
        version = _e(context.get("version", ""))
        move = ""
        if context.get("ordered"):
            # Move is a form (it works without JavaScript; htmx posts it with the button
            # pressed). No type attribute on the buttons (submit by default): Pico stretches
            # button[type=submit] full width.
            url = _e(line.move_url)
            up = " disabled" if line.first else ""
            down = " disabled" if line.last else ""
            move = (
                f'<form method="post" action="{url}" hx-post="{url}" class="inline-form">'
                f"{_CSRF_TOKEN.render(context)}"
                f'<input type="hidden" name="version" value="{version}">'
                '<button name="direction" value="up" class="secondary outline" title="Move up"'
                f' aria-label="Move up"{up}>↑</button>'
                '<button name="direction" value="down" class="secondary outline"'
                f' title="Move down" aria-label="Move down"{down}>↓</button></form>'
            )
        summary = line.short_summary
        label = context["kind"].label
        confirm = f"Remove this {label} “{summary}”?" if summary else f"Remove this {label}?"
        # Edit and Remove are links to pages of their own without JavaScript.
        edit, remove = _e(line.edit_url), _e(line.remove_url)
        actions = (
            f'<td class="row-actions">{move}'
            f'<a href="{edit}" hx-get="{edit}" hx-target="closest tr">Edit</a> '
            f'<a href="{remove}" class="secondary" hx-post="{remove}"'
            f""" hx-vals='{{"version": "{version}"}}' hx-confirm="{_e(confirm)}">Remove</a></td>"""
        )
    return mark_safe(f'<tr id="{_e(line.dom_id)}" data-testid="row">{cells}{actions}</tr>')  # noqa: S308 - every value escaped

"""Forms of the plan pages: starting a plan, and one form per single-valued section.

The forms parse what the person typed and show errors next to the fields; they never save.
Views hand ``cleaned_data`` to ``services.section_update`` (which validates again inside its
transaction) and place the service's errors back on the fields with ``add_error``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from accounts.forms import TimeZoneSelect, time_zone_choices
from accounts.models import Team, User
from accounts.ui import day_text
from pilots.models import (
    Cohort,
    EnvironmentAndData,
    MonitoringAndSupport,
    PilotPlan,
    PlanTemplate,
    RollbackPlan,
    Section,
)
from pilots.services import SECTION_FIELDS

# --- starting a plan ---------------------------------------------------------------------------


class TeamSelect(forms.Select):
    """The teams the person may start a plan in; the view checks the choice with the access
    layer, so a forged team id gets the access layer's answer (403/404), not "invalid choice"."""


def _team_field() -> forms.IntegerField:
    return forms.IntegerField(
        label="Team", widget=TeamSelect, error_messages={"required": "Choose the team."}
    )


class _PlanStartForm(forms.Form):
    how: ClassVar[str]

    def __init__(self, *args: Any, teams: Iterable[Team] = (), **kwargs: Any) -> None:
        kwargs.setdefault("prefix", self.how)
        super().__init__(*args, **kwargs)
        if "team" in self.fields:
            widget = self.fields["team"].widget
            assert isinstance(widget, forms.Select)
            widget.choices = [(team.pk, team.name) for team in teams]


class PlanFromScratchForm(_PlanStartForm):
    how = "scratch"
    team = _team_field()
    title = forms.CharField(max_length=200, help_text="e.g. Saved cards pilot, Region A")
    summary = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What the pilot should prove, in a sentence or two.",
    )


BUILTIN_TEMPLATE = "builtin"


class PlanFromTemplateForm(_PlanStartForm):
    """The built-in example (in the chosen team) or one of the teams' own templates (in its
    team, which must be the chosen one)."""

    how = "template"
    template = forms.ChoiceField(label="Template", initial=BUILTIN_TEMPLATE, required=False)
    team = _team_field()
    title = forms.CharField(
        max_length=200,
        required=False,
        label="Title",
        help_text="Leave empty for the template's own title.",
    )

    def __init__(self, *args: Any, templates: Iterable[PlanTemplate] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["template"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [
            (BUILTIN_TEMPLATE, "Built-in example (saved cards pilot)"),
            *[(str(t.pk), f"{t.name} · {t.team.name}") for t in templates],
        ]


class PlanCloneForm(_PlanStartForm):
    how = "clone"
    source = forms.IntegerField(
        label="Earlier plan",
        widget=forms.Select,
        error_messages={"required": "Choose the plan to copy."},
    )
    title = forms.CharField(
        max_length=200,
        required=False,
        label="Title of the copy",
        help_text="Leave empty for “<earlier title> (copy)”.",
    )

    def __init__(self, *args: Any, sources: Iterable[PilotPlan] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        widget = self.fields["source"].widget
        assert isinstance(widget, forms.Select)
        widget.choices = [
            (plan.pk, f"{plan.title} · {plan.team.name} · {plan.get_status_display()}")
            for plan in sources
        ]


PLAN_START_FORMS: dict[str, type[_PlanStartForm]] = {
    form.how: form for form in (PlanFromScratchForm, PlanFromTemplateForm, PlanCloneForm)
}


# --- sections ----------------------------------------------------------------------------------

TIMES_HELP = "Local times in the plan's time zone, separated by commas, e.g. 10:00, 16:00."
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class CheckTimesField(forms.CharField):
    """Daily check times typed as ``10:00, 16:00``; cleaned to a sorted list of ``time``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", TIMES_HELP)
        kwargs.setdefault("label", "Daily check times")
        super().__init__(max_length=500, **kwargs)
        self.error_messages["required"] = "Give at least one daily check time, e.g. 10:00, 16:00."

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(format_time(t) for t in value)
        return value

    def to_python(self, value: Any) -> list[dt.time]:  # type: ignore[override]
        text = super().to_python(value) or ""
        times = []
        for part in re.split(r"[,;\s]+", text):
            if not part:
                continue
            match = _TIME.match(part)
            hour, minute = (int(g) for g in match.groups()) if match else (-1, -1)
            if not (0 <= hour <= 23 and 0 <= minute <= 59):
                raise ValidationError(
                    f"“{part}” is not a time of day. Write times as HH:MM, separated by commas "
                    "(e.g. 10:00, 16:00).",
                    code="invalid",
                )
            times.append(dt.time(hour, minute))
        return sorted(set(times))


def format_time(value: dt.time) -> str:
    return value.strftime("%H:%M")


def _formfield(field: models.Field, **kwargs: Any) -> forms.Field | None:
    """Compact widgets the browser fills in well."""
    if isinstance(field, models.DateField):
        kwargs["widget"] = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    elif isinstance(field, models.TextField):
        kwargs["widget"] = forms.Textarea(attrs={"rows": 2})
    return field.formfield(**kwargs)


def team_members(team_id: int) -> models.QuerySet[User]:
    return User.objects.filter(memberships__team_id=team_id).order_by("full_name", "email")


NOT_A_MEMBER = "Choose a member of the plan's team."


class SectionForm(forms.ModelForm):
    """The fields of one single-valued section (``services.SECTION_FIELDS[key]``).

    A ModelForm only for its fields, labels and help texts: it never builds or saves the
    instance (``_post_clean`` is off), the service does that with ``cleaned_data``.
    """

    key: ClassVar[str]

    def __init__(self, *args: Any, plan: PilotPlan, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plan = plan
        for field in self.fields.values():
            if (
                isinstance(field, forms.ModelChoiceField)
                and field.queryset is not None
                and field.queryset.model is User
            ):
                field.queryset = team_members(plan.team_id)
                field.error_messages["invalid_choice"] = NOT_A_MEMBER
        # Filled by the view when a save was refused: what the other person saved, per field.
        self.theirs: dict[str, str] = {}

    def _post_clean(self) -> None:
        pass

    def add_error(self, field: str | None, error: Any) -> None:
        """Also takes a service's ValidationError: errors about fields this form does not
        show (or about the whole record) go on the form."""
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            placed: dict[str, list[ValidationError]] = {}
            for name, errors in error.error_dict.items():
                placed.setdefault(name if name in self.fields else NON_FIELD_ERRORS, []).extend(
                    errors
                )
            error = ValidationError(placed)
        super().add_error(field, error)
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["aria-invalid"] = "true"

    def focus(self) -> SectionForm:
        """Put the cursor in the first field with an error, else in the first field."""
        names = [n for n in self.fields if n in self.errors] or list(self.fields)
        self.fields[names[0]].widget.attrs["autofocus"] = True
        return self

    @property
    def rows(self) -> Iterator[tuple[forms.BoundField, str | None]]:
        """Each field with the other person's saved value after a conflict (else None)."""
        for bound in self:
            yield bound, self.theirs.get(bound.name) if self.theirs else None

    def saved_values(self, instance: models.Model) -> dict[str, str]:
        """``instance``'s values of this form's fields, as a person reads them."""
        return {name: display(instance, name) for name in self.fields}

    @classmethod
    def holder(cls, plan: PilotPlan) -> models.Model:
        spec = SECTION_FIELDS[cls.key]
        return plan if spec.holder is None else getattr(plan, spec.holder)


def display(instance: models.Model, name: str) -> str:
    value = getattr(instance, name)
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(format_time(t) for t in value) or "—"
    if isinstance(value, dt.date):
        return day_text(value)
    field = instance._meta.get_field(name)
    if getattr(field, "choices", None):
        return str(getattr(instance, f"get_{name}_display")())
    return str(value)


def _meta(model: type[models.Model], key: str) -> type:
    """A ModelForm's Meta: exactly the section's fields, with compact widgets."""
    attrs = {
        "model": model,
        "fields": list(SECTION_FIELDS[key].fields),
        "formfield_callback": staticmethod(_formfield),
    }
    return type("Meta", (), attrs)


class OverviewForm(SectionForm):
    key = Section.OVERVIEW
    Meta = _meta(PilotPlan, Section.OVERVIEW)


class TimelineForm(SectionForm):
    key = Section.TIMELINE
    Meta = _meta(PilotPlan, Section.TIMELINE)

    time_zone = forms.ChoiceField(
        label="Time zone", choices=time_zone_choices, widget=TimeZoneSelect
    )
    business_days = forms.IntegerField(
        label="Time-box (business days)",
        min_value=1,
        max_value=260,
        help_text="Weekends and the team's holidays do not count.",
    )
    check_times = CheckTimesField()
    minimum_observation_days = forms.IntegerField(
        label="Minimum observation (business days)",
        min_value=0,
        max_value=60,
        required=False,
        help_text="The decision page recommends nothing before this many business days of data.",
    )

    def clean_minimum_observation_days(self) -> int:
        """Left out (a form from before the setting existed): the plan's value stays."""
        value = self.cleaned_data.get("minimum_observation_days")
        return self.instance.minimum_observation_days if value is None else value

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["start_date"].help_text = "The first day of the pilot."


class OwnershipForm(SectionForm):
    key = Section.OWNERSHIP
    Meta = _meta(PilotPlan, Section.OWNERSHIP)


class ChangeControlForm(SectionForm):
    key = Section.CHANGE_CONTROL
    Meta = _meta(PilotPlan, Section.CHANGE_CONTROL)


class CohortForm(SectionForm):
    key = Section.COHORT
    Meta = _meta(Cohort, Section.COHORT)

    practical_bound = forms.DecimalField(
        label="Practical bound (percentage points)",
        min_value=0,
        max_value=50,
        max_digits=4,
        decimal_places=1,
        required=False,
        help_text="Flag the cohort as skewed only when a segment is off its intended share by "
        "more than this (and the test is significant). Default 5.",
    )

    def clean_practical_bound(self) -> Decimal:
        """Left out (a form from before the setting existed): the plan's value stays."""
        value = self.cleaned_data.get("practical_bound")
        return self.instance.practical_bound if value is None else value

    target_size = forms.IntegerField(
        label="Target size", min_value=1, required=False, help_text="How many people take part."
    )


class EnvironmentForm(SectionForm):
    key = Section.ENVIRONMENT
    Meta = _meta(EnvironmentAndData, Section.ENVIRONMENT)


class MonitoringForm(SectionForm):
    key = Section.MONITORING
    Meta = _meta(MonitoringAndSupport, Section.MONITORING)


class RollbackPlanForm(SectionForm):
    key = Section.ROLLBACK_PLAN
    Meta = _meta(RollbackPlan, Section.ROLLBACK_PLAN)


SECTION_FORMS: dict[str, type[SectionForm]] = {
    form.key: form
    for form in (
        OverviewForm,
        TimelineForm,
        OwnershipForm,
        ChangeControlForm,
        CohortForm,
        EnvironmentForm,
        MonitoringForm,
        RollbackPlanForm,
    )
}
assert set(SECTION_FORMS) == set(SECTION_FIELDS), "one form per single-valued section"


def section_form(key: str, plan: PilotPlan, data: Any = None) -> SectionForm:
    form_class = SECTION_FORMS[key]
    return form_class(data, instance=form_class.holder(plan), plan=plan)

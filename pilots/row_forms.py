"""The inline forms for the rows of list sections: one ModelForm per ``RowKind``, built from the
registry, so every list (scope items, criteria, steps, …) is edited the same way.

The forms parse and check what the person typed and show errors next to the fields; they never
save. Views hand ``cleaned_data`` to ``services.row_add`` / ``row_update``, which validate again
inside their transaction; ``RowForm.add_error`` places the service's errors on the fields too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from accounts.models import User
from catalogue.selectors import metric_list_for_team
from pilots.extensions import scope_autocomplete_url
from pilots.models import PilotPlan, ScopeItem
from pilots.services import RowKind

UNKNOWN_METRIC = "Unknown metric: choose one from the team's metric catalogue."
NOT_A_MEMBER = "Choose a member of the plan's team."


def _formfield(field: models.Field, **kwargs: Any) -> forms.Field | None:
    """Widgets for compact inline forms that the browser fills in well."""
    if isinstance(field, models.DateTimeField):  # a DateField too: test it first
        kwargs["widget"] = forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
        )
    elif isinstance(field, models.DateField):
        kwargs["widget"] = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    elif isinstance(field, models.DecimalField):
        # A text input, not type=number: the browser would silently drop "abc" and submit
        # nothing, where the server's "Enter a number." tells the author what is wrong.
        kwargs["widget"] = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})
    elif isinstance(field, models.TextField):
        kwargs["widget"] = forms.Textarea(attrs={"rows": 2})
    elif isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"  # "grafana.example/d/p01" means https
    return field.formfield(**kwargs)


def _team_members(plan: PilotPlan) -> models.QuerySet[User]:
    return User.objects.filter(memberships__team_id=plan.team_id).order_by("full_name", "email")


# The scope section's datalist of backlog references (pilots/sections/scope.html).
SCOPE_DATALIST_ID = "backlog-references"


class RowForm(forms.ModelForm):
    """Base of the per-kind forms made by ``row_form_class``."""

    row_kind: RowKind  # not "kind": scope items and entry criteria have a field of that name
    plan: PilotPlan

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            value = self.initial.get(name)
            if isinstance(value, Decimal):  # a saved 2.0000 is shown as the 2 that was typed
                self.initial[name] = format(value.normalize(), "f")
            if not isinstance(field, forms.ModelChoiceField):
                continue
            target = self._meta.model._meta.get_field(name).related_model
            if target._meta.label == settings.AUTH_USER_MODEL:
                field.queryset = _team_members(self.plan)
                field.error_messages["invalid_choice"] = NOT_A_MEMBER
            elif target._meta.label == "catalogue.MetricDefinition":
                field.queryset = metric_list_for_team(team_id=self.plan.team_id)
                field.error_messages["invalid_choice"] = UNKNOWN_METRIC
            else:  # a reference the registry does not know how to scope: offer nothing
                field.queryset = target._default_manager.none()
        if self._meta.model is ScopeItem and "reference" in self.fields:
            self._backlog_autocomplete()

    def _backlog_autocomplete(self) -> None:
        """A scope item picks a backlog item by reference: the input suggests the team's items
        (a ``<datalist>`` the scope section holds, filled over HTMX as one types;
        ``pilots.extensions.scope_autocomplete_url``). Without JavaScript it is a text field."""
        url = scope_autocomplete_url(self.plan)
        if url:
            self.fields["reference"].widget.attrs.update(
                {
                    "list": SCOPE_DATALIST_ID,
                    "autocomplete": "off",
                    "hx-get": url,
                    "hx-trigger": "input changed delay:250ms, focus once",
                    "hx-target": f"#{SCOPE_DATALIST_ID}",
                    "hx-swap": "innerHTML",
                    "hx-sync": "this:replace",
                }
            )

    def add_error(self, field: str | None, error: Any) -> None:
        """Like Form.add_error, but errors about fields this form does not have (from a
        service) are shown on the form. (A broken database rule arrives on its field already:
        core.constraints.)"""
        if field is None and isinstance(error, ValidationError):
            error = self._placed(error)
        super().add_error(field, error)
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["aria-invalid"] = "true"
                self.fields[name].widget.attrs["aria-describedby"] = f"{self[name].auto_id}_error"

    def _placed(self, error: ValidationError) -> ValidationError:
        errors: dict[str, list[ValidationError]] = {}
        items = error.error_dict.items() if hasattr(error, "error_dict") else [(None, [error])]
        for key, field_errors in items:
            for each in field_errors:
                for single in each.error_list:
                    name = key if key in self.fields else NON_FIELD_ERRORS
                    errors.setdefault(name or NON_FIELD_ERRORS, []).append(single)
        return ValidationError(errors)

    def focus(self) -> RowForm:
        """Put the cursor in the first field with an error, else the first field."""
        names = [n for n in self.fields if n in self.errors] or list(self.fields)
        if names:
            self.fields[names[0]].widget.attrs["autofocus"] = True
        return self


def row_form_class(kind: RowKind, plan: PilotPlan) -> type[RowForm]:
    """A ModelForm for ``kind.model`` with exactly ``kind.fields``, its choices of people and
    metrics limited to ``plan``'s team."""
    meta = type(
        "Meta",
        (),
        {
            "model": kind.model,
            "fields": list(kind.fields),
            "formfield_callback": staticmethod(_formfield),
        },
    )
    attrs = {"Meta": meta, "row_kind": kind, "plan": plan}
    return type(f"{kind.model.__name__}RowForm", (RowForm,), attrs)


def row_form(
    kind: RowKind, plan: PilotPlan, *, data: Any = None, row: models.Model | None = None
) -> RowForm:
    """The add form (``row`` None) or the edit form of ``row``. Each has its own prefix, so
    the many forms of a plan page never share an HTML id."""
    instance = row if row is not None else kind.model(plan=plan)
    prefix = kind.slug if row is None else f"{kind.slug}-{row.pk}"
    return row_form_class(kind, plan)(data, instance=instance, prefix=prefix)

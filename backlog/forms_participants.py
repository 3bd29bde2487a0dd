"""Forms of the participants page and the public enrolment page. They bound what a person can
type; the services (``backlog.participants.services``) decide the rest, in the same words as the
API."""

from __future__ import annotations

from django import forms

from backlog.models import DIMENSIONS, Participant
from pilots.models import CohortSegment


def _segment_fields(form: forms.Form, allowed: dict[str, list[str]], *, blank: str) -> None:
    """One select per segment dimension the plan uses, its values the plan's."""
    for dimension in DIMENSIONS:
        if dimension in allowed:
            form.fields[dimension] = forms.ChoiceField(
                label=str(CohortSegment.Dimension(dimension).label),
                choices=[("", blank), *((v, v) for v in allowed[dimension])],
                required=False,  # the service names a missing one, in its words
            )


class ParticipantForm(forms.Form):
    """The team adds one person by hand."""

    name = forms.CharField(max_length=200, required=False)
    email = forms.EmailField(label="E-mail", max_length=254, required=False)
    external_ref = forms.CharField(
        label="External reference", max_length=100, required=False, help_text="e.g. a customer id"
    )
    consent = forms.BooleanField(
        label="The person agreed to take part (the team records their consent now)",
        required=False,
    )
    consent_text = forms.CharField(
        label="What they agreed to",
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: object, allowed: dict[str, list[str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        _segment_fields(self, allowed, blank="—")


class EnrolForm(forms.Form):
    """The public enrolment page: a person opts in."""

    name = forms.CharField(label="Your name", max_length=200)
    email = forms.EmailField(
        label="Your e-mail (optional)",
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    consent = forms.BooleanField(required=False)

    def __init__(
        self, *args: object, allowed: dict[str, list[str]], consent_label: str, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        _segment_fields(self, allowed, blank="Choose…")
        self.fields["consent"].label = consent_label
        self.order_fields(["name", "email", *DIMENSIONS, "consent"])


class ParticipantFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        max_length=200,
        widget=forms.TextInput(
            attrs={"placeholder": "Name, e-mail or reference", "type": "search"}
        ),
    )
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Participant.Status.choices]
    )

    def __init__(self, *args: object, allowed: dict[str, list[str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        _segment_fields(self, allowed, blank="Any")


class EnrolmentLinkForm(forms.Form):
    consent_text = forms.CharField(
        label="Consent text",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What a person agrees to by opting in; shown on the enrolment page.",
    )


class VersionForm(forms.Form):
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file", help_text="Columns as in the export; none is required."
    )

"""Forms of the review panels: a review's notes and checklist, and a lifecycle step."""

from __future__ import annotations

from typing import Any

from django import forms

from pilots.models import Review
from pilots.review import ReviewSpec

ANSWER_CHOICES = [("yes", "Yes"), ("no", "No"), ("na", "Not applicable")]


class ReviewForm(forms.Form):
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    concerns = forms.CharField(
        label="Open concerns",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="While a concern is open, the review cannot be signed off.",
    )

    def __init__(self, *args: Any, spec: ReviewSpec, review: Review | None, **kwargs: Any):
        if not args or args[0] is None:
            answers = review.checklist if review else {}
            notes = review.checklist_notes if review else {}
            kwargs.setdefault(
                "initial",
                {
                    "notes": review.notes if review else "",
                    "concerns": review.concerns if review else "",
                    **{f"q_{key}": answers.get(key, "") for key, _ in spec.checklist},
                    **{f"n_{key}": notes.get(key, "") for key, _ in spec.checklist},
                },
            )
        super().__init__(*args, **kwargs)
        self.spec = spec
        for key, question in spec.checklist:
            self.fields[f"q_{key}"] = forms.ChoiceField(
                label=question, choices=ANSWER_CHOICES, required=False, widget=forms.RadioSelect
            )
            self.fields[f"n_{key}"] = forms.CharField(
                label="Note", required=False, help_text="Required when the answer is no."
            )

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "notes": data["notes"],
            "concerns": data["concerns"],
            "checklist": {key: data[f"q_{key}"] for key, _ in self.spec.checklist},
            "checklist_notes": {key: data[f"n_{key}"] for key, _ in self.spec.checklist},
        }

    def checklist_fields(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        """(answer, note) per question."""
        return [(self[f"q_{key}"], self[f"n_{key}"]) for key, _ in self.spec.checklist]


class TransitionForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000)
    override_gaps = forms.BooleanField(required=False)
    confirm_early_start = forms.BooleanField(required=False)


class TimeboxExtendForm(forms.Form):
    new_end_date = forms.DateField(
        label="New last day",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the new last day as a date (YYYY-MM-DD)."},
    )
    reason = forms.CharField(label="Why the pilot needs longer", required=False, max_length=2000)

"""The backlog page's forms: add or edit an item, filter the list, change many, import."""

from __future__ import annotations

from django import forms

from backlog.models import BacklogItem


class ItemForm(forms.ModelForm):
    """Add or edit an item. The service validates the whole item (severity for defects only)."""

    class Meta:
        model = BacklogItem
        fields = ["title", "kind", "severity", "status", "estimate", "reference", "description"]
        labels = {"kind": "Type", "reference": "Reference (optional)"}
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["severity"].choices = [("", "—"), *BacklogItem.Severity.choices]
        self.fields["reference"].required = False


class EditForm(ItemForm):
    version = forms.IntegerField(widget=forms.HiddenInput)


def _choices(label: str, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("", f"Any {label}"), *choices]


class FilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Reference or title", "type": "search"}),
    )
    type = forms.ChoiceField(required=False, choices=_choices("type", BacklogItem.Kind.choices))
    severity = forms.ChoiceField(
        required=False, choices=_choices("severity", BacklogItem.Severity.choices)
    )
    status = forms.ChoiceField(
        required=False, choices=_choices("status", BacklogItem.Status.choices)
    )
    origin = forms.ChoiceField(
        required=False, choices=_choices("origin", BacklogItem.Origin.choices)
    )
    plan = forms.ChoiceField(required=False, choices=[("", "Any plan")])

    def __init__(self, *args: object, plans: list[tuple[int, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["plan"].choices = [("", "Any plan"), *((str(pk), t) for pk, t in plans)]


class BulkStatusForm(forms.Form):
    items = forms.TypedMultipleChoiceField(
        coerce=int, choices=[], error_messages={"required": "Select at least one item."}
    )
    status = forms.ChoiceField(choices=BacklogItem.Status.choices)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Any id: the service refuses ids that are not the team's, naming them.
        data = self.data.getlist("items") if hasattr(self.data, "getlist") else []
        self.fields["items"].choices = [(v, v) for v in data]


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file", help_text="Columns as in the export; only title is required."
    )


class RaiseForm(forms.Form):
    """Create a backlog item from something in a pilot (``backlog.change_control``)."""

    title = forms.CharField(max_length=200)
    kind = forms.ChoiceField(label="Type", choices=BacklogItem.Kind.choices)
    severity = forms.ChoiceField(
        required=False,
        choices=[("", "—"), *BacklogItem.Severity.choices],
        help_text="Defects only: P1 to P4. A defect counts towards the running pilot's metrics.",
    )
    estimate = forms.IntegerField(
        required=False, min_value=0, max_value=32767, help_text="Story points, or leave empty."
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the pilot calls for it: the plan's change-control log keeps it.",
    )
    at_top = forms.BooleanField(required=False, label="Put it at the top of the backlog")
    source = forms.CharField(widget=forms.HiddenInput)
    source_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    finding_text = forms.CharField(required=False, max_length=5000, widget=forms.HiddenInput)


class ReprioritiseForm(forms.Form):
    """Move an existing item because of a pilot, with a reason."""

    TOP, BOTTOM, ABOVE = "top", "bottom", "above"

    reference = forms.CharField(
        label="Item", max_length=30, help_text="Its reference, e.g. US-145."
    )
    to = forms.ChoiceField(
        label="Move it",
        choices=[
            (TOP, "To the top"),
            (ABOVE, "Just above another item"),
            (BOTTOM, "To the bottom"),
        ],
    )
    above = forms.CharField(
        label="Above item", max_length=30, required=False, help_text="Its reference."
    )
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why: the change-control log keeps it."},
    )
    source = forms.CharField(widget=forms.HiddenInput)
    source_id = forms.IntegerField(required=False, widget=forms.HiddenInput)

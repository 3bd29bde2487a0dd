from django import forms

from catalogue.models import MAX_EXPECTED_INTERVAL_MINUTES, MetricDefinition


class MetricForm(forms.Form):
    key = forms.SlugField(max_length=50, help_text="Used by integrations, e.g. checkout_abandons")
    name = forms.CharField(max_length=100)
    unit = forms.CharField(max_length=20, required=False, help_text="e.g. ms, %, count")
    kind = forms.ChoiceField(choices=MetricDefinition.Kind.choices)
    direction = forms.ChoiceField(choices=MetricDefinition.Direction.choices)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    expected_interval_minutes = forms.IntegerField(
        label="Expected interval (minutes)",
        min_value=1,
        max_value=MAX_EXPECTED_INTERVAL_MINUTES,
        required=False,
        help_text="How often samples arrive: 5 for a per-minute gauge, 1440 for a daily score "
        "(empty: 5 for a gauge, 60 for a count, 1440 for a score). A rollback trigger on it "
        "turns “stale” when the newest sample is older.",
    )

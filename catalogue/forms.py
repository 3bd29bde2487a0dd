from django import forms

from catalogue.models import MetricDefinition


class MetricForm(forms.Form):
    key = forms.SlugField(max_length=50, help_text="Used by integrations, e.g. checkout_abandons")
    name = forms.CharField(max_length=100)
    unit = forms.CharField(max_length=20, required=False, help_text="e.g. ms, %, count")
    kind = forms.ChoiceField(choices=MetricDefinition.Kind.choices)
    direction = forms.ChoiceField(choices=MetricDefinition.Direction.choices)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

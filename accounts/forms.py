from __future__ import annotations

import zoneinfo
from functools import cache

from django import forms
from django.conf import settings

from accounts.models import Membership


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100, label="Team name")
    time_zone = forms.ChoiceField(
        label="Time zone", help_text="Daily checks and business days use this zone."
    )
    role = forms.ChoiceField(
        label="Your role", choices=Membership.Role.choices, initial=Membership.Role.PRODUCT_OWNER
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = time_zone_choices()
        field.initial = settings.TIME_ZONE

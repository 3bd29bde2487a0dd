from __future__ import annotations

import zoneinfo
from functools import cache

from django import forms
from django.conf import settings
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.models import Membership


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


@cache
def _zone_options() -> dict[str, SafeString]:
    return {
        name: format_html('<option value="{}">{}</option>', name, label)
        for name, label in time_zone_choices()
    }


class TimeZoneSelect(forms.Select):
    """The ~600 time zones as a ``<select>`` built by joining cached ``<option>`` strings:
    Django's Select renders a template per option, which was most of the home page's time
    (its team form). Same markup, one option selected. ``blank_label``: a first option with an
    empty value (a zone that may be left unset)."""

    blank_label = ""

    def render(
        self,
        name: str,
        value: object,
        attrs: dict[str, object] | None = None,
        renderer: object = None,
    ) -> SafeString:
        # As django/forms/widgets/select.html and attrs.html write them, in this order.
        final = self.build_attrs(self.attrs, attrs)
        attributes = format_html_join(
            "",
            "{}",
            (
                (format_html(" {}", key) if val is True else format_html(' {}="{}"', key, val),)
                for key, val in final.items()
                if val is not False
            ),
        )
        selected = set(self.format_value(value))
        options = format_html_join(
            "",
            "{}",
            (
                (format_html('<option value="{}" selected>{}</option>', zone, zone),)
                if zone in selected
                else (option,)
                for zone, option in _zone_options().items()
            ),
        )
        if self.blank_label:
            blank = format_html(
                '<option value=""{}>{}</option>',
                "" if selected - {""} else " selected",
                self.blank_label,
            )
            options = format_html("{}{}", blank, options)
        return format_html('<select name="{}"{}>{}</select>', name, attributes, options)


class UnsetTimeZoneSelect(TimeZoneSelect):
    blank_label = "Not set: show each time on its plan's or team's clock only"


class UserTimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Your time zone",
        required=False,
        help_text="Times stay on the clock of their plan or team; where yours reads differently, "
        "hovering over a time shows it on your clock too.",
        widget=UnsetTimeZoneSelect,
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Not set"), *time_zone_choices()]


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100, label="Team name")
    time_zone = forms.ChoiceField(
        label="Time zone",
        help_text="Daily checks and business days use this zone.",
        widget=TimeZoneSelect,
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

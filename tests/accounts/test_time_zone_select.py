"""The time zone ``<select>`` (issue #15: the home page's team form spent most of its time
rendering ~600 options through a template each): the same markup as Django's Select."""

from __future__ import annotations

import re

import pytest
from django import forms

from accounts.forms import TeamCreateForm, TimeZoneSelect, time_zone_choices


def _compact(html: str) -> str:
    return re.sub(r">\s+<", "><", str(html)).strip()


@pytest.mark.parametrize("value", ["Europe/Berlin", "UTC", "", None, "Not/AZone"])
def test_renders_what_djangos_select_renders(value):
    attrs = {"id": "id_time_zone", "required": True, "aria-describedby": "id_time_zone_helptext"}
    ours = TimeZoneSelect(choices=time_zone_choices()).render("time_zone", value, attrs)
    django = forms.Select(choices=time_zone_choices()).render("time_zone", value, attrs)
    assert _compact(ours) == _compact(django)


def test_the_team_form_proposes_the_site_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    html = str(TeamCreateForm()["time_zone"])
    assert html.startswith('<select name="time_zone"')
    assert '<option value="Europe/Berlin" selected>Europe/Berlin</option>' in html
    assert html.count("<option") == len(time_zone_choices())

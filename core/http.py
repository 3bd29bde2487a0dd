"""Shared HTTP bits for the HTML views."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

# An invalid form is answered with 422 everywhere, for HTMX and plain POSTs alike; base.html's
# htmx-config tells htmx to swap 422 responses so the errors appear on the fields.
UNPROCESSABLE = 422


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails

"""The request type of views behind ``@login_required``."""

from __future__ import annotations

from accounts.models import User
from core.http import HtmxHttpRequest


class AuthedHtmxRequest(HtmxHttpRequest):
    """A request behind ``@login_required``: ``user`` is a real ``User``."""

    user: User  # type: ignore[assignment]

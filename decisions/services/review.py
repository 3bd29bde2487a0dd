"""STUB (h-record): the review helper owns this module; the lead takes the real one at merge.

Only the signature ``decisions.services.decision`` calls is here, so every first decision can
open the post-pilot review before the review lands."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pilots.models import PilotPlan


def post_pilot_review_open(*, plan: PilotPlan, decided_at: dt.datetime) -> Any:
    return None

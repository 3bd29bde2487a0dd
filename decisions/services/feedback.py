"""Cohort feedback arriving through a plan's public link: stored, and counted in the CSAT and NPS
metrics the moment it is stored.

``feedback_submit`` serves the public page (``decisions.views_feedback``) and the widget API
(``decisions.api.feedback``) alike. It crosses two apps of one layer, ``backlog`` (the feedback)
and ``metrics`` (the samples), so it lives here, above both. In one transaction it

1. finds the link: unknown → ``FeedbackLinkUnknown`` (404); revoked, or the plan not Running →
   ``FeedbackLinkClosed`` (410);
2. checks the answer at the edge (``backlog.services_feedback.feedback_clean``: 400 naming the
   field) and stores it (``feedback_store``);
3. stores a ``csat`` and/or ``nps`` sample for the plan through ``metrics.ingest.samples_ingest``
   (the one ingestion entry point: rollups updated, trigger evaluation queued after commit),
   observed at the feedback's time, source ``feedback``, sample id ``feedback-<id>``. A score
   the respondent left out gives no sample. The samples are stored whether or not the plan has
   a criterion or trigger on CSAT or NPS: they show on the Monitoring page and count for any
   criterion added later. A metric key missing from the team's catalogue gets no sample.
   Should ingestion refuse (the pilot window is over while the plan is still Running), nothing
   is stored and the link answers "closed".

Rate limits (``feedback_rate_check``) are counted before anything else, per client address per
link and per link, in Redis (``core.ratelimit``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from backlog.models import Feedback, FeedbackToken
from backlog.selectors_feedback import feedback_token_find
from backlog.services_feedback import feedback_clean, feedback_store
from catalogue.models import MetricDefinition
from core.exceptions import ServiceError
from core.ratelimit import LinkRefusal, public_link_hit
from metrics.ingest import IngestRejected, samples_ingest
from pilots.models import PilotPlan

SOURCE = "feedback"
METRICS = {"csat": "csat", "nps": "nps"}  # answer field → metric key in the catalogue


class FeedbackLinkUnknown(ServiceError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__(
            "This feedback link does not exist. Check the address, or ask the team for the link."
        )


class FeedbackLinkClosed(ServiceError):
    status_code = 410


class FeedbackRateLimited(ServiceError):
    status_code = 429

    def __init__(self, refusal: LinkRefusal):
        super().__init__(refusal.words("answers"))
        self.retry_after = refusal.retry_after


def feedback_link_open(token: str) -> FeedbackToken:
    """The live link ``token`` of a Running plan, or why not (404 / 410)."""
    found = feedback_token_find(token)
    if found is None:
        raise FeedbackLinkUnknown()
    if found.revoked_at is not None:
        raise FeedbackLinkClosed(
            "This feedback link is no longer in use. Ask the team for the current link."
        )
    if found.plan.status != PilotPlan.Status.RUNNING:
        raise FeedbackLinkClosed(
            f"“{found.plan.title}” is not collecting feedback now: feedback is taken while the "
            "pilot is running. Thank you all the same."
        )
    return found


def feedback_rate_check(*, token: str, address: str) -> None:
    """Count one submission from ``address`` through ``token``; ``FeedbackRateLimited`` (429,
    with the seconds to wait) beyond ``FEEDBACK_RATE_PER_ADDRESS`` per address per link or
    ``FEEDBACK_RATE_PER_TOKEN`` per link within ``FEEDBACK_RATE_WINDOW`` seconds."""
    refusal = public_link_hit(
        prefix=settings.FEEDBACK_RATE_PREFIX,
        token=token,
        address=address,
        per_address=settings.FEEDBACK_RATE_PER_ADDRESS,
        per_link=settings.FEEDBACK_RATE_PER_TOKEN,
        window=settings.FEEDBACK_RATE_WINDOW,
    )
    if refusal is not None:
        raise FeedbackRateLimited(refusal)


def _metric_keys(plan: PilotPlan) -> set[str]:
    return set(
        MetricDefinition.objects.filter(
            Q(team__isnull=True) | Q(team_id=plan.team_id), key__in=METRICS.values()
        ).values_list("key", flat=True)
    )


def _samples(feedback: Feedback, keys: set[str]) -> list[dict[str, Any]]:
    observed_at = feedback.created_at.astimezone(dt.UTC).isoformat()
    rows = []
    for field, key in METRICS.items():
        value = getattr(feedback, field)
        if value is not None and key in keys:
            rows.append(
                {
                    "metric": key,
                    "observed_at": observed_at,
                    "value": value,
                    "source": SOURCE,
                    "id": f"feedback-{feedback.pk}-{key}",
                }
            )
    return rows


@transaction.atomic
def feedback_submit(
    *, token: str, values: Mapping[str, Any], at: dt.datetime | None = None
) -> Feedback:
    """Store an answer sent through the public link ``token`` and feed the plan's CSAT and NPS
    metrics, all or nothing. Raises ``FeedbackLinkUnknown`` (404), ``FeedbackLinkClosed`` (410)
    or ``ValidationError`` naming the field (400). ``at`` is when the answer arrived (default:
    now; the demo backdates its answers, which must still fall inside the pilot window)."""
    link = feedback_link_open(token)
    cleaned = feedback_clean(values)
    feedback = feedback_store(token=link, values=cleaned, at=at)
    plan = link.plan
    scored = cleaned["csat"] is not None or cleaned["nps"] is not None
    rows = _samples(feedback, _metric_keys(plan)) if scored else []
    if rows:
        try:
            samples_ingest(team=plan.team, plan=plan, rows=rows, now=feedback.created_at)
        except IngestRejected as exc:
            # Running, but outside its pilot window: the metrics would not take the score, and
            # leaving this block by the exception takes the stored feedback back too.
            raise FeedbackLinkClosed(
                f"“{plan.title}” is not collecting feedback now. Thank you all the same."
            ) from exc
    return feedback

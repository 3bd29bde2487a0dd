"""The daily digest: after the first check of a plan's local day, tell the team where it stands.

One digest per (plan, local date), guaranteed by ``DailyDigest``'s unique constraint and an
``INSERT … ON CONFLICT DO NOTHING``: two runs of the same day finishing at once (a 10:00 run
re-executed by the sweep while the 16:00 one completes) send one digest. It is written in the
check run's own transaction, so a run that rolls back sends nothing and the retried run sends
it.

The digest is an ordinary notification (in-app, and e-mailed to those who asked) whose text is
the summary, kept within the notification's 300 characters: what is met, what is not, what
changed since the last check of an earlier day, and the business days left. The link opens the
plan's check history, where every figure behind it is.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from django.db import connection
from django.urls import reverse

from accounts.models import Membership, Notification, User
from accounts.services import notify_each
from accounts.ui import local_time, plural
from metrics.models import CheckRun, CriterionResult, DailyDigest, SignalEpisode
from pilots import wording
from pilots.models import PilotPlan
from pilots.selectors import plan_days_left

Verdict = CriterionResult.Verdict
MESSAGE_MAX = 300
_VERDICT_WORDS = {
    Verdict.MET: "met",
    Verdict.NOT_MET: "not met",
    Verdict.NOT_ENOUGH_EVIDENCE: "not enough evidence",
}

# One digest per (plan, local date): the first run of the statement claims it; the others (a
# second run of the same day in the same chunk, a day already sent) get nothing back.
_CLAIM_SQL = """
INSERT INTO metrics_dailydigest (plan_id, local_date, run_id, sent_at)
SELECT plan_id, local_date, run_id, now()
  FROM unnest(%s::bigint[], %s::date[], %s::bigint[]) WITH ORDINALITY
       AS d(plan_id, local_date, run_id, i)
 ORDER BY i
ON CONFLICT (plan_id, local_date) DO NOTHING
RETURNING id, run_id
"""


def _claim(runs: Sequence[CheckRun]) -> dict[int, int]:
    """``{run id: digest id}`` of the runs whose day had no digest yet (one statement)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            [[r.plan_id for r in runs], [r.local_date for r in runs], [r.pk for r in runs]],
        )
        return {run_id: digest_id for digest_id, run_id in cursor.fetchall()}


_PREVIOUS_SQL = """
SELECT r.run_id, p.id
  FROM unnest(%s::bigint[], %s::date[], %s::bigint[]) AS r(plan_id, local_date, run_id)
 CROSS JOIN LATERAL (
    SELECT c.id FROM metrics_checkrun AS c
     WHERE c.plan_id = r.plan_id AND c.status = 'done' AND c.local_date < r.local_date
     ORDER BY c.due_at DESC
     LIMIT 1
 ) AS p
"""


def _previous_day_runs(runs: Sequence[CheckRun]) -> dict[int, CheckRun]:
    """For each run, the last done check of an earlier local day (what "since yesterday"
    compares with), with its results: three queries however many runs."""
    with connection.cursor() as cursor:
        cursor.execute(
            _PREVIOUS_SQL,
            [[r.plan_id for r in runs], [r.local_date for r in runs], [r.pk for r in runs]],
        )
        pairs = cursor.fetchall()
    previous = CheckRun.objects.prefetch_related("results").in_bulk([pk for _, pk in pairs])
    return {run_id: previous[pk] for run_id, pk in pairs}


def _key(result: CriterionResult) -> object:
    # The live criterion when it still exists; its position for results of deleted criteria.
    return result.criterion_id if result.criterion_id is not None else ("position", result.position)


def verdict_changes(
    *, before: Sequence[CriterionResult], after: Sequence[CriterionResult]
) -> list[tuple[CriterionResult, str | None]]:
    """``(result now, verdict before)`` for each criterion whose verdict changed; a criterion
    that was not there before has ``None``."""
    previous = {_key(r): r.verdict for r in before}
    return [(r, previous.get(_key(r))) for r in after if previous.get(_key(r)) != r.verdict]


def _join(labels: list[str]) -> str:
    return "; ".join(labels)


def digest_message(
    *,
    plan: PilotPlan,
    run: CheckRun,
    results: Sequence[CriterionResult],
    previous: CheckRun | None,
    previous_results: Sequence[CriterionResult],
    days_left: int | None,
    signals: Sequence[str] = (),
) -> str:
    """The digest's text, at most 300 characters: detail first, shortened to counts if long.

    "“Checkout v2” Tue 14 Jan: 3 of 5 criteria met. Not met: p95 latency percentile 95 < 300 ms.
    Not enough evidence: CSAT mean ≥ 4.2 / 5. Since Mon 13 Jan: P1 defects total = 0 now met.
    6 business days left."

    ``signals``: the rollback triggers that cannot judge now ("Any P1 defect (no data)"): a
    digest never reads as all green while a trigger is blind.
    """
    met = [r for r in results if r.verdict == Verdict.MET]
    not_met = [r for r in results if r.verdict == Verdict.NOT_MET]
    unsure = [r for r in results if r.verdict == Verdict.NOT_ENOUGH_EVIDENCE]
    changes = verdict_changes(before=previous_results, after=results) if previous else []
    day = local_time(run.local_date, None, "day")
    head = f"“{plan.title}” {day}: {len(met)} of {len(results)} criteria met."
    if not results:
        head = f"“{plan.title}” {day}: no exit criteria to check."
    tail = f" {timebox_left_text(plan=plan, today=run.local_date, days_left=days_left)}".rstrip()
    since = f" Since {local_time(previous.local_date, None, 'day')}:" if previous else ""

    def detailed(level: int) -> str:
        """Level 0: every label; 1: labels of not-met only; 2: counts only."""
        parts = [head]
        if not_met:
            parts.append(
                f" Not met: {_join([r.label for r in not_met])}."
                if level < 2
                else f" {len(not_met)} not met."
            )
        if unsure:
            parts.append(
                f" Not enough evidence: {_join([r.label for r in unsure])}."
                if level < 1
                else f" {len(unsure)} without enough evidence."
            )
        if signals:
            parts.append(
                f" Triggers without fresh data: {_join(list(signals))}."
                if level < 2
                else f" {plural(len(signals), 'trigger')} without fresh data."
            )
        if changes:
            if level < 1:
                text = _join(
                    [
                        f"{r.label} now {_VERDICT_WORDS[Verdict(r.verdict)]}"
                        + ("" if old is not None else " (new)")
                        for r, old in changes
                    ]
                )
            else:
                text = f"{plural(len(changes), 'verdict')} changed"
            parts.append(f"{since} {text}.")
        elif previous:
            parts.append(f"{since} no change.")
        parts.append(tail)
        return "".join(parts)

    for level in range(3):
        message = detailed(level)
        if len(message) <= MESSAGE_MAX:
            return message
    return message[: MESSAGE_MAX - 1] + "…"


def timebox_left_text(*, plan: PilotPlan, today: dt.date, days_left: int | None) -> str:
    """What is left of the time-box on ``today``: "6 business days left.", "Last business day
    of the time-box." or "The time-box ended on Fri 11 Dec." ("" without dates)."""
    if days_left is None:
        return ""
    if plan.end_date is not None and today > plan.end_date:
        return f"The time-box ended on {local_time(plan.end_date, None, 'day')}."
    if plan.end_date is not None and today == plan.end_date:
        return "Last business day of the time-box."
    return f"{plural(days_left, 'business day')} left."


def _signal_words(episode: SignalEpisode) -> str:
    return f"{wording.trigger_text(episode.trigger)} ({episode.get_kind_display().lower()})"


def signal_labels(*, plan_id: int) -> list[str]:
    """The plan's open no-data / stale episodes as digest words, one query."""
    return _signal_labels([plan_id]).get(plan_id, [])


def _signal_labels(plan_ids: Sequence[int]) -> dict[int, list[str]]:
    episodes = (
        SignalEpisode.objects.filter(plan_id__in=plan_ids, ended_at__isnull=True)
        .select_related("trigger__metric")
        .order_by("plan_id", "trigger__position", "trigger_id")
    )
    by_plan: dict[int, list[str]] = defaultdict(list)
    for e in episodes:
        by_plan[e.plan_id].append(_signal_words(e))
    return by_plan


def digest_after_run(*, run: CheckRun, results: Sequence[CriterionResult]) -> DailyDigest | None:
    """Send the team the day's digest if ``run`` is the plan's first done check of its local
    date; ``None`` when that digest was already sent. Call inside the run's transaction."""
    sent = digests_after_runs([(run, results)])
    return sent[0] if sent else None


def digests_after_runs(
    runs: Sequence[tuple[CheckRun, Sequence[CriterionResult]]],
) -> list[DailyDigest]:
    """:func:`digest_after_run` for a chunk of runs (each with its results), in a constant
    number of queries: the claim, the plans with their teams' holidays, the previous days'
    runs with their results, the open signal episodes, the team members, one insert of every
    notification. Call inside the runs' transaction."""
    if not runs:
        return []
    claimed = _claim([run for run, _ in runs])
    todo = [(run, results) for run, results in runs if run.pk in claimed]
    if not todo:
        return []
    plans = (
        PilotPlan.objects.select_related("team")
        .prefetch_related("team__holidays")
        .in_bulk({run.plan_id for run, _ in todo})
    )
    previous = _previous_day_runs([run for run, _ in todo])
    signals = _signal_labels(list(plans))
    members: dict[int, list[User]] = defaultdict(list)
    memberships = Membership.objects.filter(
        team_id__in={plan.team_id for plan in plans.values()}, user__is_active=True
    ).select_related("user")
    for membership in memberships:
        members[membership.team_id].append(membership.user)
    messages: list[tuple[User, str, str]] = []
    sent = []
    for run, results in todo:
        plan = plans[run.plan_id]
        before = previous.get(run.pk)
        message = digest_message(
            plan=plan,
            run=run,
            results=results,
            previous=before,
            previous_results=list(before.results.all()) if before else [],
            days_left=plan_days_left(plan, today=run.local_date),
            signals=signals.get(plan.pk, []),
        )
        url = reverse("metrics:checks", args=[plan.pk])
        messages += [(user, message, url) for user in members[plan.team_id]]
        sent.append(
            DailyDigest(pk=claimed[run.pk], plan_id=run.plan_id, local_date=run.local_date, run=run)
        )
    notify_each(kind=Notification.Kind.DAILY_DIGEST, items=messages)
    return sent

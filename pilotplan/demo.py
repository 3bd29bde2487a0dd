"""Demo data for ``manage.py seed_demo``: teams, one user per role in each, and plans in every
state of the lifecycle, some complete and some still being written.

Idempotent: running it twice leaves the same rows (users are matched by e-mail, teams by slug,
plans by team and title; an existing plan is left as it is, with whatever was done to it since).
Passwords are reset to ``DEMO_PASSWORD`` each run so the README's logins always work.

Plan content, reviews, sign-offs and lifecycle steps go through the same services as the browser
and the API, with the demo team's members as the actors (each step inside a ``pghistory`` context
naming its actor), so demo plans obey every rule a real one does and their timelines read like a
real pilot's: submitted by the Product Owner, entry criteria confirmed by the Scrum Master and the
developer, each review filled in and signed by its role, approved, started, evaluated, decided and
closed.

The learning loop is seeded the same way: the Checkout team's backlog through the backlog services
(only into an empty backlog), and for its running pilot the enrolment link and participants (a
CSV import, opt-ins through the link, two withdrawals; skewed towards frequent shoppers, so the
representativeness check has something to say), the feedback link and the cohort's answers
(through the public page's service, so they feed CSAT and NPS), triage, and the items the pilot
raised through change control. Each part is skipped when its rows exist already.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pghistory
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Team, User
from accounts.services import membership_set
from backlog.change_control import backlog_item_raise, backlog_item_reprioritise
from backlog.models import (
    BacklogItem,
    ChangeControlEntry,
    EnrolmentLink,
    FeedbackToken,
    Participant,
)
from backlog.participants.exchange import participants_csv_import
from backlog.participants.services import (
    ENROL_STATES,
    enrolment_link_save,
    participant_enrol,
    participant_withdraw_by_token,
    plan_segment_values,
)
from backlog.services import backlog_item_create
from backlog.services_feedback import (
    feedback_link_issue,
    feedback_to_backlog_item,
    feedback_triage,
)
from catalogue.selectors import metric_by_key
from decisions.evidence import decision_evidence
from decisions.models import PostPilotReview
from decisions.services.decision import decision_record
from decisions.services.feedback import feedback_submit
from decisions.services.review import post_pilot_review_complete, post_pilot_review_save
from metrics.demo import HISTORY_GAP, demo_metrics_seed
from metrics.ingest import samples_store
from metrics.slots import plan_window
from metrics.triggers import triggers_evaluate_plan
from pilots import timeline
from pilots.models import PilotPlan, Review, ScopeItem, Section
from pilots.review import REVIEWS
from pilots.services import (
    environment_set_compliance,
    plan_create,
    plan_create_from_template,
    row_add,
    row_kind,
    row_remove,
    row_update,
    section_update,
    section_versions,
)
from pilots.services.lifecycle import plan_transition
from pilots.services.review import review_update, signoff_create

DEMO_PASSWORD = "pilotplan-demo"  # noqa: S105 - documented demo password, demo data only

ROLE_PREFIX = {
    Membership.Role.PRODUCT_OWNER: "po",
    Membership.Role.SCRUM_MASTER: "sm",
    Membership.Role.DEVELOPER: "dev",
    Membership.Role.DEVOPS: "devops",
    Membership.Role.STAKEHOLDER: "stakeholder",
}

Status = PilotPlan.Status


@dataclass(frozen=True)
class DemoTeam:
    slug: str
    name: str
    time_zone: str
    plans: tuple[tuple[str, str], ...]  # (title, summary); how far each got is in DEMO_PLANS


@dataclass(frozen=True)
class Complete:
    """A plan built from the template and completed: every section filled, no health gaps."""

    status: str
    included: tuple[tuple[str, str], ...]  # (reference, title), replacing the template's two
    excluded: tuple[str, str]  # (title, reason), replacing the template's payment gateways
    cohort: str
    target_size: int
    segment: str  # the region the cohort is in
    environment: str
    uses_real_data: bool
    flag: str  # the feature flag the first rollback step switches off
    data_considerations: str
    # When the pilot starts: ``week`` weeks after the current week's Monday, except a running
    # pilot, which started on the Monday at least ``running_for`` days ago (``demo_start_date``).
    week: int = 0
    running_for: int = 0
    # Decided and closed plans: the Product Owner's decision, why, and what the post-pilot
    # review learnt (its findings, what went well, what to improve).
    decision: str = ""
    reason: str = ""
    finding: str = ""
    went_well: str = ""
    to_improve: str = ""
    # An edit after sign-off: DevOps tightens a rollback trigger once the feasibility review is
    # signed, which voids that sign-off; the developer reviews again and signs again.
    resign: bool = False
    # A running pilot whose "any P1 defect" rollback trigger fired this long before the seed (and
    # nobody resolved it): the decision page recommends Roll back.
    p1_defect_ago: dt.timedelta | None = None
    # The P2 defect rate judged over at least this many sessions (the template: 1,000): a
    # running pilot whose traffic so far (about 26,000 sessions a day, at most a week of it when
    # the demo is seeded) cannot decide it yet, so the decision page says how much more it needs.
    p2_min_sessions: int | None = None
    # More cohort segments besides ``segment`` (dimension, value, intended per cent), so the
    # representativeness check has a mix to compare with.
    segments: tuple[tuple[str, str, int], ...] = ()
    # The running pilot that shows the learning loop: participants, feedback, backlog items raised
    # by it and its change-control log (``_learning_loop``).
    learning_loop: bool = False


@dataclass(frozen=True)
class Incomplete:
    """A draft someone has started: a few sections written, the plan health panel full of gaps."""

    included: tuple[tuple[str, str], ...]
    cohort: str
    exit_metric: str  # an exit criterion whose threshold is still to be decided


TEAMS = (
    DemoTeam(
        "checkout",
        "Checkout",
        "Europe/Berlin",
        (
            (
                "Saved cards for returning shoppers",
                "US-145, US-152 to 200 internal users in Region A",
            ),
            ("One-page checkout", "Shorter checkout for mobile web"),
            ("Express reorder", "Reorder a past basket in one tap"),
        ),
    ),
    DemoTeam(
        "mobile",
        "Mobile App",
        "America/New_York",
        (
            ("Offline order history", "Order history without a connection"),
            ("Order status push notifications", "Tell shoppers when their order moves"),
            ("Biometric login", "Sign in with Face ID or a fingerprint"),
            ("Dark mode", "A dark theme that follows the phone's setting"),
        ),
    ),
    DemoTeam(
        "platform",
        "Platform",
        "Asia/Tokyo",
        (
            ("Regional read replicas", "Serve APAC reads from Tokyo"),
            ("Connection pooling", "PgBouncer in front of the primary"),
            ("Query result cache", "Cache hot catalogue queries in Redis"),
            ("Autovacuum tuning", "Per-table autovacuum settings for the busiest tables"),
        ),
    ),
)

SLUGS = [team.slug for team in TEAMS]

# How far each demo plan got: every status of the lifecycle appears at least once. Each complete
# plan is walked through the lifecycle services up to its status (see ``_walk``).
DEMO_PLANS: dict[tuple[str, str], Complete | Incomplete] = {
    ("checkout", "Saved cards for returning shoppers"): Complete(
        status=Status.RUNNING,
        included=(("US-145", "Save a card at checkout"), ("US-152", "Pay with a saved card")),
        excluded=("Payment gateways", "External payment gateways stay out of the pilot."),
        cohort="200 internal users in Region A, opt-in only",
        target_size=200,
        segment="Region A",
        environment="pilot-eu-1",
        uses_real_data=True,
        flag="saved-cards",
        data_considerations="Card tokens saved in the pilot are kept; nothing is deleted.",
        running_for=2,  # at least two days of history, at least three days left
        p2_min_sessions=250_000,
        resign=True,
        segments=(
            ("customer_type", "Frequent shopper", 40),
            ("customer_type", "Occasional shopper", 40),
            ("customer_type", "New shopper", 20),
        ),
        learning_loop=True,
    ),
    ("checkout", "One-page checkout"): Incomplete(
        included=(("US-171", "Address, delivery and payment on one page"),),
        cohort="Mobile web shoppers in Region B",
        exit_metric="csat",
    ),
    ("mobile", "Offline order history"): Complete(
        status=Status.APPROVED,
        included=(("MOB-88", "Cache the last 50 orders"), ("MOB-91", "Show orders offline")),
        excluded=("Order changes offline", "Edits need the server; a later increment."),
        cohort="150 beta testers on Android and iOS, opt-in only",
        target_size=150,
        segment="North America",
        environment="mobile-beta",
        uses_real_data=False,
        flag="offline-orders",
        data_considerations="The offline cache is cleared on the previous release's next start.",
        week=1,  # starts next Monday
    ),
    ("mobile", "Order status push notifications"): Incomplete(
        included=(("MOB-102", "Notify when an order ships"),),
        cohort="Opted-in app users",
        exit_metric="nps",
    ),
    ("platform", "Regional read replicas"): Complete(
        status=Status.IN_REVIEW,
        included=(("PLT-12", "Tokyo read replica"), ("PLT-14", "Route APAC reads to it")),
        excluded=("Writes from APAC", "All writes stay on the primary in this pilot."),
        cohort="Internal APAC staff, opt-in only",
        target_size=80,
        segment="APAC",
        environment="apac-pilot",
        uses_real_data=True,
        flag="apac-replica-reads",
        data_considerations="Replicas are read-only; turning them off loses no data.",
        week=2,
    ),
    ("checkout", "Express reorder"): Complete(
        status=Status.CLOSED,
        included=(("US-120", "Reorder button on past orders"), ("US-123", "Check stock first")),
        excluded=("Subscriptions", "Repeating orders are a separate product decision."),
        cohort="300 returning shoppers in Region A, opt-in only",
        target_size=300,
        segment="Region A",
        environment="pilot-eu-1",
        uses_real_data=True,
        flag="express-reorder",
        data_considerations="Reorders are ordinary orders; turning the flag off loses nothing.",
        week=-10,  # ran ten weeks ago, decided and closed since
        decision=PilotPlan.Decision.GO,
        reason="Conversion on reorders rose 9 % with no P1 defects; release to everyone.",
        finding="Shoppers reorder mostly groceries: show stock before the button, not after.",
        went_well="The flag turned the button on and off per region without a deploy.",
        to_improve="Agree the conversion baseline before the pilot starts, not during it.",
    ),
    ("mobile", "Biometric login"): Complete(
        status=Status.DECIDED,
        included=(("MOB-60", "Face ID sign-in on iOS"), ("MOB-61", "Fingerprint on Android")),
        excluded=("Passkeys", "Passkeys need the new identity service first."),
        cohort="120 beta testers on recent devices, opt-in only",
        target_size=120,
        segment="North America",
        environment="mobile-beta",
        uses_real_data=False,
        flag="biometric-login",
        data_considerations="No biometric data leaves the device; switching off keeps passwords.",
        week=-6,
        decision=PilotPlan.Decision.ROLL_BACK,
        reason="Sign-in failures doubled on older Android devices; roll back and rethink.",
    ),
    ("mobile", "Dark mode"): Complete(
        status=Status.RUNNING,
        included=(("MOB-130", "Dark theme for every screen"), ("MOB-131", "Follow the OS setting")),
        excluded=("Custom themes", "Colour choices beyond light and dark are a later increment."),
        cohort="250 beta testers on Android and iOS, opt-in only",
        target_size=250,
        segment="North America",
        environment="mobile-beta",
        uses_real_data=False,
        flag="dark-mode",
        data_considerations="A display setting only; switching off loses nothing.",
        running_for=1,  # started the Monday before yesterday at the latest
        p1_defect_ago=dt.timedelta(hours=3, minutes=28),
    ),
    ("platform", "Query result cache"): Complete(
        status=Status.EVALUATING,
        included=(("PLT-30", "Cache catalogue queries"), ("PLT-31", "Invalidate on price change")),
        excluded=("Basket queries", "Baskets change too often to cache in this pilot."),
        cohort="Catalogue reads from internal staff, opt-in only",
        target_size=60,
        segment="APAC",
        environment="apac-pilot",
        uses_real_data=False,
        flag="catalogue-cache",
        data_considerations="The cache holds copies only; flushing it loses nothing.",
        week=-3,  # the time-box ended last week: being evaluated now
    ),
    ("platform", "Autovacuum tuning"): Complete(
        status=Status.DECIDED,
        included=(("PLT-05", "Autovacuum settings per table"), ("PLT-06", "Bloat dashboard")),
        excluded=("Partitioning", "Partitioning the orders table is a later pilot."),
        cohort="The orders and events tables on the staging primary",
        target_size=2,
        segment="APAC",
        environment="apac-pilot",
        uses_real_data=False,
        flag="autovacuum-profile",
        data_considerations="Settings only; resetting them restores the defaults.",
        week=-5,
        decision=PilotPlan.Decision.GO,
        reason="Table bloat fell by half and p95 latency held; apply to production.",
    ),
    ("platform", "Connection pooling"): Incomplete(
        included=(("PLT-20", "PgBouncer in transaction mode"),),
        cohort="The staging services",
        exit_metric="p95_latency",
    ),
}


def demo_start_date(spec: Complete, today: dt.date) -> dt.date:
    """The day a demo pilot starts.

    A running pilot started on the Monday on or before ``today - running_for``. With the
    template's ten business days its window then holds the ``running_for`` days before today and
    at least three days after it, whatever the weekday (and the team's holidays only make it
    longer), so the window contains "now" in every demo team's time zone and the simulator keeps
    pushing into it. Other plans start ``week`` weeks after the current week's Monday.
    """
    if spec.status == Status.RUNNING:
        day = today - dt.timedelta(days=spec.running_for)
        return day - dt.timedelta(days=day.weekday())
    return timeline.next_monday(today) + dt.timedelta(weeks=spec.week - 1)


def demo_email(role: str, team_slug: str) -> str:
    return f"{ROLE_PREFIX[Membership.Role(role)]}@{team_slug}.demo"


def _user(email: str, full_name: str, *, superuser: bool = False) -> User:
    user, _ = User.objects.get_or_create(email=email, defaults={"full_name": full_name})
    user.full_name = full_name
    user.is_staff = user.is_superuser = superuser
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user


# --- plans -------------------------------------------------------------------------------------


def _as(user: User) -> Any:
    """Record everything inside in the audit trail as done by ``user``, from the demo.

    Not nested: a nested ``pghistory.context`` adds to the outer one instead of starting its own.
    """
    return pghistory.context(user=user.pk, url="seed_demo")


class _Editor:
    """Edits one plan through the services, always from the section's current version."""

    def __init__(self, plan: PilotPlan, user: User):
        self.plan, self.user = plan, user

    def version(self, key: str) -> int:
        return section_versions(plan=self.plan)[key]

    def section(self, key: str, user: User | None = None, **values: Any) -> None:
        with _as(user or self.user):
            section_update(
                plan=self.plan,
                key=key,
                user=user or self.user,
                expected_version=self.version(key),
                values=values,
            )

    def add(self, slug: str, user: User | None = None, **values: Any) -> Any:
        kind = row_kind(slug)
        with _as(user or self.user):
            return row_add(
                plan=self.plan,
                kind=kind,
                user=user or self.user,
                expected_version=self.version(kind.section),
                values=values,
            )

    def update(self, slug: str, row_id: int, user: User | None = None, **values: Any) -> None:
        kind = row_kind(slug)
        with _as(user or self.user):
            row_update(
                plan=self.plan,
                kind=kind,
                row_id=row_id,
                user=user or self.user,
                expected_version=self.version(kind.section),
                values=values,
            )

    def remove(self, slug: str, row_id: int) -> None:
        kind = row_kind(slug)
        with _as(self.user):
            row_remove(
                plan=self.plan,
                kind=kind,
                row_id=row_id,
                user=self.user,
                expected_version=self.version(kind.section),
            )


def _complete_plan(
    team: Team, people: dict[str, User], title: str, summary: str, spec: Complete, today: dt.date
) -> PilotPlan:
    po, sm = people[Membership.Role.PRODUCT_OWNER], people[Membership.Role.SCRUM_MASTER]
    devops = people[Membership.Role.DEVOPS]
    with _as(po):
        plan = plan_create_from_template(team=team, author=po, today=today)
    edit = _Editor(plan, po)
    edit.section(
        Section.OVERVIEW,
        title=title,
        summary=summary,
        release_ref=f"{today:%Y}.{today.isocalendar().week:02d}",
    )

    # Scope: this pilot's stories instead of the template's.
    items = list(plan.scope_items.order_by("kind", "position"))
    for item in items:
        edit.remove("scope-items", item.pk)
    for reference, item_title in spec.included:
        edit.add("scope-items", reference=reference, title=item_title)
    edit.add(
        "scope-items", kind=ScopeItem.Kind.EXCLUDED, title=spec.excluded[0], reason=spec.excluded[1]
    )

    edit.section(
        Section.COHORT,
        description=spec.cohort,
        target_size=spec.target_size,
        consent_recorded=True,
        feedback_channel=f"#pilot-{team.slug}",
    )
    segment = plan.segments.get()
    edit.update("segments", segment.pk, value=spec.segment)
    for dimension, value, share in spec.segments:
        edit.add("segments", dimension=dimension, value=value, intended_share=Decimal(share))

    # DevOps writes the environment, on-call and rehearsal, so the developer, who wrote none of
    # the feasibility review's sections, may sign it (segregation of duties).
    edit.section(
        Section.ENVIRONMENT,
        devops,
        environment=spec.environment,
        uses_real_data=spec.uses_real_data,
        data_migration_rules="Additive migrations only: the previous release must read the data.",
        privacy_constraints="Personal data stays in its region; logs keep no payment details.",
        masking_rules="Card numbers, e-mails and phone numbers are masked in logs and exports.",
    )
    if spec.uses_real_data:
        with _as(sm):
            environment_set_compliance(
                plan=plan,
                user=sm,
                validated=True,
                expected_version=edit.version(Section.ENVIRONMENT),
            )

    start = demo_start_date(spec, today)
    edit.section(Section.TIMELINE, start_date=start)
    plan.refresh_from_db()
    edit.add("on-call", devops, person=devops, starts_on=plan.start_date, ends_on=plan.end_date)
    edit.add(
        "rehearsals",
        devops,
        # Three days before the start, and never in the future (the approved plan starts later).
        rehearsed_on=min(start, today) - dt.timedelta(days=3),
        outcome="passed",
        notes="Flag off and redeploy took 18 minutes end to end.",
    )
    edit.section(
        Section.MONITORING,
        communication_cadence=f"Daily status note in #pilot-{team.slug} after the 16:00 check.",
        training_done=True,
        training_notes="Support walked through the runbook with the team.",
    )
    edit.section(
        Section.ROLLBACK_PLAN,
        data_considerations=spec.data_considerations,
        communication_plan=f"Post in #pilot-{team.slug} and e-mail the cohort within 30 minutes.",
    )
    first_step = plan.rollback_steps.order_by("position").first()
    assert first_step is not None
    edit.update("rollback-steps", first_step.pk, action=f"Switch the {spec.flag} feature flag off")
    if spec.p2_min_sessions is not None:
        p2_rate = plan.exit_criteria.get(aggregation="rate_per")
        edit.update("exit-criteria", p2_rate.pk, min_sample_size=spec.p2_min_sessions)

    return plan


# What each reviewer writes before signing.
REVIEW_NOTES: dict[str, str] = {
    "business": (
        "Scope is the two stories that test the assumption; the cohort matches the first "
        "rollout region and every exit criterion has a number."
    ),
    "readiness": (
        "Risks have owners, on-call covers every business day of the window, support has the "
        "runbook and the rollback was rehearsed."
    ),
    "feasibility": (
        "The pilot environment is up, migrations are additive, dashboards show the pilot's "
        "metrics and the rollback steps were run in the rehearsal."
    ),
}


def _review_and_sign(plan: PilotPlan, kind: str, reviewer: User, notes: str) -> None:
    with _as(reviewer):
        version = Review.objects.filter(plan=plan, kind=kind).values_list("version", flat=True)
        review_update(
            plan=plan,
            kind=kind,
            user=reviewer,
            expected_version=version.first() or 1,
            values={
                "notes": notes,
                "checklist": {key: True for key, _ in REVIEWS[kind].checklist},
                "concerns": "",
            },
        )
    with _as(reviewer):
        signoff_create(plan=plan, kind=kind, user=reviewer)


def _step(plan: PilotPlan, action: str, user: User, reason: str) -> None:
    with _as(user):
        plan_transition(plan=plan, action=action, user=user, reason=reason)


# Decided demo pilots ran before Pilotplan measured them: their decision overrides whatever the
# (empty) evidence recommends, and says so.
DEMO_OVERRIDE = "Decided on the pilot's own dashboards, before Pilotplan measured it."


def _decide(plan: PilotPlan, user: User, outcome: str, rationale: str) -> None:
    """Record the decision as the decision owner does on the decision page (the only way to
    Decided), with an override reason when it goes against the recommendation."""
    with _as(user):
        recommendation = decision_evidence(plan).recommendation
        decision_record(
            plan=plan,
            user=user,
            outcome=outcome,
            rationale=rationale,
            override_reason="" if recommendation == outcome else DEMO_OVERRIDE,
        )


def _walk(plan: PilotPlan, team: Team, people: dict[str, User], spec: Complete) -> None:
    """Take a complete plan through the lifecycle services as far as ``spec.status``."""
    order = list(Status.values)
    goal = order.index(spec.status)
    if goal == order.index(Status.DRAFT):
        return
    po, sm = people[Membership.Role.PRODUCT_OWNER], people[Membership.Role.SCRUM_MASTER]
    dev, devops = people[Membership.Role.DEVELOPER], people[Membership.Role.DEVOPS]
    reviewers = {"business": po, "readiness": sm, "feasibility": dev}
    edit = _Editor(plan, po)

    _step(plan, "submit", po, "Complete and rehearsed; please review.")

    # The Scrum Master and the developer confirm the entry criteria with evidence. A plan still in
    # review has only the first one confirmed and only the business review signed.
    criteria = list(plan.entry_criteria.order_by("position"))
    if spec.status == Status.IN_REVIEW:
        criteria = criteria[:1]
    for n, criterion in enumerate(criteria):
        edit.update(
            "entry-criteria",
            criterion.pk,
            sm if n % 2 == 0 else dev,
            status="met",
            evidence_url=f"https://ci.example.com/{team.slug}/{criterion.pk}",
        )
    kinds = ["business"] if spec.status == Status.IN_REVIEW else list(REVIEWS)
    for kind in kinds:
        _review_and_sign(plan, kind, reviewers[kind], REVIEW_NOTES[kind])
    if spec.status == Status.IN_REVIEW:
        return

    if spec.resign:
        # An edit after sign-off voids the feasibility sign-off; the developer checks it again.
        latency = plan.rollback_triggers.order_by("position").last()
        assert latency is not None
        edit.update(
            "rollback-triggers",
            latency.pk,
            devops,
            threshold=Decimal("250"),
            description="p95 latency above 250 ms for 30 minutes (tightened after load test)",
        )
        _review_and_sign(
            plan,
            "feasibility",
            dev,
            REVIEW_NOTES["feasibility"] + " Re-checked the tightened latency trigger.",
        )

    _step(plan, "approve", po, "All three reviews signed and every entry criterion met.")
    if goal == order.index(Status.APPROVED):
        return
    starter = devops if spec.status == Status.RUNNING else po
    _step(plan, "start", starter, f"The {spec.flag} flag is on for the cohort.")
    if goal == order.index(Status.RUNNING):
        return
    _step(plan, "evaluate", po, "The time-box is over; looking at the exit criteria.")
    if goal == order.index(Status.EVALUATING):
        return
    _decide(plan, po, spec.decision, spec.reason)
    # The decision opened the post-pilot review; a Decided plan shows it due, nothing written.
    review = PostPilotReview.objects.get(plan=plan)
    if goal == order.index(Status.DECIDED):
        return
    with _as(sm):
        review = post_pilot_review_save(
            review=review,
            user=sm,
            findings=spec.finding,
            went_well=spec.went_well,
            to_improve=spec.to_improve,
            expected_version=review.version,
        )
        post_pilot_review_complete(review=review, user=sm)
    _step(plan, "close", sm, "The post-pilot review is completed; the pilot is closed.")


def _incomplete_plan(
    team: Team, people: dict[str, User], title: str, summary: str, spec: Incomplete
) -> PilotPlan:
    po, dev = people[Membership.Role.PRODUCT_OWNER], people[Membership.Role.DEVELOPER]
    with _as(po):
        plan = plan_create(team=team, author=po, title=title, summary=summary)
    edit = _Editor(plan, po)
    for reference, item_title in spec.included:
        edit.add("scope-items", reference=reference, title=item_title)
    edit.section(Section.COHORT, description=spec.cohort)  # no size, consent or channel yet
    metric = metric_by_key(key=spec.exit_metric, team_id=team.pk)
    assert metric is not None, f"the metric catalogue has no {spec.exit_metric}"
    edit.add(
        "exit-criteria",
        metric=metric,
        aggregation="mean",
        comparator="ge",
        threshold=None,
        unit=metric.unit,
    )
    edit.add(
        "risks",
        dev,
        description="The change touches a busy code path.",
        likelihood="medium",
        impact="high",
        mitigation="To be discussed.",
    )
    # The rest of the cohort is not decided yet: the segment mix adds up to 60 %.
    edit.add("segments", dimension="region", value="Region B", intended_share=Decimal("60"))
    return plan


def _seed_plans(team: Team, spec: DemoTeam, people: dict[str, User], today: dt.date) -> None:
    for title, summary in spec.plans:
        if PilotPlan.objects.filter(team=team, title=title).exists():
            continue  # the demo never overwrites a plan, whatever was done to it since
        shape = DEMO_PLANS[(spec.slug, title)]
        if isinstance(shape, Complete):
            plan = _complete_plan(team, people, title, summary, shape, today)
            _walk(plan, team, people, shape)
        else:
            _incomplete_plan(team, people, title, summary, shape)


# --- the learning loop: the team backlog, the cohort, feedback and change control ---------------


@dataclass(frozen=True)
class DemoItem:
    """One item of a demo team's backlog, as its author typed it on the backlog page."""

    title: str
    kind: str = BacklogItem.Kind.STORY
    status: str = BacklogItem.Status.NEW
    estimate: int | None = None
    reference: str = ""  # the tracker's reference (a plan's scope names it); empty: generated
    severity: str = ""  # defects only
    plan: str = ""  # the title of the plan a defect was found in
    author: str = Membership.Role.PRODUCT_OWNER
    description: str = ""


_K, _S = BacklogItem.Kind, BacklogItem.Status
_DEV = Membership.Role.DEVELOPER

# The Checkout team's backlog, top first: what is next, then what is done. The stories the demo
# plans' scope names (US-145 …) carry their references, so each plan shows their status; the rest
# get generated ones (DE-2). The running pilot adds its own items after these (``_learning_loop``).
BACKLOGS: dict[str, tuple[DemoItem, ...]] = {
    "checkout": (
        DemoItem("Remove a saved card from the account page", reference="US-158",
                 status=_S.READY, estimate=3),
        DemoItem("Card form loses the postcode after a validation error", kind=_K.DEFECT,
                 severity="p3", status=_S.IN_PROGRESS, estimate=2, author=_DEV),
        DemoItem("Address, delivery and payment on one page", reference="US-171",
                 status=_S.READY, estimate=13),
        DemoItem("Spike: network tokens instead of the gateway's card tokens", kind=_K.SPIKE,
                 estimate=3, author=_DEV,
                 description="Would network tokens keep saved cards valid after a reissue?"),
        DemoItem("Pay with Apple Pay or Google Pay on the one-page checkout", reference="US-174",
                 estimate=8),
        DemoItem("Save a card at checkout", reference="US-145", status=_S.DONE, estimate=5),
        DemoItem("Pay with a saved card", reference="US-152", status=_S.DONE, estimate=8),
        DemoItem("Payment page blank on Safari 15", kind=_K.DEFECT, severity="p1",
                 status=_S.DONE, estimate=3, author=_DEV,
                 description="Production, before the saved-cards pilot; fixed in 2026.31."),
        DemoItem("Reorder button on past orders", reference="US-120", status=_S.DONE, estimate=5),
        DemoItem("Check stock first", reference="US-123", status=_S.DONE, estimate=3),
        DemoItem("Reorder button shows on cancelled orders", kind=_K.DEFECT, severity="p4",
                 status=_S.DONE, estimate=1, plan="Express reorder", author=_DEV),
    ),
}  # fmt: skip


def _seed_backlog(team: Team, people: dict[str, User]) -> None:
    """The team's backlog, through the backlog services (references and positions as the page
    makes them); only into an empty backlog, so people's changes survive the next seed."""
    items = BACKLOGS.get(team.slug, ())
    if not items or BacklogItem.objects.filter(team=team).exists():
        return
    plans = dict(PilotPlan.objects.filter(team=team).values_list("title", "pk"))
    for item in items:
        author = people[item.author]
        with _as(author):
            backlog_item_create(
                team_id=team.pk,
                user=author,
                title=item.title,
                kind=item.kind,
                severity=item.severity,
                status=item.status,
                estimate=item.estimate,
                reference=item.reference,
                description=item.description,
                plan=PilotPlan.objects.get(pk=plans[item.plan]) if item.plan in plans else None,
            )


CONSENT_TEXT = (
    "I agree to try saved cards before everyone else, to be contacted about the pilot by e-mail "
    "or in #pilot-checkout, and to my feedback being used to improve checkout. I can withdraw "
    "at any time with my personal link."
)
_FIRST = ("Ana", "Ben", "Chloé", "Dev", "Emre", "Fatima", "Gus", "Hana", "Ivo", "Jana", "Kofi",
          "Lena", "Mateo", "Nora")  # fmt: skip
_LAST = ("Ahmed", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hansen", "Ito",
         "Jensen", "Kowalski", "Lopez", "Meyer", "Novak", "Okafor", "Petrov", "Quinn")  # fmt: skip
# Who took part, by customer type: the volunteers are mostly frequent shoppers (the template's
# risk "Cohort not representative (internal only)" come true), so against the intended 40 / 40 /
# 20 the check flags the cohort as skewed. 32 imported from the staff list, 10 opted in through
# the enrolment link, 2 of whom withdrew: 28 / 9 / 3 of 40 active.
_FREQUENT, _OCCASIONAL, _NEW = "Frequent shopper", "Occasional shopper", "New shopper"
IMPORTED = (_FREQUENT,) * 22 + (_OCCASIONAL,) * 8 + (_NEW,) * 2
ENROLLED = (_FREQUENT,) * 7 + (_OCCASIONAL,) * 2 + (_NEW,)
WITHDRAWN = (0, 7)  # of ENROLLED: one frequent and one occasional shopper changed their mind


def _person(n: int) -> tuple[str, str]:
    # 14 and 17 are coprime: the first 238 people all have different names.
    first, last = _FIRST[n % len(_FIRST)], _LAST[(n * 5) % len(_LAST)]
    email = f"{first}.{last}@staff.example.com".lower().replace("é", "e").replace("í", "i")
    return f"{first} {last}", email


def _segments(allowed: dict[str, list[str]], wanted: dict[str, str]) -> dict[str, str] | None:
    """``wanted`` limited to the plan's dimensions; None when the plan's segments were changed
    since the demo made them (the demo then adds no participants)."""
    if set(allowed) - set(wanted) or any(
        wanted[dimension] not in values for dimension, values in allowed.items()
    ):
        return None
    return {dimension: wanted[dimension] for dimension in allowed}


def _seed_cohort(
    plan: PilotPlan, spec: Complete, people: dict[str, User], now: dt.datetime
) -> None:
    """The enrolment link and the participants: the team's list imported as CSV, then people
    opting in through the link, two of whom withdraw through their personal link."""
    sm = people[Membership.Role.SCRUM_MASTER]
    if not EnrolmentLink.objects.filter(plan=plan).exists():
        with _as(sm):
            enrolment_link_save(plan_id=plan.pk, user=sm, consent_text=CONSENT_TEXT)
    if Participant.objects.filter(plan=plan).exists():
        return
    allowed = plan_segment_values(plan.pk)
    rows = []
    for n, kind in enumerate(IMPORTED):
        segments = _segments(allowed, {"region": spec.segment, "customer_type": kind})
        if segments is None:
            return
        name, email = _person(n)
        # They signed up on the staff intranet in the week before the pilot.
        assert plan.start_date is not None
        agreed = dt.datetime.combine(
            plan.start_date - dt.timedelta(days=7), dt.time(9), ZoneInfo(plan.time_zone)
        ) + dt.timedelta(minutes=17 * n)
        rows.append(
            {
                "name": name,
                "email": email,
                **segments,
                "consent": "yes",
                "consent_given_at": min(agreed, now).isoformat(),
                "consent_text": CONSENT_TEXT,
            }
        )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    with _as(sm):
        participants_csv_import(plan_id=plan.pk, user=sm, text=out.getvalue())
    link = EnrolmentLink.objects.get(plan=plan)
    if plan.status not in ENROL_STATES or link.revoked_at is not None:
        return
    for n, kind in enumerate(ENROLLED):
        name, email = _person(len(IMPORTED) + n)
        segments = _segments(allowed, {"region": spec.segment, "customer_type": kind})
        with _public():
            participant = participant_enrol(
                token=link.token, name=name, email=email, segments=segments, consent=True
            )
        if n in WITHDRAWN:
            assert participant.withdraw_token is not None
            with _public():
                participant_withdraw_by_token(token=participant.withdraw_token)


def _public() -> Any:
    """The audit trail's context of what a member of the public does (no log-in)."""
    return pghistory.context(url="seed_demo")


# What the cohort said through the public feedback link, oldest first: (CSAT, NPS, comment,
# contact, tags the team gave it). Two comments become backlog items (FEEDBACK_ITEMS), one is
# noise.
FEEDBACK: tuple[tuple[int | None, int | None, str, str, tuple[str, ...]], ...] = (
    (5, 10, "Paying took two taps. Lovely.", "", ()),
    (4, 9, "Much faster than typing the card in on my phone.", "", ("speed",)),
    (2, 5, "Asked for the CVV again on a card I saved yesterday. What is the point of saving it?",
     "ana.ahmed@staff.example.com", ("cvv",)),
    (5, 9, "", "", ()),
    (4, 8, "I would like to choose which card is the default.", "", ("card list",)),
    (3, 6, "The saved card disappeared after I changed my delivery address.",
     "jana.meyer@staff.example.com", ("bug",)),
    (5, 10, "", "", ()),
    (4, 7, "Fine, but the card list does not show the expiry date.", "", ("card list",)),
    (1, 2, "CVV again. And again.", "", ("cvv",)),
    (5, 9, "Great for the weekly shop.", "", ()),
    (None, None, "test test please ignore", "", ()),
    (4, 8, "", "", ()),
    (2, 4, "I saved my card by mistake and could not find where to remove it.", "",
     ("remove card",)),
    (5, 10, "Worked first time on the train with a bad connection.", "", ("speed",)),
    (4, 9, "", "sam.okafor@staff.example.com", ()),
)  # fmt: skip
NOISE = "test test please ignore"
# Comments the Product Owner turns into backlog items, and as what.
FEEDBACK_ITEMS = {
    "Asked for the CVV again": BacklogItem.Kind.IMPROVEMENT,
    "The saved card disappeared": BacklogItem.Kind.DEFECT,
}
REPRIORITISE_REASON = (
    "Shoppers in the pilot lose their saved card: fix it before the go / no-go decision."
)


def _feedback_times(plan: PilotPlan, now: dt.datetime) -> list[dt.datetime]:
    """When the answers arrived: spread over the waking hours (8:00 to 21:00 in the team's zone)
    of the pilot so far, up to the simulator's part of the history; none when the demo's "now"
    leaves too little of the window for them."""
    assert plan.start_date is not None and plan.end_date is not None
    tz = ZoneInfo(plan.time_zone)
    start, end = plan_window(start_date=plan.start_date, end_date=plan.end_date, tz=tz)
    until = min(end, now - HISTORY_GAP)
    awake, at = [], start
    while at < until:
        if 8 <= at.astimezone(tz).hour < 21:
            awake.append(at)
        at += dt.timedelta(minutes=37)
    if len(awake) < len(FEEDBACK):
        return []
    step = len(awake) / len(FEEDBACK)
    return [awake[int(step * (n + 0.5))] for n in range(len(FEEDBACK))]


def _seed_feedback(plan: PilotPlan, people: dict[str, User], now: dt.datetime) -> None:
    """The feedback link and the cohort's answers (through the public page's service, so they
    feed the CSAT and NPS metrics), triaged by the Scrum Master; the Product Owner turns two
    comments into backlog items and moves the defect to the top, through change control."""
    po, sm = people[Membership.Role.PRODUCT_OWNER], people[Membership.Role.SCRUM_MASTER]
    times = _feedback_times(plan, now)
    if plan.status != Status.RUNNING or not times:
        return
    if FeedbackToken.objects.filter(plan=plan).exists():
        return  # seeded before (or the team issued its own link): leave the feedback alone
    with _as(sm):
        link = feedback_link_issue(plan_id=plan.pk, user=sm)
    for (csat, nps, comment, contact, tags), at in zip(FEEDBACK, times, strict=True):
        with _public():
            answer = feedback_submit(
                token=link.token,
                values={"csat": csat, "nps": nps, "comment": comment, "contact": contact},
                at=at,
            )
        if tags or comment == NOISE:
            with _as(sm):
                feedback_triage(
                    plan_id=plan.pk,
                    feedback_id=answer.pk,
                    user=sm,
                    expected_version=None,
                    tags=list(tags) or None,
                    noise=True if comment == NOISE else None,
                )
        kind = next((k for start, k in FEEDBACK_ITEMS.items() if comment.startswith(start)), None)
        if kind is None:
            continue
        with _as(po):
            item = feedback_to_backlog_item(
                plan_id=plan.pk, feedback_id=answer.pk, user=po, kind=kind
            )
        if kind == BacklogItem.Kind.DEFECT:
            with _as(po):
                backlog_item_reprioritise(
                    team_id=plan.team_id,
                    user=po,
                    plan_id=plan.pk,
                    item_id=item.pk,
                    reason=REPRIORITISE_REASON,
                    source=ChangeControlEntry.Source.FEEDBACK,
                    source_id=answer.pk,
                    to_top=True,
                )


def _seed_change_control(plan: PilotPlan, people: dict[str, User]) -> None:
    """Items the pilot raised besides feedback: a defect the developer found in it (counted in
    its P2 defect metric) and an improvement raised from its CSAT exit criterion."""
    dev, po = people[Membership.Role.DEVELOPER], people[Membership.Role.PRODUCT_OWNER]
    logged = ChangeControlEntry.objects.filter(plan=plan)
    if plan.status != Status.RUNNING:
        return
    if not logged.filter(source=ChangeControlEntry.Source.DEFECT).exists():
        with _as(dev):
            backlog_item_raise(
                team_id=plan.team_id,
                user=dev,
                plan_id=plan.pk,
                source=ChangeControlEntry.Source.DEFECT,
                title="An expired saved card is offered as the default",
                kind=BacklogItem.Kind.DEFECT,
                severity=BacklogItem.Severity.P2,
                estimate=2,
                description="Seen in the pilot: the payment fails and the shopper starts again.",
                at_top=True,
            )
    csat = plan.exit_criteria.filter(metric__key="csat").first()
    if csat is not None and not logged.filter(source=ChangeControlEntry.Source.CRITERION).exists():
        with _as(po):
            backlog_item_raise(
                team_id=plan.team_id,
                user=po,
                plan_id=plan.pk,
                source=ChangeControlEntry.Source.CRITERION,
                source_id=csat.pk,
                title="Ask for the CVV of a saved card only above €50",
                estimate=5,
                reason="The lowest CSAT answers all mention the CVV prompt; CSAT must stay "
                "at 4.2 or above for a go.",
            )


def _learning_loop(team: Team, people: dict[str, User], now: dt.datetime) -> None:
    """The learning loop of the team's running pilots whose spec asks for it."""
    for (slug, title), spec in DEMO_PLANS.items():
        if slug != team.slug or not isinstance(spec, Complete) or not spec.learning_loop:
            continue
        plan = PilotPlan.objects.filter(team=team, title=title).first()
        if plan is None or plan.start_date is None:
            continue
        _seed_cohort(plan, spec, people, now)
        _seed_change_control(plan, people)
        _seed_feedback(plan, people, now)


@transaction.atomic
def seed_demo(
    *, today: dt.date | None = None, now: dt.datetime | None = None, metrics: bool = True
) -> list[tuple[str, str, str]]:
    """Create or refresh the demo as of ``now`` (default: now; ``today`` defaults to its date);
    return (e-mail, team, role label) for every demo login.

    ``metrics=False`` leaves out the metric history (tests of the plans themselves)."""
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    logins: list[tuple[str, str, str]] = []
    admin = _user("admin@pilotplan.demo", "Ada Admin", superuser=True)
    logins.append((admin.email, "—", "site administrator (/admin/)"))
    portfolio = _user("portfolio@pilotplan.demo", "Pat Portfolio")
    for spec in TEAMS:
        team, _ = Team.objects.update_or_create(
            slug=spec.slug, defaults={"name": spec.name, "time_zone": spec.time_zone}
        )
        people: dict[str, User] = {}
        for role in Membership.Role:
            email = demo_email(role, spec.slug)
            user = _user(email, f"{role.label} ({spec.name})")
            membership_set(team=team, user=user, role=role)
            logins.append((email, spec.name, str(role.label)))
            people[role] = user
        # One person in every team, to show the cross-team view.
        membership_set(team=team, user=portfolio, role=Membership.Role.STAKEHOLDER)
        _seed_plans(team, spec, people, today)
        _seed_backlog(team, people)
        _learning_loop(team, people, now)
    logins.append((portfolio.email, "every team", "Stakeholder"))
    if metrics:
        # Samples and past checks of the running and evaluating pilots (metrics/demo.py).
        demo_metrics_seed(plans=list(PilotPlan.objects.filter(team__slug__in=SLUGS)), now=now)
        _incidents(now)
    return logins


def _incidents(now: dt.datetime) -> None:
    """A P1 defect reported on the running pilots whose spec says so, and their triggers
    evaluated, so the "any P1 defect" trigger has fired when the demo opens (idempotent: the
    sample has a natural key, a fired trigger does not fire twice)."""
    for (slug, title), spec in DEMO_PLANS.items():
        if not isinstance(spec, Complete) or spec.p1_defect_ago is None:
            continue
        plan = PilotPlan.objects.filter(team__slug=slug, title=title, status=Status.RUNNING).first()
        if plan is None:
            continue
        metric = metric_by_key(key="p1_defects", team_id=plan.team_id)
        assert metric is not None
        at = (now - spec.p1_defect_ago).replace(second=0, microsecond=0)
        samples_store(rows=[(plan.pk, metric.pk, at, 1.0, "demo", "demo-p1-defect")])
        triggers_evaluate_plan(plan_id=plan.pk, now=now)

"""factory_boy factories for the domain. Passwords are all ``PASSWORD``."""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Any

import factory
from django.forms.models import model_to_dict
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import Membership, Team, User
from decisions.services.review import (
    post_pilot_review_complete,
    post_pilot_review_open,
    post_pilot_review_save,
)
from pilots.models import PilotPlan, Review
from pilots.review import REVIEWS
from pilots.services import (
    ROW_KINDS,
    plan_create,
    row_add,
    row_kind,
    section_update,
    section_versions,
)
from pilots.services.sections import SINGLETONS

PASSWORD = "correct-horse-battery"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):  # type: ignore[no-untyped-def]
        if create and results:
            instance.save(update_fields=["password"])


class TeamFactory(DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")
    time_zone = "Europe/Berlin"


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = Membership.Role.DEVELOPER


class PilotPlanFactory(DjangoModelFactory):
    """A Draft plan made through ``plan_create``, so every section exists as in production."""

    class Meta:
        model = PilotPlan

    team = factory.SubFactory(TeamFactory)
    title = factory.Sequence(lambda n: f"Pilot {n}")
    owner = factory.SubFactory(UserFactory)

    @classmethod
    def _create(cls, model_class, team, owner, title, **kwargs):  # type: ignore[no-untyped-def]
        plan = plan_create(team=team, author=owner, title=title)
        for name, value in kwargs.items():
            setattr(plan, name, value)
        if kwargs:
            plan.save()
        return plan


def seed_metric_catalogue() -> None:
    """The built-in metrics, as their migration seeds them (idempotent). The model has lived in
    ``catalogue`` since that migration ran: the migration's ``apps`` is given the current one."""
    from catalogue.models import MetricDefinition

    class _Apps:
        @staticmethod
        def get_model(app_label: str, model_name: str) -> type[MetricDefinition]:
            return MetricDefinition

    migration = importlib.import_module("metrics.migrations.0003_seed_metric_catalogue")
    migration.seed(_Apps(), None)
    intervals = importlib.import_module("catalogue.migrations.0002_metric_expected_interval")
    intervals.set_intervals(_Apps(), None)


# --- editing plans through their services, as the UI and API do ---------------------------------


def section_edit(plan: PilotPlan, key: str, user: User, **values: object) -> PilotPlan:
    """Save ``values`` into section ``key`` at its current version."""
    return section_update(
        plan=plan,
        key=key,
        user=user,
        expected_version=section_versions(plan=plan)[key],
        values=values,
    )


def row_append(plan: PilotPlan, slug: str, user: User, **values: object) -> object:
    """Add a row of list ``slug`` at its section's current version."""
    kind = row_kind(slug)
    return row_add(
        plan=plan,
        kind=kind,
        user=user,
        expected_version=section_versions(plan=plan)[kind.section],
        values=values,
    )


def plan_snapshot(plan: PilotPlan) -> dict[str, Any]:
    """Everything a plan holds in the database, to prove a refused change saved nothing."""
    state: dict[str, Any] = {
        "plan": model_to_dict(PilotPlan.objects.get(pk=plan.pk)),
        "plan_version": PilotPlan.objects.values_list("version", flat=True).get(pk=plan.pk),
        "sections": section_versions(plan=plan),
    }
    for model in SINGLETONS:
        state[model.__name__] = model_to_dict(model.objects.get(plan=plan))
    for slug, kind in ROW_KINDS.items():
        state[slug] = [
            model_to_dict(r) for r in kind.model.objects.filter(plan=plan).order_by("pk")
        ]
    return state


def running_plan(
    *,
    team: Team,
    owner: User,
    start_date: dt.date,
    business_days: int = 10,
    time_zone: str = "UTC",
    template: bool = True,
    **fields: object,
) -> PilotPlan:
    """A Running plan for metrics tests, set up directly (the lifecycle has its own tests).

    ``template=True`` gives the seed's exit criteria and rollback triggers (P1 any occurrence,
    p95 latency > 300 ms sustained 30 minutes); ``False`` a bare plan.
    """
    from pilots import timeline
    from pilots.services.plans import plan_create_from_template

    if template:
        plan = plan_create_from_template(team=team, author=owner, today=start_date)
    else:
        plan = plan_create(team=team, author=owner, title=f"Running {start_date}")
    PilotPlan.objects.filter(pk=plan.pk).update(
        status=PilotPlan.Status.RUNNING,
        start_date=start_date,
        business_days=business_days,
        end_date=timeline.end_date(start_date, business_days),
        time_zone=time_zone,
        **fields,
    )
    plan.refresh_from_db()
    return plan


# --- review and lifecycle ------------------------------------------------------------------------

# Submitting a plan fresh from the template needs an override: plan health lists its gaps.
OVERRIDE: dict[str, Any] = {"override_gaps": True, "reason": "Gaps known; filled in during review."}


def checklist_answered(plan: PilotPlan, *kinds: str) -> None:
    """Every checklist question of ``kinds`` (all reviews by default) answered yes, as a reviewer
    would before signing; the review's version stays as it is."""
    for kind in kinds or tuple(REVIEWS):
        answers = {key: "yes" for key, _ in REVIEWS[kind].checklist}
        Review.objects.update_or_create(plan=plan, kind=kind, defaults={"checklist": answers})


def post_pilot_review_written(plan: PilotPlan, user: User, *, complete: bool = True) -> Any:
    """The Decided ``plan``'s post-pilot review opened, its three parts written by ``user`` and,
    with ``complete``, completed by them (a Product Owner or Scrum Master): what closing needs."""
    review = post_pilot_review_open(plan=plan, decided_at=plan.decided_at or timezone.now())
    review = post_pilot_review_save(
        review=review,
        user=user,
        findings="Support macros need a saved-card section.",
        went_well="The cohort's feedback arrived daily.",
        to_improve="Agree the baseline before the pilot starts.",
        expected_version=review.version,
    )
    return post_pilot_review_complete(review=review, user=user) if complete else review

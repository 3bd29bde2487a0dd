"""factory_boy factories for the domain. Passwords are all ``PASSWORD``."""

from __future__ import annotations

import importlib

import factory
from factory.django import DjangoModelFactory

from accounts.models import Membership, Team, User
from pilots.models import PilotPlan
from pilots.services import plan_create

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
    """The built-in metrics, as their migration seeds them (idempotent)."""
    from django.apps import apps

    migration = importlib.import_module("metrics.migrations.0003_seed_metric_catalogue")
    migration.seed(apps, None)

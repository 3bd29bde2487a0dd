"""The template library: the built-in example (``plans.plan_create_from_template``) plus a team's
own plans saved as templates.

Saving takes a snapshot (JSON) of what a plan says — its summary, time-box length, check times,
change control, the one-to-one sections' texts and every list's rows — and leaves behind what
belongs to one pilot: dates, people (owners, approvers, on-call), evidence and confirmations,
rehearsals, compliance validation. Metrics are kept by key, so a template survives a metric's
re-creation and fails clearly when its metric is gone. Starting a plan from a template creates a
Draft in the template's team with that content.

The team's Product Owner or Scrum Master manages templates (``TEMPLATES_MANAGE``); starting a
plan from one is starting a plan (``PLAN_CREATE``, checked by the caller's access helper).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models import QuerySet
from django.http import Http404

from accounts.models import Team, User
from accounts.permissions import Perm, require, role_in_team
from catalogue.models import MetricDefinition
from catalogue.selectors import metric_by_key
from pilots.models import PilotPlan, PlanTemplate
from pilots.services.plans import plan_create
from pilots.services.sections import SINGLETONS

FORMAT = 1  # the snapshot's shape; bump when it changes incompatibly
PLAN_FIELDS = ("business_days", "check_times", "change_control")
# The plan's lists, by their related name, and fields that record one pilot's progress.
ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("scope_items", ()),
    ("segments", ()),
    ("entry_criteria", ("status", "evidence_url", "waiver_reason")),
    ("exit_criteria", ()),
    ("dashboards", ()),
    ("response_slas", ()),
    ("rollback_triggers", ()),
    ("rollback_steps", ()),
    ("risks", ()),
)
SINGLETON_NAMES = {
    model: model._meta.get_field("plan").remote_field.related_name for model in SINGLETONS
}  # type: ignore[union-attr]
DUPLICATE = "The team already has a template with this name."


def _require_manager(*, team_id: int, by: User) -> None:
    require(role_in_team(user=by, team_id=team_id), Perm.TEMPLATES_MANAGE)


def _dump(obj: models.Model, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The row's content: no key, no plan, no people, no dates; metrics by key."""
    out: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or field.name == "plan" or field.name in skip:
            continue
        if isinstance(field, models.DateField):  # DateTimeField included: one pilot's
            continue
        if field.is_relation:
            if field.related_model is MetricDefinition:
                metric = getattr(obj, field.name)
                out[field.name] = metric.key if metric else None
            continue  # people
        out[field.name] = field.value_from_object(obj)
    return out


def _load(model: type[models.Model], data: dict[str, Any], team_id: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:  # a field removed since the template was saved
            continue
        if field.is_relation:
            if value is None:
                kwargs[name] = None
                continue
            metric = metric_by_key(key=value, team_id=team_id)
            if metric is None:
                raise ValidationError(
                    {"template": f"The template uses the metric “{value}”, which is no longer "
                     "in the team's catalogue."}
                )  # fmt: skip
            kwargs[name] = metric
        elif isinstance(field, ArrayField) and value is not None:
            kwargs[name] = [field.base_field.to_python(v) for v in value]
        else:
            kwargs[name] = field.to_python(value)  # type: ignore[union-attr]
    return kwargs


def plan_snapshot(*, plan: PilotPlan) -> dict[str, Any]:
    """What a template keeps of ``plan`` (JSON-ready)."""
    content: dict[str, Any] = {
        "format": FORMAT,
        "plan": {name: getattr(plan, name) for name in PLAN_FIELDS},
        "sections": {
            SINGLETON_NAMES[model]: _dump(model.objects.get(plan=plan)) for model in SINGLETONS
        },
        "rows": {
            related: [_dump(row, skip) for row in getattr(plan, related).all()]
            for related, skip in ROWS
        },
    }
    return json.loads(json.dumps(content, cls=DjangoJSONEncoder))


@transaction.atomic
def plan_template_save(*, plan: PilotPlan, by: User, name: str) -> PlanTemplate:
    """Save ``plan``'s content as a template of its team, named ``name``."""
    _require_manager(team_id=plan.team_id, by=by)
    template = PlanTemplate(
        team_id=plan.team_id,
        name=(name or "").strip(),
        summary=plan.summary,
        content=plan_snapshot(plan=plan),
        source_plan=plan,
        created_by=by,
    )
    template.full_clean(exclude=["team", "source_plan", "created_by"], validate_unique=False)
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise ValidationError({"name": DUPLICATE}) from None
    return template


@transaction.atomic
def plan_template_delete(*, team: Team, template_id: int, by: User) -> None:
    """Delete one of the team's templates (plans started from it stay as they are)."""
    _require_manager(team_id=team.pk, by=by)
    deleted, _ = PlanTemplate.objects.filter(team=team, pk=template_id).delete()
    if not deleted:
        raise Http404("No such template")


def templates_of_teams(*, team_ids: list[int]) -> QuerySet[PlanTemplate]:
    """The templates of these teams (the caller's own: scope them before), by team and name."""
    return (
        PlanTemplate.objects.filter(team_id__in=team_ids)
        .select_related("team", "created_by")
        .order_by("team__name", "name")
    )


@transaction.atomic
def plan_create_from_team_template(
    *, template: PlanTemplate, author: User, title: str = ""
) -> PilotPlan:
    """A new Draft plan in the template's team with the template's content (its title, unless
    ``title`` is given). Whether ``author`` may start plans there is the caller's check."""
    team = template.team
    plan = plan_create(
        team=team, author=author, title=title or template.name, summary=template.summary
    )
    content = template.content
    for name, value in _load(PilotPlan, content.get("plan", {}), team.pk).items():
        setattr(plan, name, value)
    plan.full_clean()
    plan.save()
    for model in SINGLETONS:
        values = _load(model, content.get("sections", {}).get(SINGLETON_NAMES[model], {}), team.pk)
        if values:
            model.objects.filter(plan=plan).update(**values)
    for related, _skip in ROWS:
        model = PilotPlan._meta.get_field(related).related_model
        rows = [
            model(plan=plan, **_load(model, data, team.pk))  # type: ignore[operator]
            for data in content.get("rows", {}).get(related, [])
        ]
        if rows:
            model.objects.bulk_create(rows)  # type: ignore[union-attr]
    plan.refresh_from_db()
    return plan

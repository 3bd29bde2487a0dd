"""Editing a plan's sections without losing anyone's work.

Every edit names the section version it was based on. ``section_claim`` bumps that version with a
compare-and-set UPDATE inside the edit's transaction; when the row count is 0 somebody else saved
first and the edit is refused with ``SectionConflict`` — nothing is written. Validation runs before
the claim, so a refused edit never bumps a version either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Membership, TeamHoliday, User
from catalogue.selectors import metric_is_available
from core.exceptions import PreconditionFailed
from pilots import timeline
from pilots.editable import READ_ONLY, PlanReadOnly, plan_require_editable
from pilots.models import (
    Cohort,
    EnvironmentAndData,
    MonitoringAndSupport,
    PilotPlan,
    PlanSection,
    RollbackPlan,
    Section,
)
from pilots.services.review import section_edited
from pilots.signals import cohort_changed_send


class SectionConflict(PreconditionFailed):
    """Someone saved the section after the version this edit was based on."""

    def __init__(self, *, section: str, current: PlanSection):
        who = current.updated_by.display_name if current.updated_by else "someone"
        super().__init__(
            f"{Section(section).label} was changed by {who} while you were editing "
            f"(now version {current.version}). Your changes were not saved."
        )
        self.section = section
        self.current = current


@dataclass(frozen=True)
class SectionFields:
    """Which record holds a single-valued section and which of its fields are editable."""

    holder: str | None  # attribute of the plan (``"cohort"``) or None for the plan itself
    fields: tuple[str, ...]


SECTION_FIELDS: dict[str, SectionFields] = {
    Section.OVERVIEW: SectionFields(None, ("title", "summary", "release_ref")),
    Section.TIMELINE: SectionFields(
        None,
        ("time_zone", "start_date", "business_days", "check_times", "minimum_observation_days"),
    ),
    Section.OWNERSHIP: SectionFields(
        None, ("owner", "scrum_master", "decision_owner", "rollback_executor")
    ),
    Section.CHANGE_CONTROL: SectionFields(None, ("change_control",)),
    Section.COHORT: SectionFields(
        "cohort",
        (
            "description", "target_size", "opt_in_required", "consent_recorded",
            "feedback_channel", "practical_bound",
        ),
    ),
    Section.ENVIRONMENT: SectionFields(
        "environment",
        (
            "environment", "data_migration_rules", "privacy_constraints", "masking_rules",
            "uses_real_data",
        ),
    ),
    Section.MONITORING: SectionFields(
        "monitoring", ("communication_cadence", "training_done", "training_notes")
    ),
    Section.ROLLBACK_PLAN: SectionFields(
        "rollback_plan", ("data_considerations", "approver", "communication_plan")
    ),
}  # fmt: skip

MAX_BUSINESS_DAYS = 260  # pilots_pilotplan_business_days_range

# The one-to-one records every plan has from the start.
SINGLETONS: tuple[type[models.Model], ...] = (
    Cohort,
    EnvironmentAndData,
    MonitoringAndSupport,
    RollbackPlan,
)


def section_versions(*, plan: PilotPlan) -> dict[str, int]:
    return dict(PlanSection.objects.filter(plan=plan).values_list("key", "version"))


def section_claim(*, plan: PilotPlan, key: str, expected_version: int, user: User) -> int:
    """Compare-and-set the section's version; return the new one or raise ``SectionConflict``.

    Call inside the transaction that writes the section's content, after validating it. A plan
    that became Decided or Closed meanwhile is not claimed either (``PlanReadOnly``).
    """
    plan_require_editable(plan)
    now = timezone.now()
    claimed = PlanSection.objects.filter(plan=plan, key=key, version=expected_version).update(
        version=F("version") + 1, updated_by=user, updated_at=now
    )
    if not claimed:
        current = PlanSection.objects.select_related("updated_by").get(plan=plan, key=key)
        raise SectionConflict(section=key, current=current)
    # The plan's own version bump also checks its state (one row, re-read after any lock): a
    # plan decided or closed since it was loaded refuses the edit, and the transaction undoes
    # the claim above.
    bumped = (
        PilotPlan.objects.filter(pk=plan.pk)
        .exclude(status__in=READ_ONLY)
        .update(version=F("version") + 1, updated_at=now)
    )
    if not bumped:
        raise PlanReadOnly(PilotPlan.objects.get(pk=plan.pk))
    plan.version += 1
    section_edited(plan=plan, section=key, user=user)
    if key == Section.COHORT:
        # Segments or the practical bound may change: the representativeness check (above
        # pilots, in backlog) recomputes once this commits.
        cohort_changed_send(plan_id=plan.pk)
    return expected_version + 1


def validate_references(
    *, plan: PilotPlan, instance: models.Model, fields: tuple[str, ...]
) -> None:
    """People named in a plan are members of its team; metrics are the team's or built-in."""
    errors: dict[str, str] = {}
    member_ids: set[int] | None = None
    for name in fields:
        field = instance._meta.get_field(name)
        if not field.is_relation or not field.many_to_one:
            continue
        value_id = getattr(instance, field.attname)
        if value_id is None:
            continue
        target = field.related_model._meta.label
        if target == "accounts.User":
            if member_ids is None:
                member_ids = set(
                    Membership.objects.filter(team_id=plan.team_id).values_list(
                        "user_id", flat=True
                    )
                )
            if value_id not in member_ids:
                errors[name] = "Choose a member of the plan's team."
        elif target == "catalogue.MetricDefinition" and not metric_is_available(
            metric_id=value_id, team_id=plan.team_id
        ):
            errors[name] = "Unknown metric: choose one from the team's metric catalogue."
    if errors:
        raise ValidationError(errors)


def plan_end_date(*, plan: PilotPlan) -> dt.date | None:
    if plan.start_date is None:
        return None
    holidays = TeamHoliday.objects.filter(
        team_id=plan.team_id, date__gte=plan.start_date
    ).values_list("date", flat=True)
    return timeline.end_date(plan.start_date, plan.business_days, holidays)


def _holder(plan: PilotPlan, spec: SectionFields) -> models.Model:
    return plan if spec.holder is None else getattr(plan, spec.holder)


@transaction.atomic
def section_update(
    *, plan: PilotPlan, key: str, user: User, expected_version: int, values: dict[str, Any]
) -> PilotPlan:
    """Set the fields of a single-valued section. Unknown fields are refused, not ignored."""
    plan_require_editable(plan)
    spec = SECTION_FIELDS.get(key)
    if spec is None:
        raise ValidationError({"section": f"“{key}” is not a section with fields."})
    unknown = set(values) - set(spec.fields)
    if unknown:
        raise ValidationError({name: "Not a field of this section." for name in sorted(unknown)})
    instance = _holder(plan, spec)
    for name, value in values.items():
        setattr(instance, name, value)
    # Field by field first: a bad value is reported on its field, and is converted ("10" → 10)
    # before the checks below compare it.
    instance.clean_fields()
    if key == Section.TIMELINE:
        # The database's range check would only say "constraint violated", not which field.
        if not 1 <= plan.business_days <= MAX_BUSINESS_DAYS:
            raise ValidationError(
                {"business_days": f"A pilot lasts between 1 and {MAX_BUSINESS_DAYS} business days."}
            )
        plan.check_times = sorted(set(plan.check_times))
        # The end date follows the new start date before the plan's constraints are checked:
        # checked against the old end date, a start date moved past it would be refused.
        plan.end_date = plan_end_date(plan=plan)
    instance.full_clean()
    validate_references(plan=plan, instance=instance, fields=tuple(values))
    section_claim(plan=plan, key=key, expected_version=expected_version, user=user)
    update_fields = list(values)
    if key == Section.TIMELINE:
        update_fields = [*update_fields, "end_date"]
    # Only this section's fields: the plan row also holds other sections (and the version that
    # section_claim just bumped), which ``plan`` may hold stale copies of.
    instance.save(update_fields=update_fields)
    return plan


@transaction.atomic
def environment_set_compliance(
    *, plan: PilotPlan, user: User, expected_version: int, validated: bool
) -> EnvironmentAndData:
    """Record (or withdraw) that compliance and masking were validated, by whom and when."""
    plan_require_editable(plan)
    env = plan.environment
    if validated and not env.masking_rules.strip():
        raise ValidationError({"masking_rules": "Write the masking rules before validating them."})
    env.compliance_validated_by = user if validated else None
    env.compliance_validated_at = timezone.now() if validated else None
    section_claim(plan=plan, key=Section.ENVIRONMENT, expected_version=expected_version, user=user)
    env.save(update_fields=["compliance_validated_by", "compliance_validated_at"])
    return env

"""Plans over the API: one serializer per section and per kind of row, used both ways.

Serializers parse and render; they hold no business rules. What a value may be (a required title,
a threshold in range, a waived criterion's reason, a person who belongs to the team) is decided by
the services and the models' ``full_clean``, so the API refuses exactly what the pages refuse.

Read and write shapes are the same, so a client can GET a section, change a field and PUT it
back: read-only fields (``version``, ``id``, ``position``, ``end_date``, …) are ignored on input,
and a person or metric may be sent back as the object that was read. Fields a serializer does not
know are refused, never silently dropped.

References are resolved in the plan's team (``References``): people by user id or e-mail among
its members, metrics by key (``"csat"``) or id in its catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import UserOutputSerializer
from accounts.models import User
from catalogue.models import MetricDefinition
from catalogue.selectors import metric_list_for_team
from pilots.health import Gap, plan_health
from pilots.models import (
    CohortSegment,
    EntryCriterion,
    ExitCriterion,
    PilotPlan,
    ResponseSla,
    Risk,
    RollbackRehearsal,
    RollbackTrigger,
    ScopeItem,
    Section,
)
from pilots.models.sections import Comparator

NOT_A_MEMBER = "Choose a member of the plan's team."


# --- references: people and metrics ----------------------------------------------------------


class References:
    """The people and metrics a request may name: those of one team (one query each, on use)."""

    def __init__(self, *, team_id: int):
        self.team_id = team_id

    @cached_property
    def _members(self) -> dict[int, User]:
        return {u.pk: u for u in User.objects.filter(memberships__team_id=self.team_id)}

    @cached_property
    def _metrics(self) -> list[MetricDefinition]:
        # The team's own metrics first: on a key shared with the built-in catalogue, theirs wins.
        return sorted(metric_list_for_team(team_id=self.team_id), key=lambda m: m.team_id is None)

    def person(self, value: Any) -> User:
        if isinstance(value, Mapping):
            value = value.get("id", value.get("email"))
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            person = self._members.get(value)
        elif isinstance(value, str) and "@" in value:
            email = value.strip().lower()
            person = next((u for u in self._members.values() if u.email == email), None)
        else:
            raise serializers.ValidationError("Give a person as a user id or e-mail address.")
        if person is None:
            raise serializers.ValidationError(NOT_A_MEMBER)
        return person

    def metric(self, value: Any) -> MetricDefinition:
        if isinstance(value, Mapping):
            value = value.get("id", value.get("key"))
        if isinstance(value, int) and not isinstance(value, bool):
            metric = next((m for m in self._metrics if m.pk == value), None)
        elif isinstance(value, str):
            metric = next((m for m in self._metrics if m.key == value.strip()), None)
        else:
            raise serializers.ValidationError("Give a metric as its key (e.g. “csat”) or id.")
        if metric is None:
            raise serializers.ValidationError(
                f"Unknown metric “{value}”: choose a key or id from the team's metric catalogue."
            )
        return metric


class PersonField(serializers.Field):
    """Out: ``{id, email, full_name}``. In: a member's user id or e-mail (or the object read)."""

    def to_representation(self, value: User) -> dict[str, Any]:
        return UserOutputSerializer(value).data

    def to_internal_value(self, data: Any) -> User:
        return self.context["references"].person(data)


class MetricOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField()


class MetricField(serializers.Field):
    """Out: ``{id, key, name, unit}``. In: the metric's key (``"csat"``) or id (or the object)."""

    def to_representation(self, value: MetricDefinition) -> dict[str, Any]:
        return MetricOutputSerializer(value).data

    def to_internal_value(self, data: Any) -> MetricDefinition:
        return self.context["references"].metric(data)


class PersonFieldSchema(OpenApiSerializerFieldExtension):
    target_class = PersonField

    def map_serializer_field(self, auto_schema, direction):  # type: ignore[no-untyped-def]
        if direction == "response":
            return auto_schema.resolve_serializer(UserOutputSerializer, direction).ref
        return {
            "oneOf": [
                {"type": "integer", "description": "user id"},
                {"type": "string", "format": "email"},
            ],
            "description": "A member of the plan's team: user id or e-mail address.",
        }


class MetricFieldSchema(OpenApiSerializerFieldExtension):
    target_class = MetricField

    def map_serializer_field(self, auto_schema, direction):  # type: ignore[no-untyped-def]
        if direction == "response":
            return auto_schema.resolve_serializer(MetricOutputSerializer, direction).ref
        return {
            "oneOf": [
                {"type": "string", "description": "metric key, e.g. csat"},
                {"type": "integer", "description": "metric id"},
            ],
            "description": "A metric of the team's catalogue: its key (e.g. `csat`) or id.",
        }


# --- building blocks -------------------------------------------------------------------------


def free_text(**kwargs: Any) -> serializers.CharField:
    # Blank or not is the model's rule (a title is required, a summary is not), not the parser's.
    return serializers.CharField(allow_blank=True, **kwargs)


def number(**kwargs: Any) -> serializers.DecimalField:
    # Any finite number parses; the model checks its digits and range. Rendered as a JSON number.
    return serializers.DecimalField(
        max_digits=None, decimal_places=None, coerce_to_string=False, **kwargs
    )


class FlatListField(serializers.ListField):
    """A list whose errors are a flat list of reasons, like every other field's (DRF would key
    them by item index): ``{"check_times": ["“25:00”: Time has wrong format…"]}``."""

    def run_child_validation(self, data: list[Any]) -> list[Any]:
        try:
            return super().run_child_validation(data)
        except serializers.ValidationError as error:
            detail = error.detail if isinstance(error.detail, dict) else {}
            raise serializers.ValidationError(
                [f"“{data[i]}”: {reason}" for i, reasons in detail.items() for reason in reasons]
                or error.detail
            ) from None


HOUR_MINUTE = r"^([01]?[0-9]|2[0-3]):[0-5]?[0-9]$"


@extend_schema_field({"type": "string", "pattern": HOUR_MINUTE, "example": "10:00"})
class HourMinuteField(serializers.TimeField):
    """A time of day as ``HH:MM``, both ways. The schema says so with a pattern: OpenAPI's
    ``format: time`` is RFC 3339's, with seconds and an offset, which a check time has not."""

    def __init__(self, **kwargs: Any):
        super().__init__(format="%H:%M", input_formats=["%H:%M"], **kwargs)

    def to_internal_value(self, value: Any) -> Any:
        if not isinstance(value, str) or not re.match(HOUR_MINUTE, value, re.ASCII):
            self.fail("invalid", format="hh:mm")
        return super().to_internal_value(value)


@extend_schema_field(OpenApiTypes.INT)
class SectionVersionField(serializers.Field):
    """The version of a section (read-only): what ``If-Match`` must name to change it."""

    def __init__(self, section: str, **kwargs: Any):
        self.section = section
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value: Any) -> int:
        return self.context["versions"][self.section]


# Refuses field names it does not know: a typo must not be silently dropped. (A comment, not a
# docstring: the schema would show it on every section and row.)
class StrictSerializer(serializers.Serializer):
    unknown_field_message = "Not a field of this section."

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [self.unknown_field_message] for name in unknown}
                )
        return super().to_internal_value(data)


# --- single-valued sections --------------------------------------------------------------------
# Instance: the record holding the section (the plan itself, or its cohort, environment, …).
# On PUT every writable field is required; PATCH sends only the fields it changes.


class OverviewSectionSerializer(StrictSerializer):
    """The overview: title, summary, release / increment."""

    version = SectionVersionField(Section.OVERVIEW)
    title = free_text()
    summary = free_text()
    release_ref = free_text(help_text="Release / increment, e.g. PI-7.")


class TimelineSectionSerializer(StrictSerializer):
    """The time-box: start, business days, daily check times; the end date is computed."""

    version = SectionVersionField(Section.TIMELINE)
    time_zone = serializers.CharField(help_text="IANA time zone of the check times.")
    start_date = serializers.DateField(allow_null=True)
    business_days = serializers.IntegerField(help_text="The time-box, 1 to 260 business days.")
    check_times = FlatListField(
        child=HourMinuteField(),
        help_text='Daily check times in the plan\'s time zone, e.g. ["10:00", "16:00"].',
    )
    minimum_observation_days = serializers.IntegerField(
        min_value=0,
        max_value=60,
        required=False,
        help_text="Business days of data before the decision page recommends go, iterate or "
        "roll back (0 to 60, default 3).",
    )
    end_date = serializers.DateField(
        read_only=True,
        allow_null=True,
        help_text="Computed: start date + business days, skipping weekends and team holidays; "
        "null until the start date is set.",
    )


class OwnershipSectionSerializer(StrictSerializer):
    """Who owns the plan, decides at exit and executes a rollback (members of the team)."""

    version = SectionVersionField(Section.OWNERSHIP)
    owner = PersonField(help_text="The Product Owner who owns the plan.")
    scrum_master = PersonField(allow_null=True)
    decision_owner = PersonField(allow_null=True, help_text="Decides go / iterate / roll back.")
    rollback_executor = PersonField(allow_null=True, help_text="Executes a rollback.")


class ChangeControlSectionSerializer(StrictSerializer):
    """How learnings from the pilot reach the Product Backlog."""

    version = SectionVersionField(Section.CHANGE_CONTROL)
    change_control = free_text(help_text="How learnings become or re-prioritise backlog items.")


class CohortSectionSerializer(StrictSerializer):
    """Who takes part (its segments are the list ``segments``)."""

    version = SectionVersionField(Section.COHORT)
    description = free_text()
    target_size = serializers.IntegerField(allow_null=True)
    opt_in_required = serializers.BooleanField()
    consent_recorded = serializers.BooleanField()
    feedback_channel = free_text()
    practical_bound = number(
        required=False,
        help_text="Percentage points (0 to 50, default 5): the cohort is flagged as skewed only "
        "when a segment is off its intended share by more than this, and the test is "
        "significant.",
    )


class EnvironmentSectionSerializer(StrictSerializer):
    """Environment and data; compliance validation is set through …/compliance."""

    version = SectionVersionField(Section.ENVIRONMENT)
    environment = free_text()
    data_migration_rules = free_text()
    privacy_constraints = free_text()
    masking_rules = free_text()
    uses_real_data = serializers.BooleanField()
    compliance_validated_by = PersonField(read_only=True, allow_null=True)
    compliance_validated_at = serializers.DateTimeField(read_only=True, allow_null=True)


class MonitoringSectionSerializer(StrictSerializer):
    """Monitoring and support (lists: ``dashboards``, ``on-call``, ``response-slas``)."""

    version = SectionVersionField(Section.MONITORING)
    communication_cadence = free_text()
    training_done = serializers.BooleanField()
    training_notes = free_text()


class RollbackPlanSectionSerializer(StrictSerializer):
    """How a rollback is done (lists: ``rollback-steps``, ``rehearsals``)."""

    version = SectionVersionField(Section.ROLLBACK_PLAN)
    data_considerations = free_text()
    approver = PersonField(allow_null=True, help_text="Who approves a rollback.")
    communication_plan = free_text()


SECTION_SERIALIZERS: dict[str, type[StrictSerializer]] = {
    Section.OVERVIEW: OverviewSectionSerializer,
    Section.TIMELINE: TimelineSectionSerializer,
    Section.OWNERSHIP: OwnershipSectionSerializer,
    Section.CHANGE_CONTROL: ChangeControlSectionSerializer,
    Section.COHORT: CohortSectionSerializer,
    Section.ENVIRONMENT: EnvironmentSectionSerializer,
    Section.MONITORING: MonitoringSectionSerializer,
    Section.ROLLBACK_PLAN: RollbackPlanSectionSerializer,
}


class ComplianceInputSerializer(StrictSerializer):
    """Validate compliance and masking of the environment, or withdraw it."""

    validated = serializers.BooleanField(
        help_text="true: you validated compliance and masking (recorded with your name and the "
        "time); false: withdraw the validation."
    )


# --- rows of list sections ---------------------------------------------------------------------
# Every writable field is optional: a new row takes the model's defaults for what it omits (and
# the model says which fields a row cannot do without); PATCH sends only what changes.


class RowSerializer(StrictSerializer):
    unknown_field_message = "Not a field of this list."
    id = serializers.IntegerField(read_only=True)


class OrderedRowSerializer(RowSerializer):
    position = serializers.IntegerField(
        read_only=True, help_text="1, 2, 3, … in list order; change it with …/move."
    )


def choice(choices: Any, **kwargs: Any) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=choices, required=False, **kwargs)


_NAMED_CHOICE_FIELDS: dict[str, type[serializers.ChoiceField]] = {}


def named_choice(name: str, choices: Any, **kwargs: Any) -> serializers.ChoiceField:
    """A choice field shown in the schema as the enum ``<name>Enum``: choice sets that share a
    field name (a plan's and an entry criterion's ``status``) or share values (a risk's
    likelihood and impact) get one clear name each instead of a generated one."""
    if name not in _NAMED_CHOICE_FIELDS:
        schema = {"type": "string", "enum": [value for value, _label in choices]}
        field_class = type(f"{name}ChoiceField", (serializers.ChoiceField,), {})
        _NAMED_CHOICE_FIELDS[name] = extend_schema_field(schema, component_name=f"{name}Enum")(
            field_class
        )
    return _NAMED_CHOICE_FIELDS[name](choices=choices, **kwargs)


def rows_in_order(rows: Any) -> list[Any]:
    """A list's rows in the order the API gives them: as loaded, except scope items, which are
    numbered apart: included first, each in its order."""
    rows = list(rows.all() if hasattr(rows, "all") else rows)
    if rows and isinstance(rows[0], ScopeItem):
        rows.sort(key=lambda i: (i.kind != ScopeItem.Kind.INCLUDED, i.position))
    return rows


class ScopeItemListSerializer(serializers.ListSerializer):
    def to_representation(self, data: Any) -> list[Any]:
        return super().to_representation(rows_in_order(data))


class ScopeItemSerializer(OrderedRowSerializer):
    """A story or epic slice in the pilot, or left out of it with the reason."""

    kind = choice(
        ScopeItem.Kind.choices, help_text="Included and excluded items are ordered apart."
    )
    reference = free_text(required=False, help_text="e.g. US-145")
    title = free_text(required=False)
    reason = free_text(
        required=False, help_text="Why it is excluded (required for excluded items)."
    )

    class Meta:
        list_serializer_class = ScopeItemListSerializer


class SegmentSerializer(OrderedRowSerializer):
    """A slice of the cohort with its intended share."""

    dimension = choice(CohortSegment.Dimension.choices)
    value = free_text(required=False, help_text="e.g. Region A")
    intended_share = number(required=False, help_text="Per cent of the cohort, 0–100.")


class EntryCriterionSerializer(OrderedRowSerializer):
    """A condition to meet before the pilot starts."""

    text = free_text(required=False)
    kind = choice(EntryCriterion.Kind.choices)
    status = named_choice(
        "EntryCriterionStatus",
        EntryCriterion.Status.choices,
        required=False,
        help_text="Met / waived records who and when.",
    )
    evidence_url = free_text(required=False, help_text="Met needs evidence: a link or a note.")
    evidence_note = free_text(required=False)
    waiver_reason = free_text(required=False)
    confirmed_by = PersonField(read_only=True, allow_null=True)
    confirmed_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="When it was confirmed (not in the future); now when omitted.",
    )


class ExitCriterionSerializer(OrderedRowSerializer):
    """A quantitative success threshold: metric, aggregation, comparator, threshold."""

    metric = MetricField(required=False)
    aggregation = choice(ExitCriterion.Aggregation.choices)
    percentile = number(required=False, allow_null=True, help_text="For a percentile, e.g. 95.")
    denominator = MetricField(
        required=False, allow_null=True, help_text="For a rate or ratio: what it is per."
    )
    per_n = serializers.IntegerField(
        required=False, allow_null=True, help_text="e.g. 1000 sessions."
    )
    comparator = choice(Comparator.choices)
    threshold = number(required=False, allow_null=True, help_text="Empty = not decided yet.")
    unit = free_text(required=False)
    window_hours = serializers.IntegerField(
        required=False, allow_null=True, help_text="Empty = the whole pilot."
    )
    min_sample_size = serializers.IntegerField(required=False)
    blocking = serializers.BooleanField(required=False, help_text="false = advisory.")


class DashboardSerializer(OrderedRowSerializer):
    """A monitoring dashboard."""

    name = free_text(required=False, help_text="e.g. P-01")
    url = free_text(required=False)


class OnCallShiftSerializer(RowSerializer):
    """Who is on call from one date to another (inclusive)."""

    person = PersonField(required=False, allow_null=True)
    person_name = free_text(required=False, help_text="When the person is not a Pilotplan user.")
    starts_on = serializers.DateField(required=False)
    ends_on = serializers.DateField(required=False)


class ResponseSlaSerializer(RowSerializer):
    """The response time for one severity."""

    severity = choice(ResponseSla.Severity.choices)
    response_minutes = serializers.IntegerField(required=False)


class RollbackTriggerSerializer(OrderedRowSerializer):
    """A condition that calls for a rollback: any occurrence, or sustained for N minutes."""

    metric = MetricField(required=False)
    comparator = choice(Comparator.choices)
    threshold = number(required=False)
    mode = choice(RollbackTrigger.Mode.choices)
    sustained_minutes = serializers.IntegerField(
        required=False, allow_null=True, help_text="For “sustained”; empty for “any”."
    )
    description = free_text(required=False)


class RollbackStepSerializer(OrderedRowSerializer):
    """One step of the rollback, in order."""

    action = free_text(required=False)
    owner = PersonField(required=False, allow_null=True)
    expected_minutes = serializers.IntegerField(required=False, allow_null=True)


class RehearsalSerializer(RowSerializer):
    """A rehearsal of the rollback (newest first)."""

    rehearsed_on = serializers.DateField(required=False)
    outcome = choice(RollbackRehearsal.Outcome.choices)
    notes = free_text(required=False)


class RiskSerializer(OrderedRowSerializer):
    """A risk with likelihood, impact, mitigation and owner."""

    description = free_text(required=False)
    likelihood = named_choice("RiskLevel", Risk.Level.choices, required=False)
    impact = named_choice("RiskLevel", Risk.Level.choices, required=False)
    mitigation = free_text(required=False)
    owner = PersonField(required=False, allow_null=True)


# Keyed by pilots.services.ROW_KINDS slugs.
ROW_SERIALIZERS: dict[str, type[RowSerializer]] = {
    "scope-items": ScopeItemSerializer,
    "segments": SegmentSerializer,
    "entry-criteria": EntryCriterionSerializer,
    "exit-criteria": ExitCriterionSerializer,
    "dashboards": DashboardSerializer,
    "on-call": OnCallShiftSerializer,
    "response-slas": ResponseSlaSerializer,
    "rollback-triggers": RollbackTriggerSerializer,
    "rollback-steps": RollbackStepSerializer,
    "rehearsals": RehearsalSerializer,
    "risks": RiskSerializer,
}


def rows_output_serializer(slug: str) -> type[serializers.Serializer]:
    """The shape of one list: its section, the section's version and the rows in order."""
    return type(
        f"{ROW_SERIALIZERS[slug].__name__.removesuffix('Serializer')}ListSerializer",
        (serializers.Serializer,),
        {
            "kind": serializers.CharField(),
            "section": serializers.CharField(),
            "version": serializers.IntegerField(
                help_text="The section's version: send it in If-Match to change these rows."
            ),
            "count": serializers.IntegerField(help_text="Rows in the list, on every page."),
            "next": serializers.URLField(
                allow_null=True, help_text="The next page of rows; null on the last."
            ),
            "previous": serializers.URLField(
                allow_null=True, help_text="The previous page of rows; null on the first."
            ),
            "rows": ROW_SERIALIZERS[slug](
                many=True, help_text=f"This page's rows, in order: at most {ROWS_PER_PAGE}."
            ),
        },
    )


class MoveInputSerializer(StrictSerializer):
    """Move a row one place up or down."""

    unknown_field_message = "Not a field of a move."
    offset = serializers.ChoiceField(
        choices=[(-1, "up"), (1, "down")], help_text="-1 moves the row up one place, 1 down."
    )


# --- the whole plan ----------------------------------------------------------------------------


# A list holds at most this many rows in the plan document and on each page of its rows
# endpoint (``plans/<id>/rows/<list>?page=2``): a plan with hundreds of rows per list still
# answers in one small response, and ``row_lists`` says how many there are and where the rest is.
ROWS_PER_PAGE = 50


class FirstRowsSerializer(serializers.ListSerializer):
    """A row list of the plan document: its first ``ROWS_PER_PAGE`` rows, in order."""

    def to_representation(self, data: Any) -> list[Any]:
        return super().to_representation(rows_in_order(data)[:ROWS_PER_PAGE])


def row_list(serializer: type[RowSerializer], source: str | None = None) -> RowSerializer:
    kwargs = {"source": source} if source else {}
    return FirstRowsSerializer(  # type: ignore[return-value]
        child=serializer(),
        read_only=True,
        help_text=f"The first {ROWS_PER_PAGE} rows, in order; `row_lists` has the rest.",
        **kwargs,
    )


class RowListRefSerializer(serializers.Serializer):
    """One row list of the plan: how many rows it has and where to read them page by page."""

    count = serializers.IntegerField(help_text="Rows in the list.")
    complete = serializers.BooleanField(
        help_text=f"Whether the document holds every row (at most {ROWS_PER_PAGE} are)."
    )
    url = serializers.URLField(help_text="The list's rows, page by page (`?page=2`, …).")
    next = serializers.URLField(
        allow_null=True,
        help_text="The page after the rows in the document; null when it holds them all.",
    )


class ScopeDocumentSerializer(serializers.Serializer):
    version = SectionVersionField(Section.SCOPE)
    scope_items = row_list(ScopeItemSerializer)


class CohortDocumentSerializer(CohortSectionSerializer):
    segments = row_list(SegmentSerializer, "plan.segments")


class EntryCriteriaDocumentSerializer(serializers.Serializer):
    version = SectionVersionField(Section.ENTRY_CRITERIA)
    entry_criteria = row_list(EntryCriterionSerializer)


class ExitCriteriaDocumentSerializer(serializers.Serializer):
    version = SectionVersionField(Section.EXIT_CRITERIA)
    exit_criteria = row_list(ExitCriterionSerializer)


class MonitoringDocumentSerializer(MonitoringSectionSerializer):
    dashboards = row_list(DashboardSerializer, "plan.dashboards")
    on_call = row_list(OnCallShiftSerializer, "plan.on_call")
    response_slas = row_list(ResponseSlaSerializer, "plan.response_slas")


class RollbackTriggersDocumentSerializer(serializers.Serializer):
    version = SectionVersionField(Section.ROLLBACK_TRIGGERS)
    rollback_triggers = row_list(RollbackTriggerSerializer)


class RollbackPlanDocumentSerializer(RollbackPlanSectionSerializer):
    rollback_steps = row_list(RollbackStepSerializer, "plan.rollback_steps")
    rehearsals = row_list(RehearsalSerializer, "plan.rollback_rehearsals")


class RisksDocumentSerializer(serializers.Serializer):
    version = SectionVersionField(Section.RISKS)
    risks = row_list(RiskSerializer)


class PlanSectionsSerializer(serializers.Serializer):
    """Every section, in the plan's order, each with its version and its rows."""

    overview = OverviewSectionSerializer(source="*", read_only=True)
    scope = ScopeDocumentSerializer(source="*", read_only=True)
    cohort = CohortDocumentSerializer(read_only=True)
    environment = EnvironmentSectionSerializer(read_only=True)
    entry_criteria = EntryCriteriaDocumentSerializer(source="*", read_only=True)
    exit_criteria = ExitCriteriaDocumentSerializer(source="*", read_only=True)
    monitoring = MonitoringDocumentSerializer(read_only=True)
    rollback_triggers = RollbackTriggersDocumentSerializer(source="*", read_only=True)
    rollback_plan = RollbackPlanDocumentSerializer(read_only=True)
    timeline = TimelineSectionSerializer(source="*", read_only=True)
    ownership = OwnershipSectionSerializer(source="*", read_only=True)
    change_control = ChangeControlSectionSerializer(source="*", read_only=True)
    risks = RisksDocumentSerializer(source="*", read_only=True)


class TeamRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class GapSerializer(serializers.Serializer):
    section = serializers.ChoiceField(choices=Section.choices)
    code = serializers.CharField(
        help_text="Stable identifier, e.g. exit_criterion_without_threshold."
    )
    message = serializers.CharField()


class PlanDocumentSerializer(serializers.Serializer):
    """The whole plan. Its ETag is ``version``, which every change to any section bumps."""

    id = serializers.IntegerField()
    team = TeamRefSerializer()
    status = named_choice("PlanStatus", PilotPlan.Status.choices)
    version = serializers.IntegerField(help_text="Bumped by every change to the plan.")
    my_role = serializers.CharField(source="viewer_role", help_text="Your role in the team.")
    can_edit = serializers.SerializerMethodField()
    cloned_from = serializers.IntegerField(
        source="cloned_from_id", allow_null=True, help_text="The plan this one was cloned from."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    sections = PlanSectionsSerializer(source="*")
    health = serializers.SerializerMethodField(
        help_text="Plan health: every gap, in section order; empty when the plan is complete."
    )
    row_lists = serializers.SerializerMethodField(
        help_text=f"Every row list by its name in the URL (`exit-criteria`): its row count and "
        f"where to read it page by page. The sections hold each list's first {ROWS_PER_PAGE} rows."
    )

    def get_can_edit(self, plan: PilotPlan) -> bool:
        return bool(self.context["can_edit"])

    @extend_schema_field(serializers.DictField(child=RowListRefSerializer()))
    def get_row_lists(self, plan: PilotPlan) -> dict[str, Any]:
        return {
            slug: RowListRefSerializer(ref).data for slug, ref in self.context["row_lists"].items()
        }

    @extend_schema_field(GapSerializer(many=True))
    def get_health(self, plan: PilotPlan) -> list[dict[str, Any]]:
        gaps: list[Gap] = plan_health(plan)
        return GapSerializer(gaps, many=True).data


class PlanSummarySerializer(serializers.Serializer):
    """A plan in a list: enough to pick one; GET /plans/{id} for the whole document."""

    id = serializers.IntegerField()
    team = TeamRefSerializer()
    title = serializers.CharField()
    summary = serializers.CharField()
    release_ref = serializers.CharField()
    status = named_choice("PlanStatus", PilotPlan.Status.choices)
    version = serializers.IntegerField()
    owner = PersonField()
    start_date = serializers.DateField(allow_null=True)
    business_days = serializers.IntegerField()
    end_date = serializers.DateField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PlanListFilterSerializer(serializers.Serializer):
    team = serializers.IntegerField(required=False, help_text="Only this team's plans.")
    status = named_choice("PlanStatus", PilotPlan.Status.choices, required=False)


class PlanCreateInputSerializer(StrictSerializer):
    """A new plan: from scratch, from the template, or a clone."""

    unknown_field_message = "Not a field of a new plan."
    team = serializers.IntegerField(help_text="The team; you must be its Product Owner.")
    title = free_text(required=False, help_text="Required for a plan from scratch.")
    summary = free_text(required=False)
    from_template = serializers.BooleanField(
        default=False, help_text="Start from the built-in example plan."
    )
    clone_of = serializers.IntegerField(
        required=False, allow_null=True, help_text="Copy this earlier plan of the same team."
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("from_template") and data.get("clone_of") is not None:
            raise serializers.ValidationError(
                "Start from the template or from an earlier plan, not both."
            )
        return data

"""Shapes of the review, sign-off, lifecycle and history resources (pilots/api/review_views.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import UserOutputSerializer
from pilots.models import PilotPlan


class SignOffOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    signed_by = UserOutputSerializer()
    signed_at = serializers.DateTimeField()
    plan_version = serializers.IntegerField(help_text="The plan version this sign-off approved.")
    section_versions = serializers.DictField(
        child=serializers.IntegerField(), help_text="{section key: version} as approved."
    )
    voided_at = serializers.DateTimeField(allow_null=True)
    voided_by = UserOutputSerializer(allow_null=True)
    voided_reason = serializers.CharField()


class ChecklistQuestionSerializer(serializers.Serializer):
    key = serializers.CharField()
    question = serializers.CharField()
    answer = serializers.ChoiceField(
        choices=["yes", "no", "na"], allow_null=True, help_text="null: not answered yet."
    )
    note = serializers.CharField(help_text="Why, for a no (required then).")


class ReviewOutputSerializer(serializers.Serializer):
    """One review as the API shows it; built from a dict by ``review_views._review_data``."""

    kind = serializers.CharField()
    label = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    covers = serializers.ListField(child=serializers.CharField(), help_text="Section keys.")
    notes = serializers.CharField()
    checklist = ChecklistQuestionSerializer(many=True)
    concerns = serializers.CharField()
    version = serializers.IntegerField(help_text="Send it in If-Match to change the review.")
    updated_by = UserOutputSerializer(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    sign_off = SignOffOutputSerializer(allow_null=True, help_text="The active sign-off, if any.")
    voided_sign_offs = SignOffOutputSerializer(many=True)


class ReviewsOutputSerializer(serializers.Serializer):
    plan_version = serializers.IntegerField()
    reviews = ReviewOutputSerializer(many=True)


class ReviewInputSerializer(serializers.Serializer):
    notes = serializers.CharField(required=False, allow_blank=True)
    checklist = serializers.DictField(
        child=serializers.ChoiceField(choices=["yes", "no", "na"], allow_null=True),
        required=False,
        help_text='{question key: "yes" | "no" | "na" | null}; only this review\'s questions. '
        "Signing needs every question answered.",
    )
    checklist_notes = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="{question key: note}; a no needs one.",
    )
    concerns = serializers.CharField(required=False, allow_blank=True)


class TransitionInputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["submit", "withdraw", "approve", "start", "evaluate", "decide", "close"]
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    override_gaps = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Only for `submit`: submit although plan health lists gaps; `reason` says why.",
    )
    confirm_early_start = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Only for `start`: start before the start date, which moves it to today.",
    )
    decision = serializers.ChoiceField(
        choices=PilotPlan.Decision.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="Unused: `decide` is refused here (400 on `action`); the decision is "
        "recorded with its evidence at `POST /api/v1/plans/{id}/decisions`.",
    )


class TransitionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    actor = UserOutputSerializer(
        allow_null=True, help_text="null: Pilotplan took the step by itself (the time-box ended)."
    )
    reason = serializers.CharField()
    overridden_gaps = serializers.ListField(
        child=serializers.CharField(),
        help_text="A submission over plan-health gaps: the gaps its submitter overrode.",
    )
    at = serializers.DateTimeField()


class AvailableTransitionSerializer(serializers.Serializer):
    action = serializers.CharField()
    label = serializers.CharField()
    target = serializers.CharField()
    blockers = serializers.ListField(
        child=serializers.CharField(), help_text="What is missing; empty when you may take it."
    )


class TransitionsOutputSerializer(serializers.Serializer):
    status = serializers.CharField()
    transitions = TransitionOutputSerializer(many=True)
    available = AvailableTransitionSerializer(many=True)


class HistoryEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="pgh_created_at")
    label = serializers.CharField(source="pgh_label")
    model = serializers.CharField(source="pgh_model")
    object_id = serializers.CharField(source="pgh_obj_id", allow_null=True)
    diff = serializers.SerializerMethodField()
    user = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_diff(self, event: Any) -> dict[str, Any] | None:
        """{field: [before, after]}; null for inserts and deletes."""
        return event.pgh_diff

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_user(self, event: Any) -> int | None:
        """The id of the user who made the change (null: no request, e.g. a worker)."""
        context = event.pgh_context or {}
        user = context.get("user") if isinstance(context, dict) else None
        return int(user) if user is not None else None


class TimeboxExtensionInputSerializer(serializers.Serializer):
    new_end_date = serializers.DateField(help_text="The new last business day of the pilot.")
    reason = serializers.CharField(allow_blank=True, max_length=2000)


class TimeboxExtensionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    old_end_date = serializers.DateField()
    new_end_date = serializers.DateField()
    reason = serializers.CharField()
    actor = UserOutputSerializer()
    at = serializers.DateTimeField()

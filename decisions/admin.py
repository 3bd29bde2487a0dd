from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from decisions.models import DecisionRecord


@admin.register(DecisionRecord)
class DecisionRecordAdmin(admin.ModelAdmin):
    """Read only: a decision record is never edited or deleted (the database refuses it too);
    a correction is recorded on the decision page as a new record."""

    list_display = ["plan", "outcome", "recommendation", "recorded_by", "recorded_at"]
    list_filter = ["outcome", "recommendation"]
    search_fields = ["plan__title"]
    list_select_related = ["plan", "recorded_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

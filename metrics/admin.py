from django.contrib import admin

from metrics.models import Heartbeat, PlanJobFailure


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "beat_at", "beats", "completed_at", "failed_plans", "failed_at"]


@admin.register(PlanJobFailure)
class PlanJobFailureAdmin(admin.ModelAdmin):
    list_display = ["plan", "job", "category", "first_at", "last_at", "count"]
    list_filter = ["job", "category"]

from django.contrib import admin

from pilots.models import PilotPlan


@admin.register(PilotPlan)
class PilotPlanAdmin(admin.ModelAdmin):
    list_display = ["title", "team", "status", "updated_at"]
    list_filter = ["status", "team"]
    search_fields = ["title"]

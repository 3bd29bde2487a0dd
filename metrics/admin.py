from django.contrib import admin

from metrics.models import Heartbeat, MetricDefinition


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "beat_at", "beats"]


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "unit", "kind", "direction", "team"]
    list_filter = ["kind", "team"]
    search_fields = ["key", "name"]

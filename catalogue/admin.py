from django.contrib import admin

from catalogue.models import MetricDefinition


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "unit", "kind", "direction", "team"]
    list_filter = ["kind", "team"]
    search_fields = ["key", "name"]

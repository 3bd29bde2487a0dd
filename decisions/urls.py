from django.shortcuts import redirect
from django.urls import path

from decisions import views, views_rollback

app_name = "decisions"

urlpatterns = [
    *views.urlpatterns,
    *views_rollback.urlpatterns,
    # PLACEHOLDER (h-record) until the page helper's decision page (views_decision) is merged:
    # the lifecycle panel and the decision notifications link here. The lead resolves.
    path(
        "plans/<int:plan_id>/decision",
        lambda request, plan_id: redirect("pilots:plan_review", plan_id),
        name="decision",
    ),
]

"""Plans under /api/v1/ (namespace "api").

Sections and lists get one literal path each (``plans/<id>/sections/cohort``,
``plans/<id>/rows/exit-criteria``), all named alike with the key or slug as a default kwarg, so
``reverse("api:plan-section", kwargs={"plan_id": 7, "key": "cohort"})`` works and the schema
documents each one's own fields. The unnamed catch-alls after them answer unknown keys and
slugs with a JSON 404 instead of the HTML one.
"""

from django.urls import path

from pilots.api import views

P = "plans/<int:plan_id>"

urlpatterns = [
    path("plans", views.plan_list, name="plan-list"),
    path(P, views.plan_detail, name="plan-detail"),
    path(
        f"{P}/sections/environment/compliance",
        views.environment_compliance,
        name="plan-environment-compliance",
    ),
    *[
        path(f"{P}/sections/{key}", view, {"key": key}, name="plan-section")
        for key, view in views.SECTION_VIEWS.items()
    ],
    path(f"{P}/sections/<str:key>", views.section_any),
]

for slug, endpoints in views.ROW_VIEWS.items():
    urlpatterns += [
        path(f"{P}/rows/{slug}", endpoints["rows"], {"slug": slug}, name="plan-rows"),
        path(f"{P}/rows/{slug}/<int:row_id>", endpoints["row"], {"slug": slug}, name="plan-row"),
    ]
    if "move" in endpoints:
        urlpatterns.append(
            path(
                f"{P}/rows/{slug}/<int:row_id>/move",
                endpoints["move"],
                {"slug": slug},
                name="plan-row-move",
            )
        )

urlpatterns += [
    path(f"{P}/rows/<str:slug>", views.rows_any),
    path(f"{P}/rows/<str:slug>/<int:row_id>", views.row_any),
    path(f"{P}/rows/<str:slug>/<int:row_id>/move", views.row_move_any),
]

# Review, sign-off, lifecycle and history (pilots/api/review_views.py).
from pilots.api.holidays import urlpatterns as holiday_urlpatterns  # noqa: E402
from pilots.api.review_urls import urlpatterns as review_urlpatterns  # noqa: E402

urlpatterns += review_urlpatterns
urlpatterns += holiday_urlpatterns

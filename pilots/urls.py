"""Browser URLs of the pilots app (mounted at the site root): a plan's pages under
``plans/<id>/``, the team holiday calendar under ``teams/<id>/`` with the team's other settings.
The words are docs/glossary.md's."""

from django.urls import include, path

from pilots.views import export, guests, history, holidays, plan_templates, plans, review, rows

app_name = "pilots"

urlpatterns = [
    path(
        "plans/",
        include(
            [
                *plans.urlpatterns,
                *rows.urlpatterns,
                *export.urlpatterns,
                *review.urlpatterns,
                *guests.urlpatterns,
                *history.urlpatterns,
            ]
        ),
    ),
    *holidays.urlpatterns,
    *plan_templates.urlpatterns,
    *guests.invitee_urlpatterns,
]

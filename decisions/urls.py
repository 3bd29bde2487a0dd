from decisions import (
    views,
    views_cockpit,
    views_decision,
    views_feedback,
    views_my_work,
    views_review,
    views_rollback,
)

app_name = "decisions"

urlpatterns = [
    *views.urlpatterns,
    *views_decision.urlpatterns,
    *views_rollback.urlpatterns,
    *views_review.urlpatterns,
    *views_feedback.urlpatterns,
    *views_my_work.urlpatterns,
    *views_cockpit.urlpatterns,
]

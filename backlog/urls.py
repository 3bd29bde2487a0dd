from backlog import views, views_change, views_enrolment, views_feedback, views_participants

app_name = "backlog"

urlpatterns = [
    *views.urlpatterns,
    *views_change.urlpatterns,
    *views_participants.urlpatterns,
    *views_enrolment.urlpatterns,
    *views_feedback.urlpatterns,
]

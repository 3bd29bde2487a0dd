from decisions import views, views_review, views_rollback

app_name = "decisions"

urlpatterns = [
    *views.urlpatterns,
    *views_rollback.urlpatterns,
    *views_review.urlpatterns,
]

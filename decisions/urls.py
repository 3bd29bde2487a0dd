from decisions import views, views_review

app_name = "decisions"

urlpatterns = [
    *views.urlpatterns,
    *views_review.urlpatterns,
]

from decisions import views, views_decision

app_name = "decisions"

urlpatterns = [
    *views.urlpatterns,
    *views_decision.urlpatterns,
]

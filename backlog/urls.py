from backlog import views, views_feedback

app_name = "backlog"

urlpatterns = [*views.urlpatterns, *views_feedback.urlpatterns]

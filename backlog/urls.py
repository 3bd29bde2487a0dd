from backlog import views, views_change

app_name = "backlog"

urlpatterns = [*views.urlpatterns, *views_change.urlpatterns]

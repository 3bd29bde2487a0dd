from backlog import views

app_name = "backlog"

urlpatterns = [*views.urlpatterns]

from decisions import views

app_name = "decisions"

urlpatterns = views.urlpatterns

from catalogue import views

app_name = "catalogue"

urlpatterns = views.urlpatterns

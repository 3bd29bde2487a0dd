from decisions import views, views_rollback

app_name = "decisions"

urlpatterns = views.urlpatterns + views_rollback.urlpatterns

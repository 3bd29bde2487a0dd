from decisions import views, views_decision

app_name = "decisions"

urlpatterns = views.urlpatterns
urlpatterns += views_decision.urlpatterns

from django.urls import path

from metrics import views

app_name = "metrics"

urlpatterns = [
    path("teams/<int:team_id>/", views.metric_catalogue, name="catalogue"),
    path("teams/<int:team_id>/new", views.metric_add, name="add"),
]

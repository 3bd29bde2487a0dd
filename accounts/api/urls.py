from django.urls import path

from accounts.api import people, views

urlpatterns = [
    path("me", views.me, name="me"),
    path("teams", views.team_list, name="team-list"),
    path("teams/<int:team_id>", views.team_detail, name="team-detail"),
]

urlpatterns += people.urlpatterns

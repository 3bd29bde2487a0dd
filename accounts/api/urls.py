from django.urls import path

from accounts.api import credentials, people, views

urlpatterns = [
    path("me", views.me, name="me"),
    path("teams", views.team_list, name="team-list"),
    path("teams/<int:team_id>", views.team_detail, name="team-detail"),
    path("teams/<int:team_id>/api-keys", credentials.team_api_keys, name="team-api-keys"),
    path(
        "teams/<int:team_id>/api-keys/<int:key_id>",
        credentials.team_api_key,
        name="team-api-key",
    ),
    path(
        "teams/<int:team_id>/api-keys/<int:key_id>/rotate",
        credentials.team_api_key_rotate,
        name="team-api-key-rotate",
    ),
    path("me/tokens", credentials.my_tokens, name="me-tokens"),
    path("me/tokens/<int:token_id>", credentials.my_token, name="me-token"),
]

urlpatterns += people.urlpatterns

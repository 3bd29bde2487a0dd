from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views, views_api_keys, views_notifications, views_team, views_tokens

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("teams/", views.team_list, name="team_list"),
    path("teams/new", views.team_create, name="team_create"),
    path("teams/<int:team_id>/", views_team.team_detail, name="team_detail"),
    path(
        "teams/<int:team_id>/members/<int:user_id>/role",
        views_team.member_role,
        name="team_member_role",
    ),
    path(
        "teams/<int:team_id>/members/<int:user_id>/remove",
        views_team.member_remove,
        name="team_member_remove",
    ),
    path(
        "teams/<int:team_id>/invitations/new",
        views_team.invitation_add,
        name="team_invitation_add",
    ),
    path(
        "teams/<int:team_id>/invitations/<int:invitation_id>/withdraw",
        views_team.invitation_revoke,
        name="team_invitation_revoke",
    ),
    # The e-mailed link (pilots' /invitations/ lists plan invitations; a token is no number).
    path("invitations/<str:token>", views_team.team_invitation, name="team_invitation"),
    path("teams/<int:team_id>/api-keys", views_api_keys.api_key_list, name="api_key_list"),
    path("teams/<int:team_id>/api-keys/new", views_api_keys.api_key_add, name="api_key_add"),
    path(
        "teams/<int:team_id>/api-keys/<int:key_id>/revoke",
        views_api_keys.api_key_revoke_view,
        name="api_key_revoke",
    ),
    path("settings/tokens", views_tokens.token_list, name="token_list"),
    path("settings/time-zone", views_tokens.time_zone_set, name="time_zone_set"),
    path("settings/tokens/new", views_tokens.token_add, name="token_add"),
    path("settings/tokens/<int:token_id>/revoke", views_tokens.token_revoke, name="token_revoke"),
    path(
        "teams/<int:team_id>/api-keys/<int:key_id>/rotate",
        views_api_keys.api_key_rotate_view,
        name="api_key_rotate",
    ),
    path("notifications/", views_notifications.notification_list, name="notification_list"),
    path("notifications/bell", views_notifications.notification_bell, name="notification_bell"),
    path(
        "notifications/read-all",
        views_notifications.notification_mark_all_read,
        name="notification_mark_all_read",
    ),
    path(
        "notifications/<int:notification_id>/open",
        views_notifications.notification_open,
        name="notification_open",
    ),
    path(
        "notifications/e-mail",
        views_notifications.notification_email_preference,
        name="notification_email_preference",
    ),
]

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views, views_notifications

app_name = "accounts"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("teams/", views.team_list, name="team_list"),
    path("teams/new", views.team_create, name="team_create"),
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

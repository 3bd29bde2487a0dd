from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and teams"

    def ready(self) -> None:
        # Failed log-ins and lockouts are logged as security events (accounts/throttle.py).
        from accounts import throttle  # noqa: F401

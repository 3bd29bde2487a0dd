from django.apps import AppConfig


class PilotplanConfig(AppConfig):
    """The project package, installed as an app for its cross-app management commands."""

    name = "pilotplan"
    verbose_name = "Pilotplan"

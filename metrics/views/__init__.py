"""Browser views of the metrics app, one module per topic, each with its ``urlpatterns``."""

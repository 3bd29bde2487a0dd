"""HTML views of the pilots app, one module per screen or topic; each exports ``urlpatterns``."""

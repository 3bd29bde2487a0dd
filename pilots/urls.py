from pilots.views import export, plans, rows

app_name = "pilots"

urlpatterns = [*plans.urlpatterns, *rows.urlpatterns, *export.urlpatterns]

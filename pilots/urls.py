from pilots.views import export, holidays, plans, rows

app_name = "pilots"

urlpatterns = [
    *plans.urlpatterns,
    *rows.urlpatterns,
    *export.urlpatterns,
    *holidays.urlpatterns,
]

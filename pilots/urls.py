from pilots.views import export, guests, holidays, plans, review, rows

app_name = "pilots"

urlpatterns = [
    *plans.urlpatterns,
    *rows.urlpatterns,
    *export.urlpatterns,
    *holidays.urlpatterns,
    *review.urlpatterns,
    *guests.urlpatterns,
]

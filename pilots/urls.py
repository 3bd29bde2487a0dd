from pilots.views import export, guests, holidays, plans, portfolio, review, rows

app_name = "pilots"

urlpatterns = [
    *plans.urlpatterns,
    *rows.urlpatterns,
    *export.urlpatterns,
    *holidays.urlpatterns,
    *review.urlpatterns,
    *portfolio.urlpatterns,
    *guests.urlpatterns,
]

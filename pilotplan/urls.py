from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from pilotplan import api, health, redirects
from pilots.views.home import home

api_v1 = [
    path("", api.api_root, name="root"),
    path("", include("accounts.api.urls")),
    path("", include("catalogue.api.views")),
    path("", include("pilots.api.urls")),
    path("", include("metrics.api.urls")),
    path("", include("decisions.api.gate")),
    path("", include("decisions.api.urls")),
    path("", include("backlog.api.urls")),
]

urlpatterns = [
    path("", home, name="home"),
    path("", include("accounts.urls")),
    path("", include("pilots.urls")),
    path("", include("metrics.urls")),
    path("", include("catalogue.urls")),
    path("", include("decisions.urls")),
    path("", include("backlog.urls")),
    # Old addresses (/pilots/…, /metrics/teams/…): permanent redirects to the ones above.
    *redirects.urlpatterns,
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # No OPTIONS answer from the HTML page (DRF would render its metadata through the page's
    # template renderer and fail): 405, as problem details.
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", metadata_class=None),
        name="api-docs",
    ),
]

# Under /api/ these answer JSON in the API's error shape; elsewhere Django's pages (templates/).
handler400 = api.bad_request
handler403 = api.permission_denied
handler404 = api.page_not_found
handler500 = api.server_error

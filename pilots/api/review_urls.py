"""Review, sign-off, lifecycle and history paths, appended to /api/v1/ (namespace "api")."""

from django.urls import path

from pilots.api import review_views

P = "plans/<int:plan_id>"

urlpatterns = [
    path(f"{P}/reviews", review_views.review_list, name="plan-reviews"),
    path(f"{P}/reviews/<str:kind>", review_views.review_detail, name="plan-review"),
    path(
        f"{P}/reviews/<str:kind>/sign-off",
        review_views.review_sign_off,
        name="plan-review-sign-off",
    ),
    path(f"{P}/transitions", review_views.transition_list, name="plan-transitions"),
    path(
        f"{P}/timebox-extensions",
        review_views.timebox_extension_list,
        name="plan-timebox-extensions",
    ),
    path(f"{P}/history", review_views.history_list, name="plan-history"),
]

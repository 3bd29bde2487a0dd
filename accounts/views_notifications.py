"""The bell's page: a person's notifications, marking them read, and the e-mail preference."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.http import AuthedHtmxRequest
from accounts.models import Notification
from accounts.ui import plural

NOTIFICATIONS_PER_PAGE = 25


@login_required
@require_http_methods(["GET"])
def notification_list(request: AuthedHtmxRequest) -> HttpResponse:
    """The user's notifications, newest first (paginated), unread ones highlighted."""
    notifications = Notification.objects.filter(user=request.user).order_by("-created_at", "-pk")
    page = Paginator(notifications, NOTIFICATIONS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page": page, "notifications": page.object_list}
    return TemplateResponse(request, "accounts/notifications.html", context)


@login_required
@require_http_methods(["GET"])
def notification_bell(request: AuthedHtmxRequest) -> HttpResponse:
    """The bell with the unread count (one query, from the context processor); base.html loads
    it with HTMX so full pages do not pay for it."""
    return TemplateResponse(request, "accounts/notifications.html#bell", {})


@login_required
@require_http_methods(["POST"])
def notification_open(request: AuthedHtmxRequest, notification_id: int) -> HttpResponse:
    """Mark one notification read and go to what it is about (404 for another user's)."""
    notification = get_object_or_404(Notification, pk=notification_id, user=request.user)
    services.notifications_mark_read(user=request.user, notification_ids=[notification.pk])
    target = notification.url
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("accounts:notification_list")


@login_required
@require_http_methods(["POST"])
def notification_mark_all_read(request: AuthedHtmxRequest) -> HttpResponse:
    count = services.notifications_mark_read(user=request.user)
    messages.success(request, f"Marked {plural(count, 'notification')} read.")
    return redirect("accounts:notification_list")


@login_required
@require_http_methods(["POST"])
def notification_email_preference(request: AuthedHtmxRequest) -> HttpResponse:
    """Turn e-mail for notifications on or off (in-app notifications always appear)."""
    wanted = request.POST.get("email_notifications") in {"on", "true", "1"}
    services.notification_email_set(user=request.user, enabled=wanted)
    messages.success(
        request,
        "You will get notifications by e-mail too."
        if wanted
        else "Notifications appear only under the bell; no e-mail.",
    )
    return redirect(reverse("accounts:notification_list"))

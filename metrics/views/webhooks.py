"""A team's webhook subscriptions in the browser (docs/webhooks.md).

- ``teams/<team>/webhooks``: the subscriptions, and (for those who manage them) the form for a
  new one; its signing secret is shown once, on the subscription's page the form leads to;
- ``teams/<team>/webhooks/<id>``: one subscription: its settings (a form for those who manage
  them), its delivery log (status code, time taken, attempts, the start of the answer);
- ``…/<id>/rotate``, ``…/test``, ``…/delete`` (POST): a new secret, a test event, removal;
- ``…/<id>/deliveries/<delivery>/redeliver``: GET asks to confirm, POST sends it again;
- ``webhooks/help``: what is sent and how to verify it, in the app.

Every member reads them; the roles holding ``Perm.WEBHOOK_MANAGE`` change them (403 for the
others); anyone outside the team gets 404. Every flow works without JavaScript: forms POST and
redirect back.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBase, HttpResponsePermanentRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from accounts.events import SUBSCRIBABLE
from accounts.http import AuthedHtmxRequest
from accounts.models import Team, User, WebhookSubscription
from accounts.permissions import Perm, allows, team_for_member, who
from core.exceptions import Conflict
from core.http import UNPROCESSABLE
from metrics import subscriptions
from metrics.webhooks import MAX_ATTEMPTS

CONFLICT = 409
DELIVERIES_PER_PAGE = 50
SHOW_ONCE_SESSION_KEY = "metrics.webhook_secret"


class SubscriptionForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="What receives it.")
    kind = forms.ChoiceField(
        label="Destination",
        choices=WebhookSubscription.Kind.choices,
        initial=WebhookSubscription.Kind.STANDARD,
        widget=forms.RadioSelect,
    )
    url = forms.URLField(
        label="Address",
        max_length=subscriptions.URL_MAX,
        assume_scheme="https",
        help_text="An https:// address on a public host (not a private or internal network). "
        "For Slack or Teams, the incoming webhook's address.",
    )
    events = forms.MultipleChoiceField(
        label="Events", choices=SUBSCRIBABLE, widget=forms.CheckboxSelectMultiple
    )
    is_active = forms.BooleanField(label="Send events", required=False, initial=True)


def _team(user: User, team_id: int, *, change: bool) -> tuple[Team, str]:
    return team_for_member(user=user, team_id=team_id, perm=Perm.WEBHOOK_MANAGE if change else None)


def _list_page(
    request: AuthedHtmxRequest,
    team: Team,
    role: str,
    *,
    form: SubscriptionForm | None = None,
    status: int = 200,
) -> TemplateResponse:
    context = {
        "team": team,
        "subscriptions": list(subscriptions.subscriptions_for_team(team_id=team.pk)),
        "form": form or SubscriptionForm(),
        "can_change": allows(role, Perm.WEBHOOK_MANAGE),
        "who_manages": who(Perm.WEBHOOK_MANAGE),
    }
    return TemplateResponse(request, "metrics/webhooks.html", context, status=status)


def _detail_page(
    request: AuthedHtmxRequest,
    team: Team,
    role: str,
    subscription: WebhookSubscription,
    *,
    form: SubscriptionForm | None = None,
    error: str = "",
    secret: str | None = None,
    status: int = 200,
) -> TemplateResponse:
    if form is None:
        form = SubscriptionForm(
            initial={
                "name": subscription.name,
                "kind": subscription.kind,
                "url": subscription.url,
                "events": subscription.events,
                "is_active": subscription.is_active,
            }
        )
    page = Paginator(
        subscriptions.deliveries_for_subscription(subscription_id=subscription.pk),
        DELIVERIES_PER_PAGE,
    ).get_page(request.GET.get("page"))
    context = {
        "team": team,
        "subscription": subscription,
        "event_labels": [subscriptions.event_label(e) for e in subscription.events],
        "form": form,
        "error": error,
        "secret": secret,
        "page": page,
        "deliveries": page.object_list,
        "max_attempts": MAX_ATTEMPTS,
        "can_change": allows(role, Perm.WEBHOOK_MANAGE),
        "who_manages": who(Perm.WEBHOOK_MANAGE),
    }
    return TemplateResponse(request, "metrics/webhook_detail.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def webhook_old(request: AuthedHtmxRequest, team_id: int) -> HttpResponseBase:
    """The single alert webhook's old page: its subscriptions are on the list now."""
    return HttpResponsePermanentRedirect(reverse("metrics:webhooks", args=[team_id]))


@login_required
@require_http_methods(["GET", "POST"])
def webhooks(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    """GET: the team's subscriptions. POST: a new one; its page then shows the secret once."""
    if request.method == "GET":
        team, role = _team(request.user, team_id, change=False)
        return _list_page(request, team, role)
    team, role = _team(request.user, team_id, change=True)
    form = SubscriptionForm(request.POST)
    if form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "is_active"}
        try:
            subscription, secret = subscriptions.subscription_create(
                team=team, user=request.user, **data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except Conflict as exc:
            form.add_error(None, exc.message)
        else:
            request.session[SHOW_ONCE_SESSION_KEY] = secret
            messages.success(request, "Subscription saved.")
            return redirect(
                "metrics:webhook_detail", team_id=team.pk, subscription_id=subscription.pk
            )
    return _list_page(request, team, role, form=form, status=UNPROCESSABLE)


@login_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request: AuthedHtmxRequest, team_id: int, subscription_id: int) -> HttpResponse:
    """GET: the subscription and its delivery log. POST: change it."""
    if request.method == "GET":
        team, role = _team(request.user, team_id, change=False)
        subscription = subscriptions.subscription_for_team(
            team_id=team.pk, subscription_id=subscription_id
        )
        secret = request.session.pop(SHOW_ONCE_SESSION_KEY, None)
        return _detail_page(request, team, role, subscription, secret=secret)
    team, role = _team(request.user, team_id, change=True)
    subscription = subscriptions.subscription_for_team(
        team_id=team.pk, subscription_id=subscription_id
    )
    form = SubscriptionForm(request.POST)
    if form.is_valid():
        try:
            subscriptions.subscription_update(
                team=team, user=request.user, subscription_id=subscription.pk, **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Subscription saved.")
            return redirect(
                "metrics:webhook_detail", team_id=team.pk, subscription_id=subscription.pk
            )
    return _detail_page(request, team, role, subscription, form=form, status=UNPROCESSABLE)


def _action(
    request: AuthedHtmxRequest, team_id: int, subscription_id: int, action: str
) -> HttpResponse:
    team, role = _team(request.user, team_id, change=True)
    subscription = subscriptions.subscription_for_team(
        team_id=team.pk, subscription_id=subscription_id
    )
    here = reverse("metrics:webhook_detail", args=[team.pk, subscription.pk])
    try:
        if action == "rotate":
            _, secret = subscriptions.subscription_secret_rotate(
                team=team, user=request.user, subscription_id=subscription.pk
            )
            request.session[SHOW_ONCE_SESSION_KEY] = secret
            messages.success(request, "New signing secret generated.")
        elif action == "test":
            subscriptions.subscription_test_send(
                team=team, user=request.user, subscription_id=subscription.pk
            )
            messages.success(request, "Test event queued; it appears in the log below.")
        else:
            subscriptions.subscription_delete(
                team=team, user=request.user, subscription_id=subscription.pk
            )
            messages.success(request, f"Subscription “{subscription.name}” removed.")
            return redirect("metrics:webhooks", team_id=team.pk)
    except Conflict as exc:
        return _detail_page(request, team, role, subscription, error=exc.message, status=CONFLICT)
    return redirect(here)


@login_required
@require_http_methods(["POST"])
def webhook_rotate(request: AuthedHtmxRequest, team_id: int, subscription_id: int) -> HttpResponse:
    return _action(request, team_id, subscription_id, "rotate")


@login_required
@require_http_methods(["POST"])
def webhook_test(request: AuthedHtmxRequest, team_id: int, subscription_id: int) -> HttpResponse:
    return _action(request, team_id, subscription_id, "test")


@login_required
@require_http_methods(["POST"])
def webhook_delete(request: AuthedHtmxRequest, team_id: int, subscription_id: int) -> HttpResponse:
    return _action(request, team_id, subscription_id, "delete")


@login_required
@require_http_methods(["GET", "POST"])
def webhook_redeliver(
    request: AuthedHtmxRequest, team_id: int, subscription_id: int, delivery_id: int
) -> HttpResponse:
    """GET: "Send this delivery again?" POST: send it again (a new delivery, same webhook-id)."""
    team, role = _team(request.user, team_id, change=True)
    subscription = subscriptions.subscription_for_team(
        team_id=team.pk, subscription_id=subscription_id
    )
    delivery = (
        subscriptions.deliveries_for_subscription(subscription_id=subscription.pk)
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        raise Http404("No such delivery")
    if request.method == "GET":
        context = {"team": team, "subscription": subscription, "delivery": delivery}
        return TemplateResponse(request, "metrics/webhook_redeliver.html", context)
    try:
        subscriptions.delivery_redeliver(
            team=team, user=request.user, subscription_id=subscription.pk, delivery_id=delivery.pk
        )
    except Conflict as exc:
        return _detail_page(request, team, role, subscription, error=exc.message, status=CONFLICT)
    messages.success(request, "Delivery queued again; it appears at the top of the log.")
    return redirect("metrics:webhook_detail", team_id=team.pk, subscription_id=subscription.pk)


@login_required
@require_http_methods(["GET"])
def webhooks_help(request: AuthedHtmxRequest) -> HttpResponse:
    """What a subscription receives and how to verify it (the essentials of docs/webhooks.md)."""
    context = {"events": SUBSCRIBABLE, "max_attempts": MAX_ATTEMPTS}
    return TemplateResponse(request, "metrics/webhooks_help.html", context)


T = "teams/<int:team_id>/webhooks"
urlpatterns = [
    path("teams/<int:team_id>/webhook", webhook_old, name="webhook"),
    path(T, webhooks, name="webhooks"),
    path(f"{T}/<int:subscription_id>", webhook_detail, name="webhook_detail"),
    path(f"{T}/<int:subscription_id>/rotate", webhook_rotate, name="webhook_rotate"),
    path(f"{T}/<int:subscription_id>/test", webhook_test, name="webhook_test"),
    path(f"{T}/<int:subscription_id>/delete", webhook_delete, name="webhook_delete"),
    path(
        f"{T}/<int:subscription_id>/deliveries/<int:delivery_id>/redeliver",
        webhook_redeliver,
        name="webhook_redeliver",
    ),
    path("webhooks/help", webhooks_help, name="webhooks_help"),
]

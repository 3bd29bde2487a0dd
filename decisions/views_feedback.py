"""The public feedback page ``/f/<token>``: no log-in, made for a phone, works without JavaScript.

GET shows the form for a Running plan's live link (404 for an unknown link, 410 for a revoked
one or a plan that is not running); POST counts the rate limits, then
``decisions.services.feedback.feedback_submit`` stores the answer and feeds the CSAT and NPS
metrics, and the browser is sent to the thank-you page (POST / redirect / GET). An invalid answer
comes back as the form with the reason on each field (422); too many answers get 429 with
``Retry-After``. CSRF is on: the form carries its token like every other form.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.throttle import client_address
from backlog.models import CSAT_RANGE, FEEDBACK_COMMENT_MAX, FEEDBACK_CONTACT_MAX, NPS_RANGE
from core.http import UNPROCESSABLE
from decisions.services.feedback import (
    FeedbackLinkClosed,
    FeedbackLinkUnknown,
    FeedbackRateLimited,
    feedback_link_open,
    feedback_rate_check,
    feedback_submit,
)

CSAT_WORDS = {1: "Very unhappy", 2: "Unhappy", 3: "Neutral", 4: "Happy", 5: "Very happy"}


def _scale(bounds: tuple[int, int], words: dict[int, str] | None = None) -> list[tuple[str, str]]:
    low, high = bounds
    return [(str(n), f"{n}" + (f" – {words[n]}" if words else "")) for n in range(low, high + 1)]


class FeedbackForm(forms.Form):
    """The page's fields, for display only: every rule is ``feedback_clean``'s (the API's too),
    so the form itself accepts any text and the service's reasons land on the fields."""

    csat = forms.CharField(
        required=False,
        label="How satisfied are you with it?",
        widget=forms.RadioSelect(choices=_scale(CSAT_RANGE, CSAT_WORDS)),
        help_text="1 is very unhappy, 5 very happy.",
    )
    nps = forms.CharField(
        required=False,
        label="How likely are you to recommend it to a friend or colleague?",
        widget=forms.RadioSelect(choices=_scale(NPS_RANGE)),
        help_text="0 is not at all likely, 10 extremely likely.",
    )
    comment = forms.CharField(
        required=False,
        strip=False,
        label="Anything you would like to tell the team?",
        widget=forms.Textarea(attrs={"rows": 5, "maxlength": FEEDBACK_COMMENT_MAX}),
        help_text=f"Optional, up to {FEEDBACK_COMMENT_MAX:,} characters.",
    )
    contact = forms.CharField(
        required=False,
        strip=False,
        label="Your e-mail or phone, if the team may contact you",
        widget=forms.TextInput(attrs={"maxlength": FEEDBACK_CONTACT_MAX, "autocomplete": "email"}),
        help_text="Optional. Only the team sees it.",
    )


def _closed(request: HttpRequest, error: FeedbackLinkUnknown | FeedbackLinkClosed) -> HttpResponse:
    return TemplateResponse(
        request,
        "decisions/feedback_closed.html",
        {"message": error.message},
        status=error.status_code,
    )


def _limited(request: HttpRequest, error: FeedbackRateLimited) -> HttpResponse:
    response = TemplateResponse(
        request, "decisions/feedback_closed.html", {"message": error.message, "limited": True},
        status=429,
    )  # fmt: skip
    response["Retry-After"] = str(error.retry_after)
    return response


@require_http_methods(["GET", "POST"])
def feedback_page(request: HttpRequest, token: str) -> HttpResponse:
    status = 200
    if request.method == "POST":
        try:
            feedback_rate_check(token=token, address=client_address(request))
        except FeedbackRateLimited as error:
            return _limited(request, error)
        form = FeedbackForm(request.POST)
        form.is_valid()  # every field is optional text: this only collects the values
        values = {name: form.cleaned_data.get(name, "") for name in form.fields}
        try:
            feedback_submit(token=token, values=values)
        except (FeedbackLinkUnknown, FeedbackLinkClosed) as error:
            return _closed(request, error)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                form.add_error(None if field not in form.fields else field, messages)
            status = UNPROCESSABLE
        else:
            return redirect("decisions:feedback_thanks", token=token)
        plan = feedback_link_open(token).plan
    else:
        try:
            plan = feedback_link_open(token).plan
        except (FeedbackLinkUnknown, FeedbackLinkClosed) as error:
            return _closed(request, error)
        form = FeedbackForm()
    return TemplateResponse(
        request, "decisions/feedback_form.html", {"form": form, "plan": plan}, status=status
    )


@require_http_methods(["GET"])
def feedback_thanks(request: HttpRequest, token: str) -> HttpResponse:
    return TemplateResponse(request, "decisions/feedback_thanks.html", {"token": token})


urlpatterns = [
    path("f/<str:token>", feedback_page, name="feedback_page"),
    path("f/<str:token>/thanks", feedback_thanks, name="feedback_thanks"),
]

"""The decision page (``plans/<id>/decision``): everything the decision owner weighs, at a glance.

The top of the page is the computed recommendation (``decisions.evidence.decision_evidence``: a
constant number of queries, whatever the number of criteria or check runs) with the rule that
produced it in words; below it every exit criterion with its value, interval, verdict, trend and
how much more evidence would decide it; beside them the rollback triggers, entry criteria,
defects, sign-offs and what data is stale or missing. Then the members' comments, the record form
(the decision owner only) and every decision recorded, each with its frozen evidence on its own
page (``plans/<id>/decision/records/<rid>``), rendered from the record's JSON, never from live
data.

Views stay thin: the services (``decisions.services.decision``) decide who may record or comment
and what a record needs; a refusal re-renders the form with the service's words. Every form
works without JavaScript (POST, redirect, GET); comments also append in place with HTMX.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from accounts.models import Membership, User
from accounts.permissions import Perm, allows
from accounts.ui import toast
from backlog.models import BacklogItem
from backlog.participants.selectors import cohort_fit_for_plan
from core.exceptions import Conflict
from core.http import UNPROCESSABLE
from decisions import evidence as ev
from decisions import rules, selectors
from decisions.evidence import decision_evidence
from decisions.models import DecisionRecord
from decisions.services.decision import (
    COMMENTABLE,
    decision_comment_add,
    decision_owner,
    decision_record,
    decision_record_refusal,
)
from decisions.services.gate import gate_calls_recent
from metrics.statistics import Verdict
from pilots.access import plan_for_user
from pilots.models import PilotPlan

CONFLICT = 409
FORBIDDEN = 403

Status = PilotPlan.Status
# The page opens when the pilot starts; before that there is nothing to weigh.
OPEN_STATES = frozenset({Status.RUNNING, Status.EVALUATING, Status.DECIDED, Status.CLOSED})
# The decision owner records while the pilot runs or is evaluated, and corrects once Decided.
RECORD_STATES = frozenset({Status.RUNNING, Status.EVALUATING})
CORRECT_STATES = frozenset({Status.DECIDED})

# The recommendation's glyph: the word says it, the colour and the symbol repeat it.
SYMBOLS = {
    "go": "✓",
    "iterate": "↻",
    "roll_back": "↩",
    "not_yet_decidable": "…",
}
VERDICT_SYMBOLS = {"met": "✓", "not_met": "✕", "not_enough_evidence": "?"}


# --- the trend sparkline ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sparkline:
    """An inline SVG polyline of a criterion's value over the pilot, with its threshold as a
    dashed line (SVG attributes only: the CSP refuses inline style attributes)."""

    points: str
    threshold_y: float | None
    last_x: float
    last_y: float
    width: int
    height: int
    label: str


SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 88, 22, 2


def sparkline(trend: Any, threshold: Any, *, name: str = "") -> Sparkline | None:
    """The trend as SVG coordinates, scaled so that both the values and the threshold fit; None
    with fewer than two values (one point is no trend)."""
    values = [float(v) for v in (trend or ()) if v is not None]
    if len(values) < 2:
        return None
    limit = float(threshold) if threshold is not None else None
    low = min([*values, limit] if limit is not None else values)
    high = max([*values, limit] if limit is not None else values)
    span = (high - low) or 1.0
    inner_w, inner_h = SPARK_WIDTH - 2 * SPARK_PAD, SPARK_HEIGHT - 2 * SPARK_PAD

    def y(v: float) -> float:
        return round(SPARK_PAD + inner_h * (1 - (v - low) / span), 1)

    step = inner_w / (len(values) - 1)
    xs = [round(SPARK_PAD + i * step, 1) for i in range(len(values))]
    points = " ".join(f"{x},{y(v)}" for x, v in zip(xs, values, strict=True))
    label = (
        f"Trend of {name or 'the value'} over {len(values)} checks: from {values[0]:g} to "
        f"{values[-1]:g}" + (f"; threshold {limit:g}" if limit is not None else "")
    )
    return Sparkline(
        points=points,
        threshold_y=y(limit) if limit is not None else None,
        last_x=xs[-1],
        last_y=y(values[-1]),
        width=SPARK_WIDTH,
        height=SPARK_HEIGHT,
        label=label,
    )


@dataclass(frozen=True)
class CriterionRow:
    criterion: ev.CriterionEvidence  # live, or rebuilt from a record's snapshot
    spark: Sparkline | None
    symbol: str
    verdict_label: str


def criterion_rows(criteria: Iterable[ev.CriterionEvidence]) -> list[CriterionRow]:
    return [
        CriterionRow(
            criterion=c,
            spark=sparkline(c.trend, c.threshold, name=c.name),
            symbol=VERDICT_SYMBOLS.get(c.verdict.value, ""),
            verdict_label=c.verdict_label,
        )
        for c in criteria
    ]


# --- forms -------------------------------------------------------------------------------------


class CommentForm(forms.Form):
    text = forms.CharField(
        label="Comment",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What should the decision weigh?"}),
        error_messages={"required": "Write the comment first."},
    )


class RecordForm(forms.Form):
    outcome = forms.ChoiceField(
        label="Outcome",
        choices=DecisionRecord.Outcome.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose Go, Iterate or Roll back."},
    )
    rationale = forms.CharField(
        label="Rationale",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why: the record keeps it, with the evidence as it stands now.",
        error_messages={"required": "Say why: the record keeps it."},
    )
    override_reason = forms.CharField(
        label="Override reason",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    supersedes = forms.IntegerField(required=False, widget=forms.HiddenInput)
    iterate_items = forms.TypedMultipleChoiceField(
        label="Backlog items the next iteration takes on",
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Iterate only. Items raised by this pilot come first, then the team's backlog.",
    )

    def __init__(
        self,
        *args: Any,
        recommendation: str = "",
        candidates: Iterable[BacklogItem] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.recommendation = recommendation
        if self.is_bound:
            # Any id: the service refuses an item that is not the team's, naming it.
            posted = self.data.getlist("iterate_items") if hasattr(self.data, "getlist") else []
            self.fields["iterate_items"].choices = [(v, v) for v in posted]  # type: ignore[attr-defined]
        else:
            self.fields["iterate_items"].choices = [  # type: ignore[attr-defined]
                (i.pk, f"{i.reference} {i.title} · {i.get_status_display()}") for i in candidates
            ]

    def clean(self) -> dict[str, Any]:
        """The shape, before the confirmation step; ``decision_record`` has the last word."""
        data = super().clean()
        outcome = data.get("outcome")
        if outcome and outcome != self.recommendation and not data.get("override_reason", ""):
            label = rules.Recommendation(self.recommendation).label if self.recommendation else "—"
            self.add_error(
                "override_reason",
                f"Going against the recommendation ({label}) needs an override reason.",
            )
        if data.get("iterate_items") and outcome != DecisionRecord.Outcome.ITERATE:
            self.add_error(
                "iterate_items",
                "Only an Iterate decision lists backlog items for the next iteration.",
            )
        return data


# --- page context ------------------------------------------------------------------------------


def _plan(request: AuthedHtmxRequest, plan_id: int) -> PilotPlan:
    return plan_for_user(
        user=request.user,
        plan_id=plan_id,
        queryset=PilotPlan.objects.select_related("owner", "decision_owner"),
    )


def _owner_words(plan: PilotPlan, owner: User | None) -> str:
    """ "Dana Diaz (Product Owner) records the decision." """
    if owner is None:
        return "The plan has no decision owner yet."
    membership = Membership.objects.filter(team_id=plan.team_id, user=owner).first()
    role = membership.get_role_display() if membership else "the decision owner"
    return f"{owner.display_name} ({role}) records the decision."


def _form_mode(plan: PilotPlan, user: User) -> str:
    """ "record", "correct" or "" (no form): only the decision owner (the service's own rule,
    ``decision_record_refusal``), in the states that allow it; the service checks again."""
    if plan.status in RECORD_STATES:
        mode = "record"
    elif plan.status in CORRECT_STATES:
        mode = "correct"
    else:
        return ""
    return "" if decision_record_refusal(plan=plan, user=user) else mode


def _context(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    *,
    record_form: RecordForm | None = None,
    comment_form: CommentForm | None = None,
    message: str = "",
) -> dict[str, Any]:
    context: dict[str, Any] = {"plan": plan, "open": plan.status in OPEN_STATES}
    if not context["open"]:
        return context
    evidence = decision_evidence(plan)
    owner = decision_owner(plan)
    records = selectors.decision_records_for_plan(plan.pk)  # newest first
    later = {r.supersedes_id: r for r in records if r.supersedes_id}
    for r in records:
        r.superseded_by_record = later.get(r.pk)  # type: ignore[attr-defined]
    # The current decision: the latest record nothing supersedes.
    latest = next((r for r in records if r.superseded_by_record is None), None)  # type: ignore[attr-defined]
    mode = _form_mode(plan, request.user)
    if mode == "correct" and latest is None:
        mode = ""  # Decided before decision records existed: nothing to correct here
    recommendation = evidence.recommendation
    if record_form is None and mode:
        initial: dict[str, Any] = {}
        if mode == "correct" and latest is not None:
            initial = {"supersedes": latest.pk}
        record_form = RecordForm(
            initial=initial,
            recommendation=recommendation,
            candidates=selectors.iterate_candidates(plan),
        )
    _attach_iterate(records)
    role = plan.viewer_role  # type: ignore[attr-defined]
    context.update(
        evidence=evidence,
        result=evidence.result,
        symbol=SYMBOLS.get(recommendation, ""),
        rows=criterion_rows(evidence.criteria),
        rules_table=rules.rules_table(),
        owner=owner,
        owner_words=_owner_words(plan, owner),
        records=records,
        latest=latest,
        mode=mode,
        record_form=record_form,
        comments=list(selectors.decision_comments_for_plan(plan.pk)),
        can_comment=allows(role, Perm.DECISION_COMMENT)
        and not plan.viewer_is_guest  # type: ignore[attr-defined]
        and plan.status in COMMENTABLE,
        comment_form=comment_form or CommentForm(),
        gate_calls=gate_calls_recent(plan_id=plan.pk),
        # The stored representativeness check (backlog.participants.fit): one query.
        cohort_fits=cohort_fit_for_plan(plan_id=plan.pk),
        message=message,
        # "Create backlog item" beside a failing criterion or a fired trigger: team members who
        # change the backlog (invited guests do not see the team's backlog).
        can_raise=allows(role, Perm.BACKLOG_EDIT) and not plan.viewer_is_guest,  # type: ignore[attr-defined]
    )
    return context


def _attach_iterate(records: list[DecisionRecord]) -> None:
    """Give each Iterate record its list of backlog items (``iterate_lines``); one query, and
    none when no record is an Iterate."""
    iterate = [r.pk for r in records if r.outcome == DecisionRecord.Outcome.ITERATE]
    lines = selectors.iterate_items(iterate) if iterate else {}
    for r in records:
        r.iterate_lines = lines.get(r.pk, [])  # type: ignore[attr-defined]


def _page(request: AuthedHtmxRequest, plan: PilotPlan, *, status: int = 200, **kw: Any) -> Any:
    return TemplateResponse(
        request, "decisions/decision.html", _context(request, plan, **kw), status=status
    )


def _back(plan: PilotPlan, anchor: str = "") -> HttpResponse:
    url = reverse("decisions:decision", args=[plan.pk])
    return redirect(f"{url}#{anchor}" if anchor else url)


# --- views -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def decision_page(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """Everyone who reads the plan reads its decision page; before the pilot starts it says
    when it opens."""
    return _page(request, _plan(request, plan_id))


@login_required
@require_http_methods(["POST"])
def decision_comment(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """Add a comment: with HTMX the new comment is appended and the form cleared; without, the
    page again (POST, redirect, GET). A refusal (a guest, a stakeholder may not) says why."""
    plan = _plan(request, plan_id)
    if plan.status not in OPEN_STATES:
        raise Http404("The decision page opens when the pilot starts.")
    form = CommentForm(request.POST)
    status, message = 200, ""
    comment = None
    if form.is_valid():
        try:
            comment = decision_comment_add(
                plan=plan, user=request.user, text=form.cleaned_data["text"]
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except PermissionDenied as exc:
            status, message = FORBIDDEN, str(exc)
        except Conflict as exc:
            status, message = CONFLICT, exc.message
    if form.errors and status == 200:
        status = UNPROCESSABLE
    if request.htmx:
        if status != 200:
            response = TemplateResponse(
                request,
                "decisions/_decision_comments.html#form",
                {
                    "plan": plan,
                    "comment_form": form,
                    "comment_message": message,
                    "can_comment": True,
                },
                status=status,
            )
            response["HX-Retarget"] = "#decision-comment-form"
            response["HX-Reswap"] = "outerHTML"
            return toast(response, message, level="error") if message else response
        response = TemplateResponse(
            request,
            "decisions/_decision_comments.html#added",
            {"plan": plan, "comment": comment, "comment_form": CommentForm(), "can_comment": True},
        )
        return toast(response, "Comment added.")
    if status != 200:
        if status == FORBIDDEN:
            raise PermissionDenied(message)
        return _page(request, _plan(request, plan_id), status=status, comment_form=form)
    messages.success(request, "Comment added.")
    return _back(plan, "decision-comments")


@login_required
@require_http_methods(["POST"])
def decision_record_view(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """Record a decision in two steps: the form, then a confirmation page (a record cannot be
    undone: a correction is a new record). ``confirm`` absent: check the shape and show what
    will be recorded; ``edit``: back to the form with the typed text; ``confirm``: record it
    through ``decision_record``, whose refusal re-renders the form with its words."""
    plan = _plan(request, plan_id)
    if plan.status not in OPEN_STATES:
        raise Http404("The decision page opens when the pilot starts.")
    evidence = decision_evidence(plan)
    form = RecordForm(request.POST, recommendation=evidence.recommendation)
    if "edit" in request.POST:
        form.is_valid()
        return _page(
            request,
            plan,
            record_form=RecordForm(
                initial={**request.POST.dict(), "iterate_items": _posted_items(request)},
                recommendation=evidence.recommendation,
                candidates=selectors.iterate_candidates(plan),
            ),
        )
    if not form.is_valid():
        return _page(request, plan, status=UNPROCESSABLE, record_form=form)
    data = form.cleaned_data
    supersedes = None
    if data.get("supersedes"):
        supersedes = DecisionRecord.objects.filter(plan=plan, pk=data["supersedes"]).first()
        if supersedes is None:
            raise Http404("No such decision record")
    if "confirm" not in request.POST:
        # Only the decision owner reaches the confirmation (the service refuses the rest again).
        if refusal := decision_record_refusal(plan=plan, user=request.user):
            raise PermissionDenied(refusal)
        context = {
            "plan": plan,
            "form": form,
            "data": data,
            "outcome_label": DecisionRecord.Outcome(data["outcome"]).label,
            "symbol": SYMBOLS.get(data["outcome"], ""),
            "result": evidence.result,
            "override": data["outcome"] != evidence.recommendation,
            "supersedes": supersedes,
            "iterate_lines": _items_in_order(plan, data.get("iterate_items") or []),
        }
        return TemplateResponse(request, "decisions/decision_confirm.html", context)
    try:
        record = decision_record(
            plan=plan,
            user=request.user,
            outcome=data["outcome"],
            rationale=data["rationale"],
            override_reason=data.get("override_reason", ""),
            supersedes=supersedes,
            iterate_items=data.get("iterate_items") or [],
        )
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return _page(request, _plan(request, plan_id), status=UNPROCESSABLE, record_form=form)
    except PermissionDenied as exc:
        form.add_error(None, str(exc))
        return _page(request, _plan(request, plan_id), status=FORBIDDEN, record_form=form)
    except Conflict as exc:
        form.add_error(None, exc.message)
        return _page(request, _plan(request, plan_id), status=CONFLICT, record_form=form)
    messages.success(
        request, f"Decision recorded: {record.get_outcome_display()} ({record.record_hash[:8]})."
    )
    return _back(plan, "decision-history")


def _posted_items(request: AuthedHtmxRequest) -> list[int]:
    return [int(v) for v in request.POST.getlist("iterate_items") if v.isdigit() and len(v) < 19]


def _items_in_order(plan: PilotPlan, ids: list[int]) -> list[BacklogItem]:
    """The team's items named by ``ids``, in that order (the confirmation shows them)."""
    found = BacklogItem.objects.filter(team_id=plan.team_id, pk__in=ids).in_bulk()
    return [found[pk] for pk in ids if pk in found]


@dataclass(frozen=True)
class FrozenEvidence:
    """A record's snapshot (``DecisionEvidence.snapshot()``) turned back into the evidence
    objects the page's partials show, from the JSON alone: no live row is read."""

    criteria: tuple[ev.CriterionEvidence, ...]
    entry: tuple[ev.EntryEvidence, ...]
    triggers: tuple[ev.TriggerEvidence, ...]
    defects: tuple[ev.DefectCount, ...]
    sign_offs: tuple[ev.SignOffEvidence, ...]
    missing: tuple[str, ...]
    last_check_at: dt.datetime | None
    computed_at: dt.datetime | None
    business_days_observed: int | None
    minimum_observation_days: int | None
    days_left: int | None


def _when(value: Any) -> dt.datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def frozen_evidence(snapshot: dict[str, Any]) -> FrozenEvidence:
    criteria = tuple(
        ev.CriterionEvidence(
            criterion_id=c.get("criterion_id"),
            position=c.get("position", 0),
            name=c.get("name", ""),
            blocking=c.get("blocking", True),
            comparator=c.get("comparator", ""),
            threshold=c.get("threshold"),
            unit=c.get("unit", ""),
            value=c.get("value"),
            low=c.get("low"),
            high=c.get("high"),
            sample_size=c.get("sample_size", 0),
            method=c.get("method", ""),
            verdict=Verdict(c.get("verdict", Verdict.NOT_ENOUGH_EVIDENCE)),
            reason=c.get("reason", ""),
            trend=tuple(c.get("trend") or ()),
            more_words=c.get("more_words", ""),
        )
        for c in snapshot.get("criteria") or ()
    )
    triggers = tuple(
        ev.TriggerEvidence(
            trigger_id=t.get("trigger_id"),
            name=t.get("name", ""),
            state=t.get("state", ""),
            detail=t.get("detail", ""),
            episodes=tuple(
                ev.EpisodeEvidence(
                    id=e.get("id"),
                    fired_at=_when(e.get("fired_at")),  # type: ignore[arg-type]
                    cleared_at=_when(e.get("cleared_at")),
                    resolved_at=_when(e.get("resolved_at")),
                    value=e.get("value"),
                    resolution=e.get("resolution", ""),
                )
                for e in t.get("episodes") or ()
            ),
        )
        for t in snapshot.get("triggers") or ()
    )
    return FrozenEvidence(
        criteria=criteria,
        entry=tuple(
            ev.EntryEvidence(e.get("text", ""), e.get("status", "pending"))
            for e in snapshot.get("entry_criteria") or ()
        ),
        triggers=triggers,
        defects=tuple(
            ev.DefectCount(d.get("severity", ""), d.get("total"))
            for d in snapshot.get("defects") or ()
        ),
        sign_offs=tuple(
            ev.SignOffEvidence(
                s.get("review", ""),
                s.get("signed_by", ""),
                _when(s.get("signed_at")),  # type: ignore[arg-type]
            )
            for s in snapshot.get("sign_offs") or ()
        ),
        missing=tuple(snapshot.get("missing") or ()),
        last_check_at=_when(snapshot.get("last_check_at")),
        computed_at=_when(snapshot.get("computed_at")),
        business_days_observed=snapshot.get("business_days_observed"),
        minimum_observation_days=snapshot.get("minimum_observation_days"),
        days_left=snapshot.get("days_left"),
    )


@login_required
@require_http_methods(["GET"])
def decision_record_page(request: AuthedHtmxRequest, plan_id: int, record_id: int) -> HttpResponse:
    """One decision record and the evidence it froze, from its JSON snapshot only."""
    plan = _plan(request, plan_id)
    record = (
        DecisionRecord.objects.filter(plan=plan, pk=record_id)
        .select_related("recorded_by", "supersedes")
        .first()
    )
    if record is None:
        raise Http404("No such decision record")
    superseded_by = (
        DecisionRecord.objects.filter(supersedes=record).only("pk", "record_hash").first()
    )
    frozen = frozen_evidence(record.evidence or {})
    _attach_iterate([record])
    context = {
        "plan": plan,
        "record": record,
        "superseded_by": superseded_by,
        "frozen": frozen,
        "rows": criterion_rows(frozen.criteria),
        "symbol": SYMBOLS.get(record.outcome, ""),
        "recommendation_symbol": SYMBOLS.get(record.recommendation, ""),
    }
    return TemplateResponse(request, "decisions/decision_record.html", context)


urlpatterns = [
    path("plans/<int:plan_id>/decision", decision_page, name="decision"),
    path("plans/<int:plan_id>/decision/comments", decision_comment, name="decision_comment"),
    path("plans/<int:plan_id>/decision/record", decision_record_view, name="decision_record"),
    path(
        "plans/<int:plan_id>/decision/records/<int:record_id>",
        decision_record_page,
        name="decision_record_page",
    ),
]

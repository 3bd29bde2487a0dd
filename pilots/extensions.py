"""Where the layers above ``pilots`` plug into what it owns, without ``pilots`` importing them.

``pilots`` owns the plan, its lifecycle and its page; ``metrics``, ``backlog`` and ``decisions``
sit above it and know more (alerts, findings, verdicts). Rather than ``pilots`` reaching up, they
register here at start-up (their ``AppConfig.ready``):

- ``lifecycle_guard_register(action, guard)``: one more rule a lifecycle step must pass; the
  guard returns what is missing, in words (``decisions.guards``);
- ``plan_panel_register(provider, flags=…)``: something the plan page shows above the document,
  as a template and its context (``metrics.apps``: the red banner of fired rollback triggers);
  ``flags`` names ``Exists`` annotations the plan page adds to its one plan query, so a provider
  with nothing to show (no episode fired, no job failing) answers without a query of its own;
- ``plan_home_register(provider)``: the page a plan opens on when it is not the document — the
  run cockpit of a Running or Evaluating plan (``decisions.apps``); the provider answers the
  page's URL, or ``None`` for the document;
- ``scope_backlog_register(provider)``: where the scope's references (US-145) come from — the
  current status of each referenced item, for the whole plan in one query, and the URL of the
  reference autocomplete (``backlog.apps``).

Both are lists filled once per process, read on every request: no import of a higher layer,
no signal, and ``docs/architecture.md`` lists every registration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pilots.models import PilotPlan

LifecycleGuard = Callable[[PilotPlan], list[str]]


@dataclass(frozen=True)
class PlanPanel:
    """A template the plan page includes above the document, with ``panel`` in its context."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)


PlanPanelProvider = Callable[[PilotPlan], PlanPanel | None]
# ``{attribute: Exists(… OuterRef("pk") …)}``: built per request (expressions are not shared).
PlanPanelFlags = Callable[[], dict[str, Any]]

_lifecycle_guards: dict[str, list[LifecycleGuard]] = {}
_plan_panels: list[PlanPanelProvider] = []
_plan_panel_flags: list[PlanPanelFlags] = []


def lifecycle_guard_register(action: str, guard: LifecycleGuard) -> None:
    guards = _lifecycle_guards.setdefault(action, [])
    if guard not in guards:  # ready() may run twice in one process (tests, management commands)
        guards.append(guard)


def lifecycle_guards(action: str) -> list[LifecycleGuard]:
    return list(_lifecycle_guards.get(action, ()))


def plan_panel_register(
    provider: PlanPanelProvider, *, flags: PlanPanelFlags | None = None
) -> None:
    """``flags``: the annotations ``provider`` reads from the plan (``getattr(plan, name, True)``:
    a plan loaded without them is asked for, as before)."""
    if provider not in _plan_panels:
        _plan_panels.append(provider)
    if flags is not None and flags not in _plan_panel_flags:
        _plan_panel_flags.append(flags)


def plan_panel_flags() -> dict[str, Any]:
    """Every registered provider's annotations, for the plan page's plan query."""
    flags: dict[str, Any] = {}
    for provider_flags in _plan_panel_flags:
        flags.update(provider_flags())
    return flags


def plan_panels(plan: PilotPlan) -> list[PlanPanel]:
    """What the registered providers show for ``plan``, in registration order."""
    return [panel for provider in _plan_panels if (panel := provider(plan)) is not None]


# ``provider(plan)`` -> the URL the plan's page opens on instead of its document, or ``None``.
PlanHomeProvider = Callable[[PilotPlan], str | None]

_plan_homes: list[PlanHomeProvider] = []


def plan_home_register(provider: PlanHomeProvider) -> None:
    if provider not in _plan_homes:
        _plan_homes.append(provider)


def plan_home(plan: PilotPlan) -> str | None:
    """Where ``/plans/<id>/`` sends ``plan``'s readers first (the first provider that answers),
    or ``None``: the plan document. Reads the loaded plan only (no query)."""
    for provider in _plan_homes:
        if (url := provider(plan)) is not None:
            return url
    return None


@dataclass(frozen=True)
class ScopeBacklog:
    """The team backlog as the plan's scope sees it: ``statuses(plan)`` maps each reference
    the plan's scope names to its item's status label (one query for the whole plan), and
    ``autocomplete_url(plan)`` answers ``?q=`` with ``<option>`` elements for a datalist."""

    statuses: Callable[[PilotPlan], dict[str, str]]
    autocomplete_url: Callable[[PilotPlan], str]


_scope_backlog: list[ScopeBacklog] = []


def scope_backlog_register(provider: ScopeBacklog) -> None:
    if provider not in _scope_backlog:
        _scope_backlog.append(provider)


def scope_item_statuses(plan: PilotPlan) -> dict[str, str]:
    """``{reference: status label}`` of the plan's scope references that name a backlog item;
    empty when nothing is registered."""
    statuses: dict[str, str] = {}
    for provider in _scope_backlog:
        statuses.update(provider.statuses(plan))
    return statuses


def scope_autocomplete_url(plan: PilotPlan) -> str:
    return _scope_backlog[0].autocomplete_url(plan) if _scope_backlog else ""

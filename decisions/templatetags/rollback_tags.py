"""``{% load rollback_tags %}``: whether the viewer may start an emergency rollback, for the
fired-trigger banner and the alert pages (``metrics`` templates link here by URL name; its
Python never imports ``decisions``)."""

from __future__ import annotations

from typing import Any

from django import template

from decisions.services.rollback import rollback_start_allowed

register = template.Library()

EMERGENCY_STATES = {"running", "evaluating"}


@register.filter
def may_start_rollback(plan: Any, user: Any) -> bool:
    """``{% if plan|may_start_rollback:request.user %}``: the plan Running or Evaluating and
    the viewer its rollback executor, Product Owner or DevOps. ``plan`` comes from
    ``plan_for_user`` (its ``viewer_role``): no query."""
    if plan is None or user is None or getattr(plan, "status", "") not in EMERGENCY_STATES:
        return False
    role = getattr(plan, "viewer_role", None)
    if role is None:
        return False
    return rollback_start_allowed(plan, user, role=role)

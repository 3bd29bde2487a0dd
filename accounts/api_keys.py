"""Team API keys: a machine's credentials for one team, limited to scopes and optionally to
named plans (docs/api.md, "Team API keys").

A key reads ``pp_<prefix>_<secret>`` (``accounts.credentials`` has what keys share with personal
tokens). A key acts as its principal, a user of its own that is a "machine member" of the key's
team only, whose role is its scopes: read → the rules that read, write → editing the team's
plans, backlog and alerts, ingest → pushing samples, gate → asking the deployment gate
(``accounts.permissions``). Keys are managed by the team's Product Owner or Scrum Master, in the
browser and over the API.

Rotation without downtime: ``api_key_rotate`` issues a new key like the old one (same
principal, scopes and plans) and lets the old one live until a chosen grace end, so both work
while the new one is rolled out.

Plan restriction: the plans live in a higher layer (``pilots``), which registers
``plan_source`` here when it starts (``pilots.apps``); the service checks named plans against
it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request

from accounts.credentials import BearerAuthentication, find, issue, mark_used, refuse_inactive
from accounts.models import ApiKey, Team, User
from accounts.permissions import Perm, require, role_in_team
from core.precompiled import Precompiled

KEY_PREFIX = "pp"
# The longest grace a rotation may leave the old key (a forgotten old key is a liability).
MAX_ROTATION_GRACE = dt.timedelta(days=30)

# ``plan_source(team_id)``: {plan id: title} of the team's plans; registered by pilots.apps.
_plan_source: Callable[[int], dict[int, str]] | None = None


def plan_source_register(source: Callable[[int], dict[int, str]]) -> None:
    global _plan_source  # set once at start-up, by the app that owns plans
    _plan_source = source


def team_plan_choices(team_id: int) -> dict[int, str]:
    """{id: title} of the plans a key of ``team_id`` may be restricted to."""
    return _plan_source(team_id) if _plan_source is not None else {}


def _clean(
    *, team: Team, name: str, scopes: Iterable[str], plan_ids: Iterable[int], now: dt.datetime,
    expires_at: dt.datetime | None,
) -> tuple[str, list[str], list[int]]:  # fmt: skip
    errors: dict[str, str] = {}
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in ApiKey.Scope.values]
    if unknown:
        errors["scopes"] = f"Unknown scope: {', '.join(unknown)}."
    elif not scopes:
        errors["scopes"] = "Choose at least one scope."
    plan_ids = sorted(set(plan_ids))
    if plan_ids:
        foreign = set(plan_ids) - set(team_plan_choices(team.pk))
        if foreign:
            errors["plans"] = (
                f"Not a plan of this team: {', '.join(str(i) for i in sorted(foreign))}."
            )
    if expires_at is not None and expires_at <= now:
        errors["expires_at"] = "Choose a time in the future."
    if errors:
        raise ValidationError(errors)
    return name.strip(), scopes, plan_ids


def _principal(name: str) -> User:
    """A new key's principal: a user who belongs to no team and cannot log in."""
    return User.objects.create(
        email=f"api-key-{secrets.token_hex(8)}@machine.invalid",
        full_name=f"API key ‘{name}’"[:150],
        password=make_password(None),
    )


@transaction.atomic
def api_key_create(
    *,
    team: Team,
    name: str,
    scopes: Iterable[str],
    created_by: User,
    plan_ids: Iterable[int] = (),
    expires_at: dt.datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key for ``team``; returns it with its plaintext, which is never stored or shown
    again. Raises ``ValidationError`` naming the field on a blank name, an unknown scope, a plan
    of another team or an expiry in the past."""
    require(role_in_team(user=created_by, team_id=team.pk), Perm.API_KEYS_MANAGE)
    now = timezone.now()
    name, scopes, plan_ids = _clean(
        team=team, name=name, scopes=scopes, plan_ids=plan_ids, now=now, expires_at=expires_at
    )
    if not name:
        raise ValidationError({"name": "Name the key after what will use it."})
    if len(name) > ApiKey._meta.get_field("name").max_length:  # type: ignore[operator]
        raise ValidationError({"name": "Use at most 100 characters."})
    principal = _principal(name)

    def build(prefix: str, digest: str) -> ApiKey:
        return ApiKey(
            team=team, name=name, prefix=prefix, key_sha256=digest, scopes=scopes,
            plan_ids=plan_ids, principal=principal, created_by=created_by, created_at=now,
            expires_at=expires_at,
        )  # fmt: skip

    return issue(build, KEY_PREFIX)


@transaction.atomic
def api_key_rotate(
    *, key: ApiKey, user: User, grace: dt.timedelta, now: dt.datetime | None = None
) -> tuple[ApiKey, str]:
    """Issue a new key like ``key`` (same team, name, scopes, plans, expiry and principal) and
    let ``key`` work ``grace`` longer only: both are valid meanwhile. Returns the new key and its
    plaintext. A revoked or expired key cannot be rotated (create a new one)."""
    require(role_in_team(user=user, team_id=key.team_id), Perm.API_KEYS_MANAGE)
    now = now or timezone.now()
    if grace < dt.timedelta(0) or grace > MAX_ROTATION_GRACE:
        raise ValidationError({"grace_hours": f"Choose 0 to {MAX_ROTATION_GRACE.days * 24} hours."})
    old = ApiKey.objects.select_for_update().get(pk=key.pk)
    if not old.is_active(now):
        raise ValidationError({"key": "This key is revoked or expired; create a new one."})
    grace_end = now + grace
    original_expiry = old.expires_at  # the new key keeps the old one's planned end
    if old.expires_at is None or old.expires_at > grace_end:
        old.expires_at = grace_end
        old.save(update_fields=["expires_at"])
    key.expires_at = old.expires_at

    def build(prefix: str, digest: str) -> ApiKey:
        return ApiKey(
            team_id=old.team_id, name=old.name, prefix=prefix, key_sha256=digest,
            scopes=old.scopes, plan_ids=old.plan_ids, principal_id=old.principal_id,
            rotated_from=old, created_by=user, created_at=now,
            expires_at=original_expiry,
        )  # fmt: skip

    return issue(build, KEY_PREFIX)


def api_key_revoke(*, key: ApiKey, user: User, at: dt.datetime | None = None) -> ApiKey:
    """Revoke ``key`` (idempotent: revoking twice keeps the first time)."""
    require(role_in_team(user=user, team_id=key.team_id), Perm.API_KEYS_MANAGE)
    at = at or timezone.now()
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=at)
    key.refresh_from_db(fields=["revoked_at"])
    return key


def api_keys_of_team(*, team: Team) -> QuerySet[ApiKey]:
    """The team's keys, newest first, revoked and expired ones included (one query)."""
    return team.api_keys.select_related("created_by").order_by("-created_at", "-pk")


# Every request with a key looks it up by its prefix (unique): compiled once per process.
_KEYS_BY_PREFIX = Precompiled(
    lambda *, prefix: ApiKey.objects.select_related("team", "principal").filter(prefix=prefix)
)


def api_key_authenticate(
    *, plaintext: str, now: dt.datetime | None = None, address: str | None = None
) -> ApiKey | None:
    """The active key ``plaintext`` names, or None (unknown, wrong secret). Raises
    ``exceptions.AuthenticationFailed`` for a revoked or expired key, so the client learns why."""
    key = find(_KEYS_BY_PREFIX, plaintext, KEY_PREFIX, "key_sha256")
    if key is None:
        return None
    now = now or timezone.now()
    refuse_inactive(key, now, "API key")
    mark_used(key, now=now, address=address)
    return key  # type: ignore[return-value]


class ApiKeyAuthentication(BearerAuthentication):
    """``Authorization: Bearer pp_<prefix>_<secret>``: the request acts as the key's
    principal (``request.user``), ``request.auth`` is the :class:`ApiKey`."""

    kind = KEY_PREFIX
    what = "API key"

    def lookup(self, token: str) -> ApiKey | None:
        return find(_KEYS_BY_PREFIX, token, KEY_PREFIX, "key_sha256")  # type: ignore[return-value]

    def user_of(self, row: Any) -> User:
        return row.principal


def request_api_key(request: Request) -> ApiKey | None:
    """The team API key a request authenticated with, if any."""
    return request.auth if isinstance(request.auth, ApiKey) else None


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents the key in the OpenAPI schema (drf-spectacular finds it by ``target_class``)."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pp_<prefix>_<secret>",
            "description": "A team's API key (Teams → API keys, or "
            "`/api/v1/teams/{id}/api-keys`). Acts as a machine member of its team whose scopes "
            "decide what it may do: read, write, ingest, gate (docs/api.md).",
        }

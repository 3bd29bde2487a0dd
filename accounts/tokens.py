"""Personal access tokens: a person's credentials for their own scripts (docs/api.md,
"Personal access tokens").

A token reads ``ppu_<prefix>_<secret>`` (``accounts.credentials`` has what tokens share with team
keys). It acts as its person, with that person's roles in each team, capped by its scopes: read
allows only the rules that read, write everything the person's roles allow
(``accounts.permissions.TokenRole``). So a Product Owner's token records a decision and a
reviewer's signs off, and a read token refuses both with 403.

Tokens are listed, created and revoked by their person on the settings page or over the API with
a session. A token cannot create or revoke tokens (a read token must not mint a write one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from accounts.credentials import BearerAuthentication, find, issue
from accounts.models import PersonalToken, User
from accounts.permissions import credential_of
from core.precompiled import Precompiled

TOKEN_PREFIX = "ppu"  # noqa: S105  # the kind of credential, not a secret
# Tokens live at most a year: a script that outlives that gets a new one.
MAX_LIFETIME = dt.timedelta(days=366)


def _require_session(user: User) -> None:
    if credential_of(user) is not None:
        raise PermissionDenied("Personal tokens are managed while logged in, not with a token.")


@transaction.atomic
def personal_token_create(
    *, user: User, name: str, scopes: Iterable[str], expires_at: dt.datetime | None
) -> tuple[PersonalToken, str]:
    """A new token for ``user``; returns it with its plaintext, shown this once. Raises
    ``ValidationError`` naming the field on a blank name, an unknown scope, or an expiry that is
    missing, past or more than a year away."""
    _require_session(user)
    now = timezone.now()
    errors: dict[str, str] = {}
    name = name.strip()
    if not name:
        errors["name"] = "Name the token after what will use it."
    elif len(name) > 100:
        errors["name"] = "Use at most 100 characters."
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in PersonalToken.Scope.values]
    if unknown:
        errors["scopes"] = f"Unknown scope: {', '.join(unknown)}."
    elif not scopes:
        errors["scopes"] = "Choose at least one scope."
    if expires_at is None:
        errors["expires_at"] = "Choose when the token expires (at most a year from now)."
    elif expires_at <= now:
        errors["expires_at"] = "Choose a time in the future."
    elif expires_at > now + MAX_LIFETIME:
        errors["expires_at"] = "Choose a time at most a year from now."
    if errors:
        raise ValidationError(errors)

    def build(prefix: str, digest: str) -> PersonalToken:
        return PersonalToken(
            user=user, name=name, prefix=prefix, token_sha256=digest, scopes=scopes,
            created_at=now, expires_at=expires_at,
        )  # fmt: skip

    return issue(build, TOKEN_PREFIX)


def personal_token_revoke(
    *, user: User, token_id: int, at: dt.datetime | None = None
) -> PersonalToken:
    """Revoke one of ``user``'s tokens (idempotent); 404 for anyone else's."""
    _require_session(user)
    token = PersonalToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise Http404("No such token")
    PersonalToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=at or timezone.now()
    )
    token.refresh_from_db(fields=["revoked_at"])
    return token


def personal_tokens_of(*, user: User) -> QuerySet[PersonalToken]:
    """``user``'s tokens, newest first, revoked and expired ones included (one query)."""
    return PersonalToken.objects.filter(user=user).order_by("-created_at", "-pk")


# Every request with a token looks it up by its prefix (unique): compiled once per process.
_TOKENS_BY_PREFIX = Precompiled(
    lambda *, prefix: PersonalToken.objects.select_related("user").filter(prefix=prefix)
)


class PersonalTokenAuthentication(BearerAuthentication):
    """``Authorization: Bearer ppu_<prefix>_<secret>``: the request acts as the token's person
    (``request.user``), ``request.auth`` is the :class:`PersonalToken`. An inactive person's
    token is refused like an unknown one."""

    kind = TOKEN_PREFIX
    what = "personal access token"

    def lookup(self, token: str) -> PersonalToken | None:
        row = find(_TOKENS_BY_PREFIX, token, TOKEN_PREFIX, "token_sha256")
        if row is not None and not row.user.is_active:  # type: ignore[union-attr]
            return None
        return row  # type: ignore[return-value]

    def user_of(self, row: Any) -> User:
        return row.user


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    target_class = PersonalTokenAuthentication
    name = "personalToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ppu_<prefix>_<secret>",
            "description": "A personal access token (Settings → Personal access tokens). Acts "
            "as its person with their roles, capped by its scopes: read or write (docs/api.md).",
        }

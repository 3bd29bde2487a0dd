"""API keys: a machine's credentials for one team, limited to scopes (docs/metrics-ingestion.md).

A key reads ``pp_<prefix>_<secret>``. Only its SHA-256 is stored; the plaintext is shown once when
the key is created. The prefix finds the row, a constant-time comparison of the hash proves the
secret.

Who a key is: :class:`ApiKeyAuthentication` makes ``request.auth`` the :class:`ApiKey` and leaves
``request.user`` anonymous. Views that accept keys check the key's team and scopes explicitly
(``metrics/api/ingest.py``); every other API view keeps requiring a logged-in person
(``IsAuthenticated`` is false for the anonymous user), so a key reaches nothing it was not made
for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiKey, Team, User
from accounts.permissions import Perm, require, role_in_team
from accounts.throttle import api_key_blocked_for, api_key_failure_record, client_address

KEY_PREFIX = "pp"
# 12 hex characters (48 random bits) find the row; 32 random bytes are the secret.
PREFIX_BYTES = 6
SECRET_BYTES = 32
# last_used_at is a hint for people, not an audit log: one write a minute per key at most.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def _sha256(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _parse(plaintext: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a well-formed key, else None."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


@transaction.atomic
def api_key_create(
    *, team: Team, name: str, scopes: Iterable[str], created_by: User
) -> tuple[ApiKey, str]:
    """A new key for ``team``; returns it with its plaintext, which is never stored or shown
    again. Raises ``ValidationError`` naming the field on a blank name or an unknown scope."""
    require(role_in_team(user=created_by, team_id=team.pk), Perm.API_KEYS_MANAGE)
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in ApiKey.Scope.values]
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope: {', '.join(unknown)}."})
    if not scopes:
        raise ValidationError({"scopes": "Choose at least one scope."})
    for _attempt in range(3):
        prefix = secrets.token_hex(PREFIX_BYTES)
        plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
        key = ApiKey(
            team=team,
            name=name.strip(),
            prefix=prefix,
            key_sha256=_sha256(plaintext),
            scopes=scopes,
            created_by=created_by,
        )
        key.full_clean(exclude=["prefix"])
        try:
            with transaction.atomic():
                key.save()
        except IntegrityError:  # 48 random bits collided with another key's prefix: draw again
            continue
        return key, plaintext
    raise RuntimeError("could not draw a unique API key prefix")


def api_key_revoke(*, key: ApiKey, user: User, at: dt.datetime | None = None) -> ApiKey:
    """Revoke ``key`` (idempotent: revoking twice keeps the first time)."""
    require(role_in_team(user=user, team_id=key.team_id), Perm.API_KEYS_MANAGE)
    at = at or timezone.now()
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=at)
    key.refresh_from_db(fields=["revoked_at"])
    return key


def api_key_authenticate(*, plaintext: str, now: dt.datetime | None = None) -> ApiKey | None:
    """The active key ``plaintext`` names, or None (unknown, wrong secret). Raises
    ``exceptions.AuthenticationFailed`` for a revoked key, so the client learns why."""
    parsed = _parse(plaintext)
    if parsed is None:
        return None
    key = ApiKey.objects.select_related("team").filter(prefix=parsed[0]).first()
    # Compare even when no row matched, so timing does not tell a known prefix from an unknown.
    expected = key.key_sha256 if key is not None else "0" * 64
    if not hmac.compare_digest(expected, _sha256(plaintext)) or key is None:
        return None
    if key.revoked_at is not None:
        raise exceptions.AuthenticationFailed("This API key has been revoked.")
    now = now or timezone.now()
    if key.last_used_at is None or key.last_used_at <= now - LAST_USED_RESOLUTION:
        # Compare-and-set: concurrent requests in the same minute write once.
        ApiKey.objects.filter(pk=key.pk, last_used_at=key.last_used_at).update(last_used_at=now)
        key.last_used_at = now
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer pp_<prefix>_<secret>``. Other Authorization headers are left to
    the next authentication class; a malformed, unknown or revoked ``pp_`` key is a 401."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != self.keyword.lower().encode():
            return None
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        if not token.startswith(f"{KEY_PREFIX}_"):
            return None
        return self.authenticate_token(request, token)

    def authenticate_token(self, request: Request, token: str) -> tuple[AnonymousUser, ApiKey]:
        """Authenticate ``token`` (a ``pp_`` key), counting refusals per address."""
        address = client_address(request._request)
        wait = api_key_blocked_for(address)
        if wait:
            raise exceptions.Throttled(
                wait=wait, detail="Too many refused API keys from this address; try again later."
            )
        try:
            key = api_key_authenticate(plaintext=token)
        except exceptions.AuthenticationFailed:
            api_key_failure_record(address, "revoked")
            raise
        if key is None:
            api_key_failure_record(address, "invalid")
            raise exceptions.AuthenticationFailed("Invalid API key.")
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


def request_api_key(request: Request) -> ApiKey | None:
    """The API key a request authenticated with, if any."""
    return request.auth if isinstance(request.auth, ApiKey) else None


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents the key in the OpenAPI schema (drf-spectacular finds it by ``target_class``)."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_requirement(  # type: ignore[override]  # None: no requirement here
        self, auto_schema: Any
    ) -> dict[str, list[Any]] | None:
        # Listed only on operations whose permissions accept a key (``accepts_api_keys``); on
        # the others a key authenticates nobody, so advertising it would mislead.
        permissions = auto_schema.view.get_permissions()
        if any(getattr(p, "accepts_api_keys", False) for p in permissions):
            return {self.name: []}
        return None

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pp_<prefix>_<secret>",
            "description": "A team's API key (Teams → API keys). Accepted by the sample "
            "ingestion endpoints when the key has the `ingest` scope, and by the deployment "
            "gate when it has the `read` scope.",
        }

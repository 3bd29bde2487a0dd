"""Token credentials for the API: what team API keys (``pp_…``) and personal access tokens
(``ppu_…``) share (docs/api.md, "Authentication").

A credential reads ``<kind>_<prefix>_<secret>``. Only its SHA-256 is stored; the plaintext is
shown once. The prefix finds the row, a constant-time comparison of the hash proves the secret.

Who a request is: the authentication classes make ``request.user`` the credential's user (a
personal token's person; a team key's principal) with ``user.credential`` set to the key or
token, and ``request.auth`` the key or token. The permission table reads ``user.credential``
(``accounts.permissions.role_in_team``), so every endpoint honours the same rules for sessions,
team keys and personal tokens. Token requests carry no cookie and are not CSRF-checked (DRF
checks CSRF in ``SessionAuthentication`` only); they come first in
``DEFAULT_AUTHENTICATION_CLASSES`` so a script that also holds a session cookie is judged by its
token.

Refused credentials (malformed, unknown, revoked, expired) are counted per address in Redis
(``accounts.throttle``): past ``API_KEY_FAILURE_LIMIT`` the address gets 429 until the window
ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiKey, PersonalToken, User
from accounts.throttle import api_key_blocked_for, api_key_failure_record, client_address
from core.precompiled import Precompiled

# 12 hex characters (48 random bits) find the row; 32 random bytes are the secret.
PREFIX_BYTES = 6
SECRET_BYTES = 32
# last_used_at is a hint for people, not an audit log: one write a minute per credential at most
# (sooner when the address changes).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)

Credential = ApiKey | PersonalToken


def sha256(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def parse(plaintext: str, kind: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a well-formed ``kind`` credential, else None."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != kind or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def issue(build: Any, kind: str) -> tuple[Any, str]:
    """Save ``build(prefix, sha256)``'s row with a fresh unique prefix; the row and plaintext.
    Call inside a transaction."""
    for _attempt in range(3):
        prefix = secrets.token_hex(PREFIX_BYTES)
        plaintext = f"{kind}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
        row = build(prefix, sha256(plaintext))
        row.full_clean(exclude=["prefix", "principal"])
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:  # 48 random bits collided with another prefix: draw again
            continue
        return row, plaintext
    raise RuntimeError("could not draw a unique credential prefix")


def find(rows: Precompiled[Any], plaintext: str, kind: str, digest_field: str) -> Credential | None:
    """The row ``plaintext`` names (whatever its state), or None. ``rows`` finds the rows of a
    prefix (``rows.run(prefix=…)``): precompiled, as every request with a credential asks it."""
    parsed = parse(plaintext, kind)
    if parsed is None:
        return None
    found = rows.run(prefix=parsed[0])
    row = found[0] if found else None
    # Compare even when no row matched, so timing does not tell a known prefix from an unknown.
    expected = getattr(row, digest_field) if row is not None else "0" * 64
    if not hmac.compare_digest(expected, sha256(plaintext)) or row is None:
        return None
    return row


def refuse_inactive(row: Credential, now: dt.datetime, what: str) -> None:
    """``AuthenticationFailed`` naming why for a revoked or expired credential."""
    if row.revoked_at is not None:
        raise exceptions.AuthenticationFailed(f"This {what} has been revoked.")
    if row.expires_at is not None and row.expires_at <= now:
        raise exceptions.AuthenticationFailed(
            f"This {what} expired at {row.expires_at.isoformat(timespec='seconds')}."
        )


def mark_used(row: Credential, *, now: dt.datetime, address: str | None) -> None:
    """Record when and from where ``row`` was last used: at most once a minute per credential,
    unless the address changed (compare-and-set, so concurrent requests write once)."""
    stale = row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION
    if not stale and row.last_used_address == address:
        return
    type(row).objects.filter(
        pk=row.pk, last_used_at=row.last_used_at, last_used_address=row.last_used_address
    ).update(last_used_at=now, last_used_address=address)
    row.last_used_at, row.last_used_address = now, address


def ip_or_none(address: str) -> str | None:
    """The address as the GenericIPAddressField stores it (None for "unknown")."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


class BearerAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <kind>_<prefix>_<secret>``. Other Authorization headers are left
    to the next authentication class; a malformed, unknown, revoked or expired credential of
    this kind is a 401, and too many of them from one address a 429."""

    keyword = "Bearer"
    kind = ""  # "pp" or "ppu"
    what = "credential"

    def authenticate(self, request: Request) -> tuple[User, Credential] | None:
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != self.keyword.lower().encode():
            return None
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(f"Invalid {self.what}.") from None
        if not token.startswith(f"{self.kind}_"):
            return None
        return self.authenticate_token(request, token)

    def authenticate_token(self, request: Request, token: str) -> tuple[User, Credential]:
        """Authenticate ``token``, counting refusals per address."""
        address = client_address(request._request)
        wait = api_key_blocked_for(address)
        if wait:
            raise exceptions.Throttled(
                wait=wait,
                detail="Too many refused API credentials from this address; try again later.",
            )
        now = timezone.now()
        try:
            row = self.lookup(token)
            if row is None:
                raise exceptions.AuthenticationFailed(f"Invalid {self.what}.")
            refuse_inactive(row, now, self.what)
        except exceptions.AuthenticationFailed as exc:
            api_key_failure_record(address, str(exc.detail))
            raise
        mark_used(row, now=now, address=ip_or_none(address))
        user = self.user_of(row)
        user.credential = row  # type: ignore[attr-defined]  # read by accounts.permissions
        return user, row

    def lookup(self, token: str) -> Credential | None:
        raise NotImplementedError

    def user_of(self, row: Any) -> User:
        raise NotImplementedError

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'

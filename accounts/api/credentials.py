"""Credentials over the API (docs/api.md, "Authentication"): a team's API keys, managed by its
Product Owner or Scrum Master (a session or their personal token with the write scope), and the
caller's own personal access tokens (a session only: a token may not mint tokens).

A created key or token is answered once with its plaintext (``key`` / ``token``) and never again;
``Cache-Control: no-store`` keeps it out of caches.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from accounts.api_keys import (
    MAX_ROTATION_GRACE,
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    api_keys_of_team,
)
from accounts.models import ApiKey, PersonalToken, Team, User
from accounts.permissions import Perm, team_for_member
from accounts.tokens import personal_token_create, personal_token_revoke, personal_tokens_of
from core.api import FORBIDDEN, INVALID, NOT_FOUND
from core.listing import filter_parameters, filtered, ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginated

TAGS = ["credentials"]


def _state(row: ApiKey | PersonalToken, now: dt.datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


class ApiKeyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The key's public part: `pp_<prefix>_…`.")
    scopes = serializers.ListField(child=serializers.ChoiceField(ApiKey.Scope.choices))
    plans = serializers.ListField(
        source="plan_ids",
        child=serializers.IntegerField(),
        help_text="The plans it is restricted to; empty: every plan of the team.",
    )
    state = serializers.SerializerMethodField(help_text="active, expired or revoked.")
    created_at = serializers.DateTimeField()
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    last_used_address = serializers.IPAddressField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    rotated_from = serializers.IntegerField(source="rotated_from_id", allow_null=True)

    def get_state(self, key: ApiKey) -> str:
        return _state(key, self.context["now"])


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(help_text="The key itself, shown this once: store it now.")


class ApiKeyInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What uses it.")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(ApiKey.Scope.choices), min_length=1, max_length=4
    )
    plans = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=100,
        help_text="Restrict the key to these plans of the team (default: every plan).",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ApiKeyRotateInputSerializer(serializers.Serializer):
    grace_hours = serializers.IntegerField(
        min_value=0,
        max_value=MAX_ROTATION_GRACE.days * 24,
        default=24,
        help_text="How long the old key keeps working beside the new one (default 24).",
    )


class ApiKeyRotatedOutputSerializer(serializers.Serializer):
    new = ApiKeyCreatedOutputSerializer()
    old = ApiKeyOutputSerializer()


def _team(request: Request, team_id: int) -> Team:
    team, _role = team_for_member(
        user=request.user,  # type: ignore[arg-type]
        team_id=team_id,
        perm=Perm.API_KEYS_MANAGE,
    )
    return team


def _key(team: Team, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(team=team, pk=key_id).select_related("created_by").first()
    if key is None:
        raise Http404("No such API key")
    return key


def _once(data: Any, code: int) -> Response:
    response = Response(data, status=code)
    response["Cache-Control"] = "no-store"
    return response


class CredentialFilter(django_filters.FilterSet):
    revoked = django_filters.BooleanFilter(
        field_name="revoked_at",
        lookup_expr="isnull",
        exclude=True,
        label="`true`: only revoked ones; `false`: only those not revoked.",
    )
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains.")


CREDENTIAL_ORDERING = {
    "created_at": "created_at",
    "name": "name",
    "expires_at": "expires_at",
    "last_used_at": "last_used_at",
}
CREDENTIAL_DEFAULT = ["-created_at"]
CREDENTIAL_PARAMETERS = [
    *filter_parameters(CredentialFilter),
    ordering_parameter(CREDENTIAL_ORDERING, CREDENTIAL_DEFAULT),
    PAGE_PARAMETER,
]


def _listed(request: Request, rows: QuerySet) -> QuerySet:
    rows = filtered(request, CredentialFilter, rows)
    return ordered(request, rows, fields=CREDENTIAL_ORDERING, default=CREDENTIAL_DEFAULT)


def _page(request: Request, rows: Any, serializer: type[serializers.Serializer]) -> Response:
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    page = paginator.paginate_queryset(rows, request)
    context = {"now": timezone.now()}
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)


@extend_schema(
    methods=["GET"],
    tags=TAGS,
    operation_id="team_api_keys_list",
    parameters=CREDENTIAL_PARAMETERS,
    responses={200: paginated(ApiKeyOutputSerializer), 403: FORBIDDEN, 404: NOT_FOUND},
)
@extend_schema(
    methods=["POST"],
    tags=TAGS,
    operation_id="team_api_keys_create",
    request=ApiKeyInputSerializer,
    responses={201: ApiKeyCreatedOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET", "POST"])
def team_api_keys(request: Request, team_id: int) -> Response:
    """GET: the team's keys, newest first (never their secrets). POST: create one; the answer
    carries the key this once. The team's Product Owner or Scrum Master only."""
    team = _team(request, team_id)
    if request.method == "GET":
        return _page(request, _listed(request, api_keys_of_team(team=team)), ApiKeyOutputSerializer)
    payload = ApiKeyInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    data = payload.validated_data
    key, plaintext = api_key_create(
        team=team,
        name=data["name"],
        scopes=data["scopes"],
        plan_ids=data["plans"],
        expires_at=data["expires_at"],
        created_by=request.user,  # type: ignore[arg-type]
    )
    body = ApiKeyOutputSerializer(key, context={"now": timezone.now()}).data | {"key": plaintext}
    return _once(body, status.HTTP_201_CREATED)


@extend_schema(
    methods=["GET"],
    tags=TAGS,
    operation_id="team_api_keys_retrieve",
    responses={200: ApiKeyOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
)
@extend_schema(
    methods=["DELETE"],
    tags=TAGS,
    operation_id="team_api_keys_revoke",
    responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET", "DELETE"])
def team_api_key(request: Request, team_id: int, key_id: int) -> Response:
    """GET: one key. DELETE: revoke it; requests using it are refused from now on (the record
    stays, with when it was revoked)."""
    key = _key(_team(request, team_id), key_id)
    if request.method == "DELETE":
        api_key_revoke(key=key, user=request.user)  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(ApiKeyOutputSerializer(key, context={"now": timezone.now()}).data)


@extend_schema(
    tags=TAGS,
    operation_id="team_api_keys_rotate",
    request=ApiKeyRotateInputSerializer,
    responses={201: ApiKeyRotatedOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["POST"])
def team_api_key_rotate(request: Request, team_id: int, key_id: int) -> Response:
    """Issue a new key like this one (the answer carries it once) and let this one keep working
    ``grace_hours`` longer: both work meanwhile, so clients switch without downtime."""
    key = _key(_team(request, team_id), key_id)
    payload = ApiKeyRotateInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    new, plaintext = api_key_rotate(
        key=key,
        user=request.user,  # type: ignore[arg-type]
        grace=dt.timedelta(hours=payload.validated_data["grace_hours"]),
    )
    context = {"now": timezone.now()}
    body = {
        "new": ApiKeyOutputSerializer(new, context=context).data | {"key": plaintext},
        "old": ApiKeyOutputSerializer(key, context=context).data,
    }
    return _once(body, status.HTTP_201_CREATED)


# --- personal access tokens ----------------------------------------------------------------------


class PersonalTokenOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The token's public part: `ppu_<prefix>_…`.")
    scopes = serializers.ListField(child=serializers.ChoiceField(PersonalToken.Scope.choices))
    state = serializers.SerializerMethodField(help_text="active, expired or revoked.")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    last_used_address = serializers.IPAddressField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)

    def get_state(self, token: PersonalToken) -> str:
        return _state(token, self.context["now"])


class PersonalTokenCreatedOutputSerializer(PersonalTokenOutputSerializer):
    token = serializers.CharField(help_text="The token itself, shown this once: store it now.")


class PersonalTokenInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What uses it.")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(PersonalToken.Scope.choices), min_length=1, max_length=2
    )
    expires_at = serializers.DateTimeField(help_text="At most a year from now.")


@extend_schema(
    methods=["GET"],
    tags=TAGS,
    operation_id="me_tokens_list",
    parameters=CREDENTIAL_PARAMETERS,
    responses={200: paginated(PersonalTokenOutputSerializer), 403: FORBIDDEN},
)
@extend_schema(
    methods=["POST"],
    tags=TAGS,
    operation_id="me_tokens_create",
    request=PersonalTokenInputSerializer,
    responses={201: PersonalTokenCreatedOutputSerializer, 400: INVALID, 403: FORBIDDEN},
)
@api_view(["GET", "POST"])
def my_tokens(request: Request) -> Response:
    """GET: the caller's personal access tokens. POST: create one (with a session only); the
    answer carries the token this once."""
    user: User = request.user  # type: ignore[assignment]
    if request.method == "GET":
        return _page(
            request, _listed(request, personal_tokens_of(user=user)), PersonalTokenOutputSerializer
        )
    payload = PersonalTokenInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    data = payload.validated_data
    token, plaintext = personal_token_create(
        user=user, name=data["name"], scopes=data["scopes"], expires_at=data["expires_at"]
    )
    body = PersonalTokenOutputSerializer(token, context={"now": timezone.now()}).data | {
        "token": plaintext
    }
    return _once(body, status.HTTP_201_CREATED)


@extend_schema(
    tags=TAGS,
    operation_id="me_tokens_revoke",
    responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["DELETE"])
def my_token(request: Request, token_id: int) -> Response:
    """Revoke one of the caller's tokens (with a session only)."""
    personal_token_revoke(user=request.user, token_id=token_id)  # type: ignore[arg-type]
    return Response(status=status.HTTP_204_NO_CONTENT)

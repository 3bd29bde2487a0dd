"""Problem details (RFC 9457): the one shape of every error answer under ``/api/``.

Every error body is a JSON object served as ``application/problem+json`` with

- ``type``: a URI naming the kind of problem. ``about:blank`` when the HTTP status says it all
  (404, 405, 406, 415, 429, 500…); one of the ``urn:pilotplan:problem:…`` types below when the body
  carries more members that a client may use (docs/api.md lists them);
- ``title``: the short, fixed wording of that type (the HTTP reason phrase for ``about:blank``);
- ``status``: the HTTP status code, repeated;
- ``detail``: what went wrong this time, in words for a person;
- extension members, by type: ``errors`` (``{field: [reasons]}``) for invalid input,
  ``current_version`` and friends for an edit conflict, ``reasons`` for a refused step, …

We build these by hand rather than through a library: the handler in ``pilotplan.api`` already
maps our service errors, and the few members we add must stay where existing clients read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, NamedTuple

from django.http import JsonResponse
from rest_framework.response import Response

PROBLEM_JSON = "application/problem+json"


class ProblemType(NamedTuple):
    uri: str
    title: str


BLANK = "about:blank"
# The types whose bodies carry extension members (docs/api.md#errors says what each adds).
INVALID_INPUT = ProblemType("urn:pilotplan:problem:invalid-input", "Invalid input")
EDIT_CONFLICT = ProblemType("urn:pilotplan:problem:edit-conflict", "Someone else saved first")
PLAN_READ_ONLY = ProblemType("urn:pilotplan:problem:plan-read-only", "The plan is read-only")
STEP_REFUSED = ProblemType("urn:pilotplan:problem:step-refused", "The step is not possible now")
INVALID_SAMPLES = ProblemType("urn:pilotplan:problem:invalid-samples", "Samples refused")


def problem(
    status: int, detail: str, kind: ProblemType | None = None, **extensions: Any
) -> dict[str, Any]:
    """A problem details body; ``kind`` None means ``about:blank`` (the status says it all)."""
    if kind is None:
        body: dict[str, Any] = {"type": BLANK, "title": HTTPStatus(status).phrase}
    else:
        body = {"type": kind.uri, "title": kind.title}
    body |= {"status": status, "detail": detail}
    return body | extensions


def problem_response(
    status: int,
    detail: str,
    kind: ProblemType | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A DRF answer carrying a problem details body."""
    return Response(
        problem(status, detail, kind, **extensions),
        status=status,
        headers=dict(headers or {}),
        content_type=PROBLEM_JSON,
    )


def problem_json_response(status: int, detail: str, **extensions: Any) -> JsonResponse:
    """The same body for answers Django gives outside DRF (error pages, middleware refusals)."""
    return JsonResponse(
        problem(status, detail, **extensions), status=status, content_type=PROBLEM_JSON
    )


def invalid_input_detail(errors: Any) -> str:
    """One sentence for ``detail`` from ``{field: [reasons]}``: the first reason, and how many
    more there are (``errors`` holds them all)."""
    reasons = list(_flatten(errors))
    if not reasons:
        return "The request is not valid."
    field, reason = reasons[0]
    first = f"{field}: {reason}" if field and field != "non_field_errors" else reason
    more = len(reasons) - 1
    return first if not more else f"{first} (and {more} more: see errors)"


def _flatten(errors: Any, path: str = "") -> Any:
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            yield from _flatten(value, f"{path}.{key}" if path else str(key))
    elif isinstance(errors, list | tuple):
        for index, value in enumerate(errors):
            nested = isinstance(value, Mapping | list | tuple)
            yield from _flatten(value, f"{path}[{index}]" if nested else path)
    else:
        yield path, str(errors)

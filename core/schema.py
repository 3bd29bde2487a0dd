"""The OpenAPI schema's AutoSchema: every operation documents the errors it can answer.

Views list the errors their own logic gives (400 invalid, 403, 404, 409, 412, 428…). This class adds
what the framework answers on any operation, where the view did not list it: 401 (when the view's
first authentication asks for credentials), 403 (an authenticated operation), 404 (a path with an
id: also a malformed one), 400 / 413 / 415 (an operation that reads a body), 406, 429 and 500; and,
from the operation's own parameters, 400 where it takes query parameters (a bad filter, ordering
or page), 404 where it is paginated (a page past the last) and 428 where it requires If-Match.
Every error body is problem details (``core.problems``), served as ``application/problem+json``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny

from core.api import (
    FORBIDDEN,
    INVALID,
    NOT_ACCEPTABLE,
    NOT_FOUND,
    PRECONDITION_REQUIRED,
    SERVER_ERROR,
    TOO_LARGE,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
    ErrorOutputSerializer,
)
from core.problems import PROBLEM_JSON


def _is_problem(answer: Any) -> bool:
    serializer = answer.response if isinstance(answer, OpenApiResponse) else answer
    cls = serializer if isinstance(serializer, type) else type(serializer)
    return isinstance(cls, type) and issubclass(cls, ErrorOutputSerializer)


class AutoSchema(openapi.AutoSchema):
    def _framework_errors(self) -> dict[int, OpenApiResponse]:
        errors: dict[int, OpenApiResponse] = {}
        reads_body = self.method in ("POST", "PUT", "PATCH") and (
            self.get_request_serializer() is not None
        )
        if reads_body:
            errors |= {400: INVALID, 413: TOO_LARGE, 415: UNSUPPORTED_MEDIA_TYPE}
        authenticators = self.view.get_authenticators()
        if authenticators and authenticators[0].authenticate_header(self.view.request):
            errors[401] = UNAUTHORIZED
        public = all(issubclass(p, AllowAny) for p in self.view.permission_classes)
        if not public:
            errors[403] = FORBIDDEN
        if "{" in self.path:
            errors[404] = NOT_FOUND
        return errors | {406: NOT_ACCEPTABLE, 429: TOO_MANY_REQUESTS, 500: SERVER_ERROR}

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if not operation:
            return operation
        parameters = operation.get("parameters", [])
        query = [p["name"] for p in parameters if p.get("in") == "query"]
        headers = [p["name"].lower() for p in parameters if p.get("in") == "header"]
        implied: dict[int, OpenApiResponse] = {}
        if query:
            implied[400] = INVALID
        if "page" in query:
            implied[404] = NOT_FOUND
        if "if-match" in headers:
            implied[428] = PRECONDITION_REQUIRED
        responses = operation.setdefault("responses", {})
        for code, answer in implied.items():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(answer, str(code))
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)  # type: ignore[arg-type]
        if direction != "response":
            return responses
        for code, answer in self._framework_errors().items():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(answer, str(code))
        return dict(sorted(responses.items()))

    def _get_response_for_code(
        self,
        serializer: Any,
        status_code: str,
        media_types: Any = None,
        direction: str = "response",
    ) -> dict[str, Any]:
        if not media_types and status_code >= "400" and _is_problem(serializer):
            media_types = [PROBLEM_JSON]
        return super()._get_response_for_code(serializer, status_code, media_types, direction)  # type: ignore[arg-type]


# --- links (OpenAPI 3 ``links``: how one answer leads to the next request) ----------------------
#
# A stateful client (and schemathesis's stateful phase) follows links to chain requests: create a
# plan, read it, change a section with the ETag it was given. Rather than hand-writing hundreds of
# links beside the views, they are derived here, once, from the shape of the paths:
#
# 1. **A new or listed resource leads to itself.** A ``POST`` on ``P`` answering 201 with an
#    ``id``, or a ``GET`` on ``P`` listing objects with an ``id`` (the first of ``results`` or
#    ``rows``), links to every operation on ``P/{x}`` and below it where the rest of the path has
#    no other parameter: ``x`` is that id, the other path parameters are the request's own.
#    (``POST /plans`` → the plan, its sections, rows, samples…; ``GET /teams`` → the team's keys,
#    backlog, webhooks.) Where the answer carries an ``ETag`` and the target is the resource itself
#    or an action on it (``P/{x}``, ``P/{x}/move``) and requires ``If-Match``, the ETag is passed.
# 2. **An ETag leads to the writes it guards.** Any success answer on ``Q`` with an ``ETag``
#    header links to the operations on ``Q`` and ``Q/<action>`` that require ``If-Match``, with
#    ``If-Match: $response.header.ETag`` (a section's GET → its PUT / PATCH; a row's PATCH → the
#    next PATCH, its move, its DELETE).
# 3. **A few links no path shape implies** (``EXTRA_LINKS``): a team leads to a new plan in it
#    (the team is in the body, not the path); pushed samples lead to reading that metric's
#    samples back.
#
# Links are named after the target's operationId; a link an operation declares itself wins.

_WRITES = ("post", "put", "patch", "delete")
_METHODS = ("get", *_WRITES)
_LIST_FIELDS = ("results", "rows")

_NEW_PLAN = "A new plan in this team (the rest of the body is the caller's)."
EXTRA_LINKS: dict[str, dict[str, Any]] = {
    # (source operationId) → {link name: link}, added to every 2xx answer of the source.
    "teams_list": {
        "plans_create": {
            "operationId": "plans_create",
            "requestBody": {"team": "$response.body#/results/0/id"},
            "description": _NEW_PLAN,
        }
    },
    "teams_create": {
        "plans_create": {
            "operationId": "plans_create",
            "requestBody": {"team": "$response.body#/id"},
            "description": _NEW_PLAN,
        }
    },
    "plans_samples_create": {
        "plan_metric_samples_list": {
            "operationId": "plan_metric_samples_list",
            "parameters": {
                "path.plan_id": "$request.path.plan_id",
                "path.key": "$request.body#/samples/0/metric",
            },
            "description": "Read back the samples of the first pushed sample's metric.",
        }
    },
    "teams_samples_create": {
        "plan_metric_samples_list": {
            "operationId": "plan_metric_samples_list",
            "parameters": {
                "path.plan_id": "$request.body#/samples/0/plan",
                "path.key": "$request.body#/samples/0/metric",
            },
            "description": "Read back the samples of the first pushed sample's metric.",
        }
    },
}


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def _is_parameter(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _path_parameters(path: str) -> list[str]:
    return [s[1:-1] for s in _segments(path) if _is_parameter(s)]


def _requires_if_match(operation: dict[str, Any]) -> bool:
    return any(
        p.get("in") == "header" and p.get("name", "").lower() == "if-match" and p.get("required")
        for p in operation.get("parameters", [])
    )


def _properties(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    properties: dict[str, Any] = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        properties |= _properties(part, components)
    return properties


def _id_pointer(
    method: str, status: str, answer: dict[str, Any], components: dict[str, Any]
) -> str | None:
    """Where the answer names the id of the resource it created or the first one it lists."""
    schema = answer.get("content", {}).get("application/json", {}).get("schema")
    if not schema:
        return None
    properties = _properties(schema, components)
    if method == "post" and status == "201" and "id" in properties:
        return "$response.body#/id"
    if method == "get" and status == "200":
        for name in _LIST_FIELDS:
            field = properties.get(name, {})
            items = _properties(field.get("items", {}), components)
            if field.get("type") == "array" and "id" in items:
                return f"$response.body#/{name}/0/id"
    return None


def _link(target_id: str, parameters: dict[str, str], description: str) -> dict[str, Any]:
    return {"operationId": target_id, "parameters": parameters, "description": description}


def schema_links(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add the links described above to every answer."""
    paths: dict[str, dict[str, Any]] = result.get("paths", {})
    components = result.get("components", {}).get("schemas", {})
    operations = [
        (path, method, operation)
        for path, item in paths.items()
        for method, operation in item.items()
        if method in _METHODS
    ]
    for path, method, operation in operations:
        for status, answer in operation.get("responses", {}).items():
            if status not in ("200", "201"):
                continue
            links: dict[str, Any] = {}
            has_etag = "ETag" in answer.get("headers", {})
            pointer = _id_pointer(method, status, answer, components)
            if pointer:
                links |= _resource_links(path, pointer, has_etag, operations)
            if has_etag:
                links |= _etag_links(path, operations)
            links |= EXTRA_LINKS.get(operation.get("operationId", ""), {})
            if links:
                answer["links"] = links | answer.get("links", {})
    return result


def _resource_links(
    path: str, pointer: str, has_etag: bool, operations: list[tuple[str, str, dict[str, Any]]]
) -> dict[str, Any]:
    """Rule 1: the created or listed resource, its actions and its literal sub-resources."""
    links: dict[str, Any] = {}
    base = _segments(path)
    own = set(_path_parameters(path))
    for target_path, _method, target in operations:
        segments = _segments(target_path)
        if len(segments) <= len(base) or segments[: len(base)] != base:
            continue
        new, rest = segments[len(base)], segments[len(base) + 1 :]
        if not _is_parameter(new) or any(_is_parameter(s) for s in rest):
            continue
        parameters = {f"path.{name}": f"$request.path.{name}" for name in sorted(own)}
        parameters[f"path.{new[1:-1]}"] = pointer
        if has_etag and len(rest) <= 1 and _requires_if_match(target):
            parameters["header.If-Match"] = "$response.header.ETag"
        links[target["operationId"]] = _link(
            target["operationId"], parameters, "The resource this answer created or listed first."
        )
    return links


def _etag_links(path: str, operations: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """Rule 2: the writes the answer's ETag lets through, on the same path or an action of it."""
    links: dict[str, Any] = {}
    base = _segments(path)
    for target_path, _method, target in operations:
        segments = _segments(target_path)
        if segments[: len(base)] != base or len(segments) > len(base) + 1:
            continue
        if len(segments) == len(base) + 1 and _is_parameter(segments[-1]):
            continue
        if not _requires_if_match(target):
            continue
        parameters = {f"path.{name}": f"$request.path.{name}" for name in _path_parameters(path)}
        parameters["header.If-Match"] = "$response.header.ETag"
        links[target["operationId"]] = _link(
            target["operationId"], parameters, "Change it, based on the version this answer gave."
        )
    return links

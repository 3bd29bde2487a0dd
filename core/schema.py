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

"""Errors raised by services, mapped to HTTP statuses in one place (``pilotplan.api``).

Services raise Django's ``ValidationError`` (400) and ``PermissionDenied`` (403) and ``Http404``
(404) as usual; these cover the remaining outcomes a write can have.
"""


class ServiceError(Exception):
    """Base class: a service refused the operation; ``message`` says why."""

    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Conflict(ServiceError):
    """The operation is impossible in the object's current state (409)."""

    status_code = 409


class PreconditionFailed(ServiceError):
    """The client's version of the object is stale (412)."""

    status_code = 412


class PreconditionRequired(ServiceError):
    """An update arrived without the version it was based on (428)."""

    status_code = 428

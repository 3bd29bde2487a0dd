"""ETag / If-Match for versioned API resources: nobody's work is silently overwritten.

A versioned resource answers every read and write with ``ETag: "<version>"``. A write must send
the tag it is based on back in ``If-Match``:

- no ``If-Match`` (or ``If-Match: *``, which would match any version) → **428**: the write could
  overwrite someone else's work unseen, so it is refused;
- a tag that is not the current version → **412**, nothing saved (the caller raises the stale
  error, e.g. ``pilots.services.SectionConflict``; the exception handler in ``pilotplan.api``
  renders it with the current version);
- the current version → the write proceeds; the service's compare-and-set still guards the race
  between this check and the save.

Our tags are version numbers. We also accept the weak form ``W/"3"`` (proxies that compress
responses weaken ETags, and a client should not be locked out by that) and a bare ``3``.
"""

from __future__ import annotations

from collections.abc import Sequence

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from core.exceptions import PreconditionRequired

MISSING_IF_MATCH = (
    "This change needs an If-Match header with the ETag of the version you are changing "
    '(e.g. If-Match: "3"): read the resource first, then send its ETag back.'
)
WILDCARD_IF_MATCH = (
    "If-Match: * would overwrite whatever is saved now; send the ETag of the version you read."
)


def etag(version: int) -> str:
    return f'"{version}"'


def with_etag(response: Response, version: int) -> Response:
    response["ETag"] = etag(version)
    return response


def _versions(header: str) -> tuple[frozenset[int], bool]:
    """The versions named by an If-Match / If-None-Match header, and whether it says ``*``."""
    versions: set[int] = set()
    wildcard = False
    for raw in header.split(","):
        tag = raw.strip()
        if tag == "*":
            wildcard = True
            continue
        tag = tag.removeprefix("W/")
        if len(tag) >= 2 and tag[0] == tag[-1] == '"':
            tag = tag[1:-1]
        if tag.isascii() and tag.isdigit():
            versions.add(int(tag))
        # Anything else is somebody else's tag: it names no version of ours, so it never matches.
    return frozenset(versions), wildcard


def if_match_versions(request: Request) -> frozenset[int]:
    """The versions the client says its change is based on; 428 when it does not say."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        raise PreconditionRequired(MISSING_IF_MATCH)
    versions, wildcard = _versions(header)
    if wildcard and not versions:
        raise PreconditionRequired(WILDCARD_IF_MATCH)
    return versions


def not_modified(request: Request, version: int) -> Response | None:
    """For a GET with ``If-None-Match`` naming the current version: 304 with the ETag."""
    header = request.headers.get("If-None-Match", "").strip()
    if not header:
        return None
    versions, wildcard = _versions(header)
    if wildcard or version in versions:
        return with_etag(Response(status=304), version)
    return None


# --- OpenAPI -------------------------------------------------------------------------------------

IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description=(
        'The ETag of the version this change is based on, e.g. `"3"` (from a GET or the previous '
        "write). Missing → 428; not the current version → 412 and nothing is saved."
    ),
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="An ETag you already have: 304 Not Modified (no body) if it is still current.",
)


def etag_header(statuses: Sequence[int], description: str) -> OpenApiParameter:
    """The ``ETag`` response header on the given statuses."""
    return OpenApiParameter(
        "ETag",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=list(statuses),
        description=description,
    )

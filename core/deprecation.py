"""Old API paths that keep answering for a while after their resource got a new name.

``deprecated(view, successor="plan-alerts", since=date(…))`` is ``view`` for an old route: the
same answer (errors included), plus what tells a client to move:

- ``Deprecation: @<seconds since the epoch>`` (RFC 9745: a Structured Field Date, the moment the
  path was deprecated; the drafts' ``Deprecation: true`` is not valid any more);
- ``Link: <https://…/the/new/path>; rel="successor-version"`` (RFC 8288, RFC 5829): the same
  resource under its new name, reversed from ``successor`` with the request's own arguments;
- ``Sunset: <HTTP-date>`` (RFC 8594) once a removal date is known.

For a DRF ``@api_view`` the alias also gets an OpenAPI operation of its own: the view's, marked
``deprecated``, under ``operation_id`` (give the old one: two operations may not share an id, and
generated clients keep their method names). Views are not copied: one function serves both paths.

Core is the lowest layer: nothing here knows the apps; they pass their own names in.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import reverse
from django.utils.http import http_date
from drf_spectacular.utils import extend_schema

View = Callable[..., HttpResponseBase]


def deprecated(
    view: View,
    *,
    successor: str,
    since: dt.date,
    sunset: dt.date | None = None,
    operation_id: str | None = None,
) -> View:
    """``view`` at a deprecated path; ``successor`` is the URL name of its new path, taking the
    same arguments (a name without a namespace is looked up in the old route's namespace)."""
    deprecation = f"@{calendar.timegm(since.timetuple())}"
    sunset_header = http_date(calendar.timegm(sunset.timetuple())) if sunset else None

    @functools.wraps(view)
    def alias(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        name = successor
        namespace = request.resolver_match.namespace if request.resolver_match else ""
        if namespace and ":" not in name:
            name = f"{namespace}:{name}"
        url = request.build_absolute_uri(reverse(name, args=args, kwargs=kwargs))
        link = f'<{url}>; rel="successor-version"'
        if response.has_header("Link"):
            link = f"{response['Link']}, {link}"
        response["Deprecation"] = deprecation
        response["Link"] = link
        if sunset_header:
            response["Sunset"] = sunset_header
        return response

    alias.deprecated_successor = successor  # type: ignore[attr-defined]  # for tests and tools
    if hasattr(view, "cls"):  # DRF's @api_view
        alias.cls = _deprecated_api_view(view.cls, operation_id)  # type: ignore[attr-defined]
    return alias


def _deprecated_api_view(cls: type, operation_id: str | None) -> type:
    """A subclass of an ``@api_view`` class, for the schema only, whose operations are marked
    deprecated. ``extend_schema`` annotates the handler functions, and ``@api_view`` shares one
    handler between the class's methods: the subclass gets copies of its own, or annotating it
    would mark the new path deprecated too."""

    def copy(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            return handler(self, *args, **kwargs)

        return method

    names: list[str] = cls.http_method_names  # type: ignore[attr-defined]
    methods = {name: copy(getattr(cls, name)) for name in names if hasattr(cls, name)}
    subclass = type(cls.__name__, (cls,), methods)

    def holder() -> None:  # what extend_schema takes for an @api_view: a callable with .cls
        pass

    holder.cls = subclass  # type: ignore[attr-defined]
    extend_schema(deprecated=True, operation_id=operation_id)(holder)
    return subclass

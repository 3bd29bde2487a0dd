"""Limits every request meets before a view (or the CSRF check) reads its body.

- A body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (an upload: ``FILE_UPLOAD_MAX_MEMORY_SIZE``)
  is answered 413 from its ``Content-Length``, before anything is read or written to disk.
- A JSON body nested deeper than ``JSON_MAX_DEPTH`` is answered 400, before the view (and the
  CSRF check) runs. Python's JSON parser recurses once per level, so ~1,000 levels raised
  ``RecursionError`` wherever a body was parsed (DRF parses it during the CSRF check). The
  depth is measured without recursion. A view marked :func:`parses_json_itself` (the sample
  ingestion endpoints: a 5,000-sample body costs as much to measure as to parse) skips it.

``SafeJSONParser`` applies the same depth rule inside DRF, for requests that reach a parser
without this middleware (tests calling views directly, future mount points).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.problems import problem_json_response

MIB = 1024 * 1024


def json_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests lists and objects, counting up to ``limit + 1`` at most
    (an explicit stack, no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


# Every byte but quotes and brackets.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_INNERMOST = re.compile(rb"\[\]|\{\}")


def _bracket_depth(body: bytes, limit: int) -> int | None:
    """The nesting depth of ``body``'s brackets outside strings, if they balance within
    ``limit`` levels; None otherwise. For any body ``json.loads`` accepts it is the depth of
    the parsed value: the brackets outside strings are exactly its lists and objects.

    Escaped backslashes, then escaped quotes are dropped (escapes pair up from the left), so a
    quote is a string's start or end; then everything but quotes and brackets, then what lies
    between a string's quotes; each round removes the innermost pairs. All in C, a few passes
    over the bytes: a 5,000-sample batch costs about one parse, where parsing and walking it
    cost several."""
    text = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    pieces = text.split(b'"')
    if len(pieces) % 2 == 0:
        return None  # a string without its end: not JSON
    brackets = b"".join(pieces[::2])
    depth = 0
    while brackets:
        if depth == limit:
            return None
        inner = _INNERMOST.sub(b"", brackets)
        if len(inner) == len(brackets):
            return None  # unbalanced, or a quote left over: not JSON
        brackets, depth = inner, depth + 1
    return depth


def json_depth_problem(body: bytes, limit: int) -> str:
    """Why ``body`` is nested too deeply to be parsed, or "" (also for invalid JSON: the
    parser that reads it later says what is wrong)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return ""  # cannot nest deeper than its number of brackets
    if _bracket_depth(body, limit) is not None:
        return ""  # the common case, answered without parsing the body
    too_deep = f"The JSON body is nested more than {limit} levels deep."
    try:
        value = json.loads(body)
    except RecursionError:
        return too_deep
    except ValueError:
        return ""
    return too_deep if json_depth(value, limit) > limit else ""


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _refuse(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if request.path.startswith("/api/") or _is_json(request.content_type or ""):
        return problem_json_response(status, message)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def parses_json_itself(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``view`` as reading its JSON body with its own guard: it parses the body once, answers
    ``RecursionError`` (and invalid JSON) with a 400, and nothing before it parses the body.
    :class:`RequestLimitsMiddleware` then leaves the depth check to it."""
    view.parses_json_itself = True  # type: ignore[attr-defined]
    return view


class RequestLimitsMiddleware:
    """Refuse oversized bodies (413) and too deeply nested JSON (400) before any view runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        content_type = request.content_type or ""
        if content_type == "multipart/form-data":
            limit = settings.FILE_UPLOAD_MAX_MEMORY_SIZE
            what = "The upload"
        else:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            what = "The request body"
        if length > limit:
            return _refuse(request, 413, f"{what} is larger than {_size(limit)}.")
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        """The depth check, before the view and before the CSRF check (the next middlewares'
        ``process_view``), where the view is known."""
        if getattr(view, "parses_json_itself", False):
            return None
        if _is_json(request.content_type or "") and request.META.get("CONTENT_LENGTH"):
            problem = json_depth_problem(request.body, settings.JSON_MAX_DEPTH)
            if problem:
                return _refuse(request, 400, problem)
        return None


def _size(limit: int) -> str:
    return f"{limit / MIB:g} MiB" if limit >= MIB else f"{limit:,} bytes"


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, refusing too deeply nested bodies with a 400 instead of recursing."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
        else:
            if json_depth(data, settings.JSON_MAX_DEPTH) <= settings.JSON_MAX_DEPTH:
                return data
        raise ParseError(
            f"The JSON body is nested more than {settings.JSON_MAX_DEPTH} levels deep."
        )

"""Querysets whose SQL Django builds once per process and runs with each call's values.

Building and compiling a queryset costs CPU in Python every time, and for a small query of a
fixed shape it costs more than PostgreSQL takes to run it: one of the plan page's row lists
(ordered by group, counted with a window, its neighbours joined) took about 1 ms to build and
compile against 0.3 ms to run, and the plan's own query (a dozen EXISTS and ARRAY subqueries for
plan health and the page's panels) about 7 ms. ``Precompiled`` builds the queryset once, with
placeholder values standing for the call's values, keeps the SQL and what Django's compiler
learnt about its columns, and runs that SQL with the call's values through Django's own
``ModelIterable``: the rows come back as the queryset would give them (model instances, their
``select_related`` neighbours, their annotations, the same converters).

The SQL runs as a prepared statement (PostgreSQL plans it once per connection: planning the
plan page's query took 4 of its 4.5 ms), and independent queries can be sent together in one
round trip with :func:`run_together` (psycopg's pipeline mode). Both go through Django's cursor
wrappers, so queries are logged and counted as any other.

The builder must be *pure*: the queryset may depend only on its arguments, never on the clock,
settings or the request (a ``timezone.now()`` inside would be frozen at the first call). The
first call builds the queryset twice with different placeholders and refuses a builder whose
SQL or other values differ between the two (the clock, a random value), and a placeholder the
SQL does not carry as a parameter (Django writes a ``LIMIT`` into the SQL text: make it part of
the key, as ``_load_first_rows`` does).

``tests/pilotplan/test_precompiled.py`` compares every use with its plain queryset.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

from django.db import connections, models
from django.db.backends.postgresql.base import CursorDebugWrapper, ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from django.db.models import Lookup
from django.db.models.sql.compiler import SQLCompiler

M = TypeVar("M", bound=models.Model)

# Placeholder values: integers no id or count of ours can be, distinct per builder argument.
_PLACEHOLDERS = itertools.count(-(2**62), 7919)


class PrecompileError(ValueError):
    """The builder cannot be precompiled (not pure, or a value not passed as a parameter)."""


class _Compiled:
    def __init__(
        self, queryset: models.QuerySet[Any], slots: dict[int, str], params: tuple[Any, ...]
    ) -> None:
        self.queryset = queryset
        self.compiler = queryset.query.get_compiler(using=queryset.db)
        self.sql, _params = self.compiler.as_sql()
        self.params = params
        self.slots = slots


class Precompiled(Generic[M]):
    """``Precompiled(build)``: ``build(**values)`` returns the queryset; ``.run(**values)`` its
    rows as a list, the SQL compiled on the first call (per process, per ``key``)."""

    def __init__(self, build: Callable[..., models.QuerySet[M]]) -> None:
        self._build = build
        self._compiled: dict[Any, _Compiled] = {}
        self._lock = threading.Lock()

    def run(self, *, key: Any = None, **values: Any) -> list[M]:
        """The rows of ``build(**values)``. ``key`` names a shape of the query: builders whose
        SQL differs by something other than a parameter (a LIMIT, a list of columns) get a
        key per shape, passed to ``build`` as ``key``."""
        return list(_queryset(self.bind(key=key, **values)))

    def bind(self, *, key: Any = None, **values: Any) -> Bound:
        """The query with ``values``, not run yet: for :func:`run_together`."""
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or self._compile(key, sorted(values))
                self._compiled[key] = compiled
        params = list(compiled.params)
        for index, name in compiled.slots.items():
            params[index] = values[name]
        return Bound(compiled, tuple(params))

    def _compile(self, key: Any, names: list[str]) -> _Compiled:
        first = {name: next(_PLACEHOLDERS) for name in names}
        second = {name: next(_PLACEHOLDERS) for name in names}
        kwargs = {"key": key} if key is not None else {}
        compiled = [self._build(**kwargs, **first), self._build(**kwargs, **second)]
        statements = [q.query.get_compiler(using=q.db).as_sql() for q in compiled]
        (sql, params), (other_sql, other_params) = statements
        slots: dict[int, str] = {}
        for index, (value, other) in enumerate(zip(params, other_params, strict=True)):
            names_here = [
                n for n in names if _stands_for(first[n], value) and _stands_for(second[n], other)
            ]
            if names_here:
                slots[index] = names_here[0]
            elif value != other:
                raise PrecompileError(f"The query's parameter {index} changes between builds.")
        if sql != other_sql:
            raise PrecompileError("The query's SQL changes between builds.")
        if missing := set(names) - set(slots.values()):
            raise PrecompileError(f"Not a parameter of the query's SQL: {sorted(missing)}.")
        return _Compiled(compiled[0], slots, tuple(params))


def _stands_for(placeholder: int, value: Any) -> bool:
    """Whether a parameter of the built SQL is ``placeholder``: as it is, or as a text field
    prepares it (``str``), for a builder argument compared with a text column."""
    return value == placeholder or value == str(placeholder)


class Bound(NamedTuple):
    """A precompiled query and the values of one call."""

    compiled: _Compiled
    params: tuple[Any, ...]


def run_together(*queries: Bound) -> list[list[Any]]:
    """The rows of each query, the queries sent to PostgreSQL together (psycopg's pipeline
    mode: one round trip instead of one per query) and read as ``Precompiled.run`` reads
    them. For a page's independent reads, such as the plan page's eleven row lists."""
    if not queries:
        return []
    connection = connections[queries[0].compiled.queryset.db]
    preparing = _Preparing(connection)
    # The connection checked and opened before the pipeline, not inside it.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    cursors = []
    with connection.wrap_database_errors, connection.connection.pipeline():
        for query in queries:
            cursor = preparing.cursor()
            cursor.execute(query.compiled.sql, query.params)
            cursors.append(cursor)
    with connection.wrap_database_errors:
        fetched = [cursor.fetchall() for cursor in cursors]
    for cursor in cursors:
        cursor.close()
    return [list(_queryset(query, rows)) for query, rows in zip(queries, fetched, strict=True)]


def _queryset(query: Bound, rows: list[tuple[Any, ...]] | None = None) -> models.QuerySet[Any]:
    """A queryset of the query's model whose compiler answers the stored SQL with the call's
    parameters (or with ``rows``, already fetched): Django's ``ModelIterable`` reads the
    columns as the original would."""
    compiled, params = query
    prototype = compiled.compiler
    compiler: SQLCompiler = copy.copy(prototype)
    # This thread's connection (the prototype's may belong to another thread), answering
    # with a cursor that prepares the statement.
    compiler.connection = _Preparing(connections[compiled.queryset.db])
    compiler.as_sql = lambda *args, **kwargs: (compiled.sql, params)  # type: ignore[method-assign]
    if rows is not None:
        if compiler.has_extra_select:  # as execute_sql trims them: columns only ordered by
            rows = [row[: compiler.col_count] for row in rows]
        compiler.execute_sql = lambda *args, **kwargs: [rows]  # type: ignore[method-assign]
    query = copy.copy(compiled.queryset.query)
    query.get_compiler = lambda *args, **kwargs: compiler  # type: ignore[method-assign]
    original = compiled.queryset
    queryset = models.QuerySet(model=original.model, query=query, using=original.db)
    # Rows as the original gives them: instances, or values() / values_list() tuples.
    queryset._iterable_class = original._iterable_class
    queryset._fields = original._fields
    return queryset


class _PreparedCursor(ServerBindingCursor):
    """A server-side binding cursor that prepares what it runs (psycopg keeps the statement
    per connection and reuses it by its text and parameter types)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().execute(query, params, prepare=True)


class _LoggedPreparedCursor(CursorDebugWrapper):
    """Logs a prepared statement with its values written in, as Django logs a statement bound
    on the server (psycopg keeps no text of a prepared execution for Django to log)."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)


class _BareCursor(CursorWrapper):
    """Runs a statement without the connection's execute wrappers (see ``prepared_cursor``)."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        return self._execute(sql, params)


class _LoggedBareCursor(CursorDebugWrapper):
    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return self._execute(sql, params)


class _Preparing:
    """A database connection whose ``cursor()`` is a ``_PreparedCursor``, wrapped as Django
    wraps every cursor (query logging, ``execute_wrapper`` hooks, error translation), or with
    ``hooks=False`` without the ``execute_wrapper`` hooks."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def cursor(self, *, hooks: bool = True) -> Any:
        connection = self._connection
        connection.close_if_health_check_failed()
        connection.ensure_connection()
        connection.validate_thread_sharing()
        with connection.wrap_database_errors:
            cursor = _PreparedCursor(connection.connection)
        if connection.queries_logged:
            return (_LoggedPreparedCursor if hooks else _LoggedBareCursor)(cursor, connection)
        return connection.make_cursor(cursor) if hooks else _BareCursor(cursor, connection)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def prepared_cursor(using: str = "default") -> Any:
    """A cursor of Django's connection that binds values on the server and prepares what it
    runs: for a statement of a fixed text run on every request with large parameters, such as
    ingestion's rollup upsert with its columns as binary arrays (``core.arrays``). Logged and
    counted as any other cursor, and its errors are Django's.

    It runs its statements without the connection's ``execute_wrapper`` hooks: django-pghistory
    puts the audit context in front of every statement that is not a SELECT as a second
    statement, and a statement bound on the server must be one statement. So only statements
    that write no audited table (``pghistory`` events) belong here."""
    return _Preparing(connections[using]).cursor(hooks=False)


class AnyOf(Lookup):
    """``lhs = ANY(%s)`` with the values as one array parameter: the same SQL for any number of
    values, so a list of ids can be a precompiled query's value (``pk__in`` writes one ``%s``
    per value). Used as an expression: ``.filter(AnyOf(F("pk"), ids))``."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]

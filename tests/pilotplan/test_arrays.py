"""``core.arrays``: NumPy columns sent as binary array parameters reach PostgreSQL value for
value, through a cursor that binds on the server and through Django's default one, and are
logged as text."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.arrays import Float8Array, Int4Array, Int8Array
from core.precompiled import prepared_cursor

pytestmark = pytest.mark.django_db

INT8 = np.array([0, 1, -1, 2**62, -(2**63), 2**63 - 1, 42], dtype=np.int64)
INT4 = np.array([0, 1, -1, 2**31 - 1, -(2**31), 7], dtype=np.int64)
FLOAT8 = np.array([0.0, -0.0, 1.5, -2.25, 1e-300, 1e12, 0.1 + 0.2, 1 / 3, 5e-324])


def _round_trip(cursor) -> list[str]:  # type: ignore[no-untyped-def]
    cursor.execute(
        "SELECT array_to_json(%s::bigint[])::text, array_to_json(%s::integer[])::text, "
        "(SELECT string_agg(encode(float8send(v), 'hex'), ',' ORDER BY i) "
        " FROM unnest(%s::float8[]) WITH ORDINALITY AS f(v, i)), cardinality(%s::float8[])",
        [Int8Array(INT8), Int4Array(INT4), Float8Array(FLOAT8), Float8Array(np.array([]))],
    )
    return list(cursor.fetchone())


def test_columns_reach_the_database_value_for_value_in_both_kinds_of_cursor() -> None:
    with prepared_cursor() as cursor:
        bound_on_the_server = _round_trip(cursor)
    with connection.cursor() as cursor:
        bound_on_the_client = _round_trip(cursor)
    assert bound_on_the_server == bound_on_the_client
    ints8, ints4, floats, empty = bound_on_the_server
    assert np.array(eval(ints8), dtype=np.int64).tolist() == INT8.tolist()  # noqa: S307
    assert eval(ints4) == INT4.tolist()  # noqa: S307
    # The same doubles, bit for bit (-0.0 and the smallest subnormal too).
    assert floats.split(",") == [struct.pack(">d", v).hex() for v in FLOAT8.tolist()]
    assert empty == 0


def test_a_bound_array_is_logged_with_its_values_written_in() -> None:
    with CaptureQueriesContext(connection) as queries, prepared_cursor() as cursor:
        cursor.execute("SELECT cardinality(%s::integer[])", [Int4Array(np.array([3, 1, 2]))])
        assert cursor.fetchone() == (3,)
    assert "'{3,1,2}'::int4[]" in queries[0]["sql"].replace(" ", "")


def test_a_value_beyond_an_integer_is_refused_not_wrapped() -> None:
    with pytest.raises(ValueError, match="integer"):
        Int4Array(np.array([2**31]))
    with pytest.raises(ValueError, match="one-dimensional"):
        Float8Array(np.zeros((2, 2)))

"""NumPy columns as query parameters, sent in PostgreSQL's binary array format.

A statement that takes a few thousand numbers (ingestion's rollup upsert: about 6,600 per
5,000-sample batch) spends more time turning them into text, and PostgreSQL more time reading
that text back, than running. Wrapped in :class:`Int8Array`, :class:`Int4Array` or
:class:`Float8Array`, a one-dimensional NumPy array goes to the server as the bytes of
``array_send``, built by NumPy in one pass: a header, then per element its length and its
big-endian value. Such parameters need a cursor that binds values on the server
(``core.precompiled.prepared_cursor``); a cursor that binds on the client (Django's default),
and Django's query log, get the array's text (``{1,2,3}``) from the text dumper instead.

:func:`register` adds the dumpers to psycopg's global adapters, which every connection copies
when it opens; ``metrics.apps`` calls it when Django starts, before any connection exists.
"""

from __future__ import annotations

import struct
from typing import ClassVar

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format


class _Array:
    """A one-dimensional array parameter; the subclasses name its PostgreSQL type."""

    __slots__ = ("values",)
    element_oid: ClassVar[int]
    array_oid: ClassVar[int]
    big_endian: ClassVar[str]

    def __init__(self, values: np.ndarray) -> None:
        if values.ndim != 1:
            raise ValueError("Only one-dimensional arrays are sent as array parameters.")
        self.values = values

    def binary(self) -> bytes:
        """``array_send``'s bytes: dimensions, no NULLs, the element type, the length and lower
        bound 1, then each element as its byte length and its big-endian value."""
        n = len(self.values)
        if not n:
            return struct.pack(">iii", 0, 0, self.element_oid)
        size = np.dtype(self.big_endian).itemsize
        table = np.empty(n, dtype=[("length", ">i4"), ("value", self.big_endian)])
        table["length"] = size
        table["value"] = self.values
        return struct.pack(">iiiii", 1, 0, self.element_oid, n, 1) + table.tobytes()

    def text(self) -> bytes:
        """The array's text form: ``str`` of a float is its shortest exact form, so the server
        reads back the same double."""
        return ("{" + ",".join(map(str, self.values.tolist())) + "}").encode()


class Int8Array(_Array):
    """``bigint[]``."""

    __slots__ = ()
    element_oid, array_oid, big_endian = 20, 1016, ">i8"


class Int4Array(_Array):
    """``integer[]``: the values must fit in 32 bits (NumPy would wrap them silently)."""

    __slots__ = ()
    element_oid, array_oid, big_endian = 23, 1007, ">i4"

    def __init__(self, values: np.ndarray) -> None:
        if len(values) and (values.min() < -(2**31) or values.max() >= 2**31):
            raise ValueError("A value does not fit in an integer[] element.")
        super().__init__(values)


class Float8Array(_Array):
    """``double precision[]``."""

    __slots__ = ()
    element_oid, array_oid, big_endian = 701, 1022, ">f8"


def _dumpers(kind: type[_Array]) -> tuple[type[Dumper], type[Dumper]]:
    class BinaryDumper(Dumper):
        format = Format.BINARY
        oid = kind.array_oid

        def dump(self, obj: _Array) -> bytes:
            return obj.binary()

    class TextDumper(Dumper):
        oid = kind.array_oid

        def dump(self, obj: _Array) -> bytes:
            return obj.text()

    return BinaryDumper, TextDumper


def register(adapters: psycopg.adapt.AdaptersMap = psycopg.adapters) -> None:
    """Teach ``adapters`` (by default psycopg's global ones) the array parameter types: the
    binary dumper for ``%s`` placeholders bound on the server, the text one for literals."""
    for kind in (Int8Array, Int4Array, Float8Array):
        binary, text = _dumpers(kind)
        # The one registered last answers a ``%s`` placeholder: binary.
        adapters.register_dumper(kind, text)
        adapters.register_dumper(kind, binary)

"""CSV files people export to and import from a spreadsheet (the backlog, a cohort's participants).

- ``cell`` / ``uncell``: a cell a spreadsheet would run as a formula (starting with ``= + - @``,
  a tab or a carriage return) is written with a leading apostrophe, and read back without it.
- ``csv_rows``: the header checked against the known columns (unknown, missing or repeated
  columns are all listed at once), blank lines skipped, a row bound, and each row as
  ``(line number, {column: text})`` for the caller's own checks, which name the line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from django.core.exceptions import ValidationError

FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA) else text


def uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:2] in FORMULA and text[1:] else text


def csv_rows(
    text: str,
    *,
    columns: Sequence[str],
    required: Sequence[str] = (),
    max_rows: int,
    noun: str,
) -> list[tuple[int, dict[str, str]]]:
    """The file's rows keyed by its (lower-cased) header; ``ValidationError`` on ``file`` for a
    bad header, more than ``max_rows`` rows (of ``noun``, e.g. "items") or a row longer than the
    header."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None or not any(c.strip() for c in header):
        raise ValidationError({"file": ["The file is empty: line 1 must be the header."]})
    names = [c.strip().lower() for c in header]
    problems = [
        f"Unknown column “{c}”: use {', '.join(columns)}." for c in names if c not in columns
    ]
    problems += [f"The header has no “{c}” column." for c in required if c not in names]
    problems += [
        f"The column “{c}” appears twice." for c in sorted(set(names)) if names.count(c) > 1
    ]
    if problems:
        raise ValidationError({"file": problems})
    rows: list[tuple[int, dict[str, str]]] = []
    for record in reader:
        if not any(c.strip() for c in record):
            continue
        if len(rows) == max_rows:
            raise ValidationError({"file": [f"The file has more than {max_rows:,} {noun}."]})
        if len(record) > len(names):
            raise ValidationError(
                {"file": [f"Line {reader.line_num}: more cells than the header has columns."]}
            )
        rows.append(
            (reader.line_num, {c: uncell(v.strip()) for c, v in zip(names, record, strict=False)})
        )
    return rows

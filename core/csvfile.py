"""CSV files people export to and import from a spreadsheet (the backlog, a cohort's participants).

- ``cell`` / ``uncell``: a cell a spreadsheet would run as a formula (starting with ``= + - @``,
  a tab or a carriage return) is written with a leading apostrophe, and read back without it.
- ``csv_rows``: the header checked against the known columns (unknown, missing or repeated
  columns are all listed at once), blank lines skipped, a row bound, and each row as
  ``(line number, {column: text})`` for the caller's own checks, which name the line.
- ``upload_text`` / ``csv_body_text``: the text of an uploaded file (HTML form) or of an API
  body (``text/csv`` or a multipart ``file``), with one error on ``file`` when it is not UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

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


def upload_text(upload: Any) -> str:
    """An uploaded file's text (UTF-8, a leading byte-order mark dropped); ``ValidationError``
    on ``file`` when it is not UTF-8."""
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"file": ["The file is not UTF-8 text."]}) from None


def csv_body_text(data: str | Mapping[str, Any]) -> str:
    """The CSV an API request sent: a ``text/csv`` body (already text) or a multipart ``file``."""
    if isinstance(data, str):
        return data
    if "file" in data:
        return upload_text(data["file"])
    raise ValidationError({"file": ["Send CSV as text/csv or a file upload."]})

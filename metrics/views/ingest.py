"""Uploading samples as a CSV file in the browser: the same service and rules as the API.

The file has a header line naming its columns (``metric,observed_at,value`` and optionally
``source`` and ``id``, in any order), then one sample per line, UTF-8, at most 10,000 samples.
A bad file is refused whole, every problem listed with its line number in the file (the header
is line 1), and nothing is stored. Works without JavaScript (POST, then redirect) and with HTMX
(the upload card is swapped in place).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm
from accounts.ui import plural
from core.http import UNPROCESSABLE
from metrics.ingest import INGESTING, MAX_BATCH, MAX_ERRORS, IngestRejected, samples_ingest
from pilots.access import plan_for_user
from pilots.models import PilotPlan

COLUMNS = ("metric", "observed_at", "value", "source", "id")
REQUIRED_COLUMNS = ("metric", "observed_at", "value")
# Samples uploaded without a source column (or with an empty cell) are stored as source "csv".
UPLOAD_SOURCE = "csv"
MAX_FILE_BYTES = 5 * 1024 * 1024
REFUSED = "The file was not stored: nothing was saved. Fix these problems and upload it again."


class SampleUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Header line metric,observed_at,value[,source][,id]; UTF-8; up to 10,000 "
        "samples.",
    )

    def clean_file(self) -> UploadedFile:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB."
            )
        return upload


@dataclass(frozen=True)
class FileError:
    line: int | None
    field: str
    message: str


class CsvRejected(Exception):
    def __init__(self, errors: list[FileError], error_count: int | None = None):
        super().__init__(errors[0].message if errors else "")
        self.errors = errors[:MAX_ERRORS]
        self.error_count = len(errors) if error_count is None else error_count


def _read_csv(upload: UploadedFile) -> tuple[list[dict[str, str]], list[int]]:
    """The samples of the file as the service's row mappings, and each one's line number."""
    raw = upload.read()
    try:
        text = raw.decode("utf-8-sig")  # a byte order mark (Excel's "CSV UTF-8") is fine
    except UnicodeDecodeError as exc:
        raise CsvRejected(
            [FileError(None, "file", f"The file is not UTF-8 text (byte {exc.start + 1}).")]
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise CsvRejected(
                [FileError(1, "file", "The file is empty: line 1 must be the header, e.g. "
                           "metric,observed_at,value,source,id.")]
            )  # fmt: skip
        columns = [cell.strip().lower() for cell in header]
        problems = [
            FileError(1, name, f"Unknown column “{name}”: use {', '.join(COLUMNS)}.")
            for name in columns
            if name not in COLUMNS
        ]
        problems += [
            FileError(1, name, f"The header has no “{name}” column.")
            for name in REQUIRED_COLUMNS
            if name not in columns
        ]
        problems += [
            FileError(1, name, f"The column “{name}” appears twice.")
            for name in sorted({c for c in columns if columns.count(c) > 1})
        ]
        if problems:
            raise CsvRejected(problems)

        rows: list[dict[str, str]] = []
        lines: list[int] = []
        errors: list[FileError] = []
        line = reader.line_num
        for record in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines, e.g. at the end of the file
            if len(rows) == MAX_BATCH:
                raise CsvRejected(
                    [FileError(start, "file", f"The file has more than {MAX_BATCH:,} samples; "
                               "split it into several uploads.")]
                )  # fmt: skip
            if len(record) != len(columns):
                errors.append(
                    FileError(start, "", f"The line has {len(record)} cells; the header has "
                              f"{len(columns)}.")
                )  # fmt: skip
                continue
            row = {name: cell.strip() for name, cell in zip(columns, record, strict=True)}
            row["source"] = row.get("source") or UPLOAD_SOURCE
            rows.append(row)
            lines.append(start)
    except csv.Error as exc:
        raise CsvRejected(
            [FileError(reader.line_num, "file", f"Not a valid CSV file: {exc}")]
        ) from None
    if errors:
        raise CsvRejected(errors)
    if not rows:
        raise CsvRejected([FileError(None, "file", "The file has a header but no samples.")])
    return rows, lines


def _context(
    plan: PilotPlan,
    *,
    form: SampleUploadForm | None = None,
    rejected: CsvRejected | None = None,
    detail: str = "",
    message: str = "",
) -> dict[str, Any]:
    return {
        "plan": plan,
        "form": form or SampleUploadForm(),
        "accepting": plan.status in INGESTING,
        "errors": rejected.errors if rejected else [],
        "error_count": rejected.error_count if rejected else 0,
        "detail": detail,
        "upload_message": message,
        "columns": COLUMNS,
        "max_batch": MAX_BATCH,
    }


def _render(
    request: AuthedHtmxRequest, plan: PilotPlan, *, status: int = 200, **kw: Any
) -> TemplateResponse:
    template = "metrics/ingest_upload.html#upload" if request.htmx else "metrics/ingest_upload.html"
    return TemplateResponse(request, template, _context(plan, **kw), status=status)


@login_required
@require_http_methods(["GET", "POST"])
def sample_upload(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """GET: the upload form. POST: store the file's samples, or list every problem (422)."""
    plan = plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.SAMPLES_PUSH)
    if request.method == "GET":
        return _render(request, plan)
    form = SampleUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render(request, plan, status=UNPROCESSABLE, form=form)
    try:
        rows, lines = _read_csv(form.cleaned_data["file"])
        result = samples_ingest(team=plan.team, plan=plan, rows=rows, user=request.user)
    except CsvRejected as exc:
        return _render(request, plan, status=UNPROCESSABLE, form=form, rejected=exc, detail=REFUSED)
    except IngestRejected as exc:
        errors = [
            FileError(None if e["row"] is None else lines[e["row"]], e["field"], e["message"])
            for e in exc.errors
        ]
        # A problem of the whole upload (the plan takes no samples) is said once, above the table.
        by_line = [e for e in errors if e.line is not None]
        return _render(
            request,
            plan,
            status=UNPROCESSABLE,
            form=form,
            rejected=CsvRejected(by_line, exc.error_count if by_line else 0),
            detail=REFUSED if by_line else exc.message,
        )
    message = (
        f"Stored {plural(result.stored, 'new sample')} ({result.duplicates:,} already stored)."
    )
    if not request.htmx:
        messages.success(request, message)
        return redirect("metrics:sample_upload", plan_id=plan.pk)
    response = _render(request, plan, message=message)
    return trigger_client_event(response, "samplesChanged", {"plan": plan.pk})


urlpatterns = [
    path("plans/<int:plan_id>/samples/upload", sample_upload, name="sample_upload"),
]

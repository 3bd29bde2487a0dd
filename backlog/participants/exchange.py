"""A plan's participants as CSV, out and in (the style of ``backlog.exchange``).

Export writes one row per participant with their segments, status and consent record. Import
reads the same columns (none is required; a row may be anonymous) and adds the participants it
does not know yet; a row whose e-mail (any case) or external reference the plan already has is
left as it is, so importing a file twice adds nothing the second time. The whole file is checked
first: one bad row refuses the file, naming every bad line. An opt-in-only cohort refuses every
row without consent. Cells a spreadsheet would run as a formula are written with a leading
apostrophe and read back without it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User
from accounts.permissions import Perm
from backlog.exchange import MAX_ERRORS
from backlog.models import DIMENSIONS, Participant
from backlog.participants.fit import cohort_fit_refresh, participants_lock
from backlog.participants.services import (
    CONSENT_NEEDED,
    new_token,
    plan_segment_values,
    segments_clean,
)
from core.csvfile import cell, csv_rows
from pilots.access import plan_for_user
from pilots.editable import plan_require_editable

COLUMNS = (
    "name", "email", "external_ref", *DIMENSIONS, "status", "withdrawn_at",
    "consent", "consent_method", "consent_given_at", "consent_text",
)  # fmt: skip
MAX_ROWS = 10_000
_YES, _NO = {"yes", "y", "true", "1"}, {"no", "n", "false", "0", ""}
_LIMITS = {"name": 200, "email": 254, "external_ref": 100, "consent_text": 4000}


@dataclass(frozen=True)
class ImportResult:
    created: int
    unchanged: int


def _time(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else ""


def participants_csv(participants: QuerySet[Participant]) -> str:
    """The participants (already scoped and filtered by the caller) as CSV, oldest first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for p in participants.order_by("created_at", "pk"):
        writer.writerow(
            [
                cell(p.name), cell(p.email), cell(p.external_ref),
                *(cell(getattr(p, d)) for d in DIMENSIONS),
                p.status, _time(p.withdrawn_at), "yes" if p.has_consent else "no",
                p.consent_method, _time(p.consent_given_at), cell(p.consent_text),
            ]
        )  # fmt: skip
    return out.getvalue()


def _when(text: str, column: str) -> dt.datetime | None:
    if not text:
        return None
    value = parse_datetime(text)
    if value is None or timezone.is_naive(value):
        raise ValueError(f"{column}: “{text}” is not a date and time with its offset (ISO 8601).")
    if value > timezone.now() + dt.timedelta(minutes=5):
        raise ValueError(f"{column}: “{text}” is in the future.")
    return value


def _row(cells: dict[str, str], allowed: dict[str, list[str]], opt_in: bool) -> dict[str, object]:
    """One row's values, or ``ValueError`` / ``ValidationError`` naming the column."""
    for column, limit in _LIMITS.items():
        if len(cells.get(column, "")) > limit:
            raise ValueError(f"{column}: at most {limit} characters.")
    if cells.get("email"):
        try:
            validate_email(cells["email"])
        except ValidationError:
            raise ValueError(f"email: “{cells['email']}” is not an e-mail address.") from None
    consent_word = cells.get("consent", "").lower()
    if consent_word not in _YES | _NO:
        raise ValueError(f"consent: “{cells['consent']}” is not yes or no.")
    consent = consent_word in _YES
    if opt_in and not consent:
        raise ValueError(f"consent: {CONSENT_NEEDED}")
    if consent and not cells.get("consent_text"):
        raise ValueError("consent_text: say which text the person agreed to.")
    method = cells.get("consent_method") or Participant.ConsentMethod.IMPORT
    if consent and method not in Participant.ConsentMethod.values:
        allowed_methods = ", ".join(Participant.ConsentMethod.values)
        raise ValueError(f"consent_method: “{method}” is not one of {allowed_methods}.")
    status = cells.get("status") or Participant.Status.ACTIVE
    if status not in Participant.Status.values:
        raise ValueError(f"status: “{status}” is not active or withdrawn.")
    withdrawn_at = _when(cells.get("withdrawn_at", ""), "withdrawn_at")
    if status == Participant.Status.WITHDRAWN and withdrawn_at is None:
        withdrawn_at = timezone.now()
    values: dict[str, object] = {
        "name": cells.get("name", ""),
        "email": cells.get("email", ""),
        "external_ref": cells.get("external_ref", ""),
        "status": status,
        "withdrawn_at": withdrawn_at if status == Participant.Status.WITHDRAWN else None,
        "consent_method": method if consent else "",
        "consent_given_at": (
            _when(cells.get("consent_given_at", ""), "consent_given_at") or timezone.now()
        )
        if consent
        else None,
        "consent_text": cells.get("consent_text", "") if consent else "",
    }
    values.update(segments_clean(allowed, {d: cells.get(d, "") for d in DIMENSIONS}))
    return values


@transaction.atomic
def participants_csv_import(*, plan_id: int, user: User, text: str) -> ImportResult:
    """Add the file's participants the plan does not have yet, all or nothing."""
    plan = plan_for_user(user=user, plan_id=plan_id, perm=Perm.PARTICIPANTS_MANAGE)
    plan_require_editable(plan)
    rows = csv_rows(text, columns=COLUMNS, max_rows=MAX_ROWS, noun="participants")
    participants_lock(plan.pk)
    allowed = plan_segment_values(plan.pk)
    known = Participant.objects.filter(plan=plan).values_list("email", "external_ref")
    emails = {e.casefold() for e, _r in known if e}
    refs = {r for _e, r in known if r}
    in_file: dict[str, set[str]] = {"email": set(), "ref": set()}
    errors: list[str] = []
    to_create: list[Participant] = []
    unchanged = 0
    for line, cells in rows:
        try:
            values = _row(cells, allowed, plan.cohort.opt_in_required)
        except ValueError as error:
            errors.append(f"Line {line}, {error}")
            continue
        except ValidationError as error:
            errors += [
                f"Line {line}, {field}: {message}"
                for field, messages in error.message_dict.items()
                for message in messages
            ]
            continue
        email, ref = str(values["email"]).casefold(), str(values["external_ref"])
        if (email and email in in_file["email"]) or (ref and ref in in_file["ref"]):
            column = "email" if email in in_file["email"] else "external_ref"
            errors.append(f"Line {line}, {column}: appears twice in the file.")
            continue
        in_file["email"].add(email)
        in_file["ref"].add(ref)
        if (email and email in emails) or (ref and ref in refs):
            unchanged += 1  # the plan has this person already
            continue
        to_create.append(
            Participant(
                plan=plan,
                created_by=user,
                withdraw_token=new_token()
                if values["status"] == Participant.Status.ACTIVE
                else None,
                **values,
            )
        )
    if errors:
        shown = errors[:MAX_ERRORS]
        if len(errors) > MAX_ERRORS:
            shown.append(f"… and {len(errors) - MAX_ERRORS} more.")
        raise ValidationError({"file": shown})
    Participant.objects.bulk_create(to_create)
    cohort_fit_refresh(plan_id=plan.pk)
    return ImportResult(len(to_create), unchanged)

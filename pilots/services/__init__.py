"""Writes about plans. Import from here: ``from pilots import services``."""

from pilots.services.plans import plan_clone, plan_create, plan_create_from_template
from pilots.services.rows import (
    ROW_KINDS,
    RowKind,
    row_add,
    row_kind,
    row_move,
    row_remove,
    row_update,
)
from pilots.services.sections import (
    SECTION_FIELDS,
    SectionConflict,
    environment_set_compliance,
    plan_end_date,
    section_claim,
    section_update,
    section_versions,
)

__all__ = [
    "ROW_KINDS",
    "SECTION_FIELDS",
    "RowKind",
    "SectionConflict",
    "environment_set_compliance",
    "plan_clone",
    "plan_create",
    "plan_create_from_template",
    "plan_end_date",
    "row_add",
    "row_kind",
    "row_move",
    "row_remove",
    "row_update",
    "section_claim",
    "section_update",
    "section_versions",
]

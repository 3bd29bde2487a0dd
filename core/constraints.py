"""Database rules reported on their field, in the user's words.

Every ``CheckConstraint`` is listed once, next to the model that declares it, in the model's
``CONSTRAINT_FIELDS``: ``{constraint name: (field, message)}`` (an empty message keeps the
constraint's own ``violation_error_message``). ``FieldConstraints.validate_constraints`` — which
``full_clean``, model forms and every service call — then puts a broken rule on that field
instead of under "non-field errors" with the constraint's name ("Constraint “…” is violated.").
``tests/pilots/test_edge_validation.py`` walks every constraint of every model and checks that
it is listed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import ClassVar

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models, router


class FieldConstraints(models.Model):
    """Mixin for models with check constraints: see the module's docstring."""

    CONSTRAINT_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {}

    class Meta:
        abstract = True

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        using = router.db_for_write(type(self), instance=self)
        errors: dict[str, list[ValidationError]] = {}
        for model_class, constraints in self.get_constraints():
            for constraint in constraints:
                try:
                    constraint.validate(model_class, self, exclude=exclude, using=using)
                except ValidationError as error:
                    place = self.CONSTRAINT_FIELDS.get(constraint.name)
                    if place is not None:
                        field, message = place
                        errors.setdefault(field, []).append(
                            ValidationError(message, code=constraint.name) if message else error
                        )
                    elif (
                        getattr(error, "code", None) == "unique"
                        and len(getattr(constraint, "fields", ())) == 1
                    ):
                        errors.setdefault(constraint.fields[0], []).append(error)  # type: ignore[attr-defined]
                    else:
                        errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)


def constraint_place(model: type[models.Model], name: str) -> tuple[str, str] | None:
    """``(field, message)`` for the constraint ``name`` of ``model``, or None if unlisted; the
    message is the constraint's own when the table leaves it empty."""
    place = getattr(model, "CONSTRAINT_FIELDS", {}).get(name)
    if place is None:
        return None
    field, message = place
    if not message:
        constraint = next(c for c in model._meta.constraints if c.name == name)
        message = str(constraint.get_violation_error_message())
    return field, message


def constraint_place_by_name(name: str | None) -> tuple[str, str] | None:
    """``(field, message)`` for a constraint named by the database (an ``IntegrityError``'s
    ``diag.constraint_name``), searching every installed model; None if unknown."""
    if not name:
        return None
    for model in apps.get_models():
        if any(c.name == name for c in model._meta.constraints):
            return constraint_place(model, name)
    return None

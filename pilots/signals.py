"""Events ``pilots`` publishes for the layers above it (which ``pilots`` never imports).

- ``cohort_changed``: a plan's cohort section changed (its segments' intended shares or the
  practical bound); sent after the change commits, with ``plan_id``. ``backlog`` recomputes the
  cohort's representativeness from it (``backlog.participants.fit``), since the participants
  live there.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

cohort_changed = Signal()


def cohort_changed_send(*, plan_id: int) -> None:
    """Publish ``cohort_changed`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: cohort_changed.send(sender=None, plan_id=plan_id))

"""What the backlog publishes for the layers above it (they connect in their ``AppConfig.ready``).

``backlog`` may not import ``metrics`` or ``decisions``; a change that the pilot's metrics must
follow is announced here instead, inside the writing service's transaction, so a receiver's
writes commit or roll back with the change itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.dispatch import Signal

# Sent with ``plan_ids`` (a frozenset of plan ids) whenever a defect logged against one of those
# plans was added, deleted, or changed its type, severity or status: the receiver recounts the
# plans' defects (``decisions.defects``). Sent inside the service's transaction.
defects_changed = Signal()


def defects_changed_send(plan_ids: Iterable[int | None]) -> None:
    ids = frozenset(pk for pk in plan_ids if pk is not None)
    if ids:
        defects_changed.send(sender="backlog", plan_ids=ids)

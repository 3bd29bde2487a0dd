"""The end of a pilot: decision records and comments, rollback runs, the post-pilot review and the
deployment gate's log. One module per room; import from ``decisions.models``."""

from decisions.models.gate import GateCall
from decisions.models.record import DecisionComment, DecisionRecord, IterateItem
from decisions.models.review import PostPilotReview
from decisions.models.rollback import RollbackRun, RollbackStepRun

__all__ = [
    "DecisionComment",
    "DecisionRecord",
    "GateCall",
    "IterateItem",
    "PostPilotReview",
    "RollbackRun",
    "RollbackStepRun",
]

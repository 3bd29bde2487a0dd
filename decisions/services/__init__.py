"""The end of a pilot's services, one module per room: ``decision`` (the record), ``rollback``,
``review`` (post-pilot) and ``gate``. Import from the module, e.g.
``from decisions.services.decision import decision_record``."""

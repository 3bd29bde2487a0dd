"""The metric catalogue: built-in metric definitions and each team's own (a layer below
``pilots`` and ``metrics``, which both refer to it)."""

"""Product backlog items, cohort feedback, findings and change control grow here."""

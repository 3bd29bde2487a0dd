"""A plan's cohort participants: who takes part, their segments and their consent.

- ``services``: add by hand, opt in through the plan's enrolment link, withdraw (by the team or
  through the person's own link), erase personal data on request; the enrolment link itself;
- ``exchange``: CSV import (all or nothing) and export;
- ``selectors``: the lists and counts pages and the API read;
- ``fit``: the representativeness check, stored per plan and segment dimension.
"""

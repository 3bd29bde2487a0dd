"""The cyclic garbage collector of the web and worker processes (docs/operations.md, "The
collector").

Called once a process has started (``pilotplan/wsgi.py``; each Celery worker process,
``pilotplan/celery.py``; ``make bench``, which measures as a web process runs):

* ``gc.freeze()``: what start-up loaded (Django, the apps, URL and template caches) lives as long
  as the process, so full collections no longer traverse it;
* a youngest generation of ``GEN0_THRESHOLD`` objects instead of CPython's 700: a request that
  reads a 5,000-sample batch builds 5,000 dicts that live until it answers, and with 700 the
  collector walked them about 18 times per request (measured), for nothing: none of them is
  garbage. Cyclic garbage waits a little longer before it is freed, which costs a few MB at
  most; refcounting frees everything else at once, as before.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000


def collector_settle() -> None:
    """Freeze the start-up objects and set the thresholds (once per process, after start-up)."""
    gc.collect()
    gc.freeze()
    _threshold, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
